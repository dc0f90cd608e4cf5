// One alert's page: the one-click answers ask for confirmation first, and the page reloads when a
// job the alert started ends (the "job:<id>" topics), so its before/after and promotion appear.
(function () {
  "use strict";
  const root = document.getElementById("alert");
  if (!root) return;

  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  const live = (root.dataset.liveJobs || "").split(",").filter(Boolean);
  if (!window.perfmonLive || !live.length) return;
  const ended = ["succeeded", "failed", "cancelled"];
  live.forEach((jobId) => {
    window.perfmonLive.subscribe("job:" + jobId, (message) => {
      const job = message.job || {};
      const cell = document.querySelector("a[href$='/jobs/" + jobId + "/'] + [data-role=job-status]");
      if (cell && job.status) {
        cell.textContent = job.status;
        cell.className = "status status-" + job.status;
      }
      // The outcome is written in the same transaction as the job's end.
      if (ended.includes(job.status)) window.location.reload();
    });
  });
})();
