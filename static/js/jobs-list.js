// The jobs table: statuses, headline figures and durations follow the jobs live; on the jobs page,
// ticking 2 to 8 succeeded jobs enables "Compare ticked jobs" (a plain GET form to /jobs/compare/).
(function () {
  "use strict";
  const table = document.getElementById("jobs-table");
  if (!table) return;
  const body = table.querySelector("tbody");
  const withTicks = table.dataset.compare === "true";
  const MIN_COMPARE = 2;
  const MAX_COMPARE = 8;

  const compareButton = document.getElementById("compare-ticked");
  const compareHint = document.getElementById("compare-hint");
  const hintText = compareHint ? compareHint.textContent : "";

  function ticked() {
    return Array.from(document.querySelectorAll('input[name="ids"][form="compare-form"]:checked'));
  }

  function updateCompare() {
    if (!compareButton) return;
    const count = ticked().length;
    compareButton.disabled = count < MIN_COMPARE || count > MAX_COMPARE;
    compareButton.textContent = count ? "Compare " + count + " ticked jobs" : "Compare ticked jobs";
    if (compareHint) {
      compareHint.textContent = count > MAX_COMPARE ? "at most " + MAX_COMPARE + " jobs at once" : hintText;
    }
  }
  if (withTicks) {
    table.addEventListener("change", (event) => {
      if (event.target.matches('input[name="ids"]')) updateCompare();
    });
    updateCompare();
  }

  function formatNumber(value, digits) {
    return Number(value).toFixed(digits);
  }

  function headlineCell(cell, value, digits, unit, batchSize) {
    cell.textContent = "";
    if (value === null || value === undefined) {
      cell.textContent = "–";
      return;
    }
    cell.append(formatNumber(value, digits) + unit + " ");
    const at = document.createElement("span");
    at.className = "muted small";
    at.textContent = "@" + batchSize;
    cell.appendChild(at);
  }

  function newRow(job) {
    const row = document.createElement("tr");
    row.dataset.jobId = job.id;
    const roles = [
      withTicks ? "tick" : null, "id", "kind", "model", "node", "status-cell", "p50", "throughput", "created", "duration",
    ].filter((role) => role !== null);
    roles.forEach((role) => {
      const cell = document.createElement("td");
      if (role === "id") {
        const link = document.createElement("a");
        link.href = "/jobs/" + job.id + "/";
        link.textContent = job.id;
        cell.appendChild(link);
      } else if (role === "kind") cell.textContent = job.kind.charAt(0).toUpperCase() + job.kind.slice(1);
      else if (role === "model") {
        cell.textContent = job.model;
        if (job.kind !== "benchmark") {
          const text = document.createElement("span");
          text.className = "muted small opt-headline";
          text.dataset.role = "headline";
          cell.appendChild(text);
        }
      }
      else if (role === "created") cell.textContent = new Date(job.created_at).toISOString().replace("T", " ").slice(0, 19);
      else if (role === "status-cell") {
        const status = document.createElement("span");
        status.dataset.role = "status";
        cell.appendChild(status);
      } else if (role !== "tick") cell.dataset.role = role;
      if (["p50", "throughput", "duration"].includes(role)) cell.className = "num";
      row.appendChild(cell);
    });
    return row;
  }

  function update(row, job) {
    const status = row.querySelector('[data-role="status"]');
    status.textContent = job.status;
    status.className = "status status-" + job.status;
    const node = row.querySelector('[data-role="node"]');
    if (node) node.textContent = job.node || job.target_node || "–";
    const headline = job.result && job.result.headline;
    const p50 = row.querySelector('[data-role="p50"]');
    const throughput = row.querySelector('[data-role="throughput"]');
    if (p50) headlineCell(p50, headline ? headline.p50_ms : null, 3, " ms", headline && headline.p50_batch_size);
    if (throughput) {
      headlineCell(throughput, headline ? headline.throughput_per_s : null, 1, "/s", headline && headline.throughput_batch_size);
    }
    // Optimizations: "2.1x faster, -0.3% acc, v3 registered" under the model.
    const text = row.querySelector('[data-role="headline"]');
    if (text && headline && headline.text && text.dataset.text !== headline.text) {
      text.dataset.text = headline.text;
      text.replaceChildren(document.createElement("br"), headline.text);
    }
    const duration = row.querySelector('[data-role="duration"]');
    const finished = ["succeeded", "failed", "cancelled"].includes(job.status);
    if (duration) duration.textContent = finished && job.duration_s !== null ? formatNumber(job.duration_s, 1) + " s" : "–";
    if (job.partial && !row.querySelector('[data-role="partial"]')) {
      const badge = document.createElement("span");
      badge.className = "badge warn small";
      badge.dataset.role = "partial";
      badge.title = "some points failed or were not measured";
      badge.textContent = "partial";
      status.after(" ", badge);
    }
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
    const tickCell = withTicks ? row.cells[0] : null;
    if (tickCell && job.status === "succeeded" && headline && job.kind === "benchmark" && !tickCell.querySelector("input")) {
      const box = document.createElement("input");
      Object.assign(box, { type: "checkbox", name: "ids", value: String(job.id), id: "tick-" + job.id });
      box.setAttribute("form", "compare-form");
      box.setAttribute("aria-label", "compare job " + job.id);
      tickCell.appendChild(box);
    }
  }

  if (!window.perfmonLive) return;
  window.perfmonLive.subscribe("jobs", (message) => {
    const job = message.job;
    let row = body.querySelector('tr[data-job-id="' + job.id + '"]');
    if (!row) {
      // A filtered list or a later page only follows the rows it shows.
      if (table.dataset.liveNew !== "true" && withTicks) return;
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      row = newRow(job);
      body.prepend(row);
    }
    update(row, job);
  });
})();
