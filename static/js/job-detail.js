// The job page: status and progress bar follow the worker live; when the job ends, the
// server-rendered result is fetched once and shown.
(function () {
  "use strict";
  const section = document.getElementById("job");
  if (!section || !window.perfmonLive) return;
  const statusEl = document.getElementById("job-status");
  const bar = document.getElementById("job-progress");
  const stepEl = document.getElementById("job-step");
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  let finished = section.dataset.finished === "true";

  function setProgress(percent, step) {
    bar.style.width = percent + "%";
    bar.parentElement.setAttribute("aria-valuenow", String(Math.round(percent)));
    if (step !== undefined) stepEl.textContent = step;
  }

  async function showResult() {
    const response = await fetch(section.dataset.resultUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const container = document.getElementById("job-result");
    container.innerHTML = await response.text();
    // Scripts inside innerHTML do not run: the charts are drawn by job-charts.js, loaded with the page.
    if (window.perfmonJobCharts) window.perfmonJobCharts.render(container);
  }

  window.perfmonLive.subscribe("job:" + section.dataset.jobId, (message) => {
    if (message.type === "progress") {
      setProgress(message.progress, message.step);
      if (message.log_line) document.getElementById("job-log").textContent += message.log_line;
      return;
    }
    const job = message.job;
    statusEl.textContent = job.status;
    statusEl.className = "status status-" + job.status;
    setProgress(job.progress, job.step);
    if (TERMINAL.includes(job.status) && !finished) {
      finished = true;
      const cancel = document.getElementById("job-cancel");
      if (cancel) cancel.remove();
      showResult();
    }
  });
})();
