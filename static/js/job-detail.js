// The job page: status, progress, start time and duration follow the worker live; when the job
// ends the server-rendered result is fetched and shown, and fetched again if the worker later
// keeps the points a cancelled sweep had measured. Cancel asks for confirmation first.
(function () {
  "use strict";
  const section = document.getElementById("job");
  if (!section) return;
  const cancelForm = document.getElementById("job-cancel");
  if (cancelForm) {
    cancelForm.addEventListener("submit", (event) => {
      if (!window.confirm(cancelForm.dataset.confirm)) event.preventDefault();
    });
  }
  if (!window.perfmonLive) return;
  const statusEl = document.getElementById("job-status");
  const bar = document.getElementById("job-progress");
  const stepEl = document.getElementById("job-step");
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  let finished = section.dataset.finished === "true";
  // How many points the shown result has: fetched again when an ended job's result changes
  // (a cancelled sweep's measured points arrive after the cancel).
  let shownPoints = Number(section.dataset.resultPoints || 0);

  function setProgress(percent, step) {
    bar.style.width = percent + "%";
    bar.parentElement.setAttribute("aria-valuenow", String(Math.round(percent)));
    if (step !== undefined) stepEl.textContent = step;
  }

  function setTimes(job) {
    const started = document.getElementById("job-started");
    const duration = document.getElementById("job-duration");
    if (started && job.started_at) {
      const waited = (new Date(job.started_at) - new Date(job.created_at)) / 1000;
      started.textContent = new Date(job.started_at).toTimeString().slice(0, 8) + " ";
      const note = document.createElement("span");
      note.className = "muted";
      note.textContent = "(waited " + waited.toFixed(1) + " s)";
      started.appendChild(note);
    }
    if (duration && job.duration_s !== null && job.duration_s !== undefined) {
      duration.textContent = job.duration_s.toFixed(1) + " s" + (TERMINAL.includes(job.status) ? "" : " so far");
    }
  }

  async function showResult() {
    const response = await fetch(section.dataset.resultUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const container = document.getElementById("job-result");
    container.innerHTML = await response.text();
    // Scripts inside innerHTML do not run: the charts are drawn by job-charts.js, loaded with the page.
    if (window.perfmonJobCharts) window.perfmonJobCharts.render(container);
    if (window.perfmonOptimizeCharts) window.perfmonOptimizeCharts.render(container);
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
    setTimes(job);
    if (!TERMINAL.includes(job.status)) return;
    const points = job.result && job.result.runs ? job.result.runs.length : 0;
    if (!finished || points !== shownPoints) {
      finished = true;
      shownPoints = points;
      if (cancelForm) cancelForm.remove();
      showResult();
    }
  });
})();
