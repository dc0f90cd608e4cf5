// Keeps the jobs table's status column current as jobs move through their states.
(function () {
  "use strict";
  const table = document.getElementById("jobs-table");
  if (!table || !window.perfmonLive) return;
  const body = table.querySelector("tbody");

  window.perfmonLive.subscribe("jobs", (message) => {
    const job = message.job;
    let row = body.querySelector('tr[data-job-id="' + job.id + '"]');
    if (!row) {
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      row = document.createElement("tr");
      row.dataset.jobId = job.id;
      const link = document.createElement("a");
      link.href = "/jobs/" + job.id + "/";
      link.textContent = job.id;
      const cells = [link, job.kind, job.model, null, new Date(job.created_at).toISOString().replace("T", " ").slice(0, 19)];
      cells.forEach((content) => {
        const cell = document.createElement("td");
        if (content instanceof Node) cell.appendChild(content);
        else if (content !== null) cell.textContent = content;
        else {
          const status = document.createElement("span");
          status.dataset.role = "status";
          cell.appendChild(status);
        }
        row.appendChild(cell);
      });
      body.prepend(row);
    }
    const status = row.querySelector('[data-role="status"]');
    status.textContent = job.status;
    status.className = "status status-" + job.status;
    if ((job.regressions || []).length && !row.querySelector('[data-role="regression"]')) {
      const badge = document.createElement("a");
      badge.className = "badge bad";
      badge.dataset.role = "regression";
      badge.href = "/jobs/" + job.id + "/";
      badge.title = "p50 worse than the previous comparable result";
      badge.textContent = "regression";
      status.after(" ", badge);
    }
  });
})();
