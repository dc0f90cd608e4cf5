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
    // The same flag as the server-rendered list: a regression, else an inconclusive comparison.
    const verdicts = (job.verdicts || []).map((v) => v.verdict);
    const flagged = (job.regressions || []).length ? "regression" : verdicts.includes("inconclusive") ? "inconclusive" : "";
    if (flagged && !row.querySelector('[data-role="' + flagged + '"]')) {
      const badge = document.createElement("a");
      badge.className = flagged === "regression" ? "badge bad" : "badge";
      badge.dataset.role = flagged;
      badge.href = "/jobs/" + job.id + "/";
      badge.title = flagged === "regression"
        ? "p50 worse than the previous like-for-like result, beyond the threshold and the confidence intervals"
        : "p50 differs from the previous like-for-like result, but a run was unstable or the confidence intervals overlap";
      badge.textContent = flagged;
      status.after(" ", badge);
    }
  });
})();
