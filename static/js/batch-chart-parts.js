// What the job page's and the compare page's charts share: number formatting, the common
// Chart.js options, and the batch-size axis (log when a sweep spans 16x or more).
(function () {
  "use strict";

  function fmt(value, digits) {
    if (value === null || value === undefined) return "N/A";
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function baseOptions(yTitle) {
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      plugins: { legend: { labels: { boxWidth: 12, boxHeight: 2 } } },
      scales: { y: { beginAtZero: true, title: { display: true, text: yTitle } } },
    };
  }

  // Batch sizes like 1, 8, 32, 128, 256 crowd the left edge of a linear axis; a log axis spaces them.
  function wantsLogX(batches) {
    if (batches.length < 3) return false;
    return batches[batches.length - 1] / batches[0] >= 16;
  }

  function batchAxis(batches) {
    const log = wantsLogX(batches);
    return {
      type: log ? "logarithmic" : "linear",
      title: { display: true, text: "batch size" + (log ? " (log scale)" : "") },
      // Ticks only at the measured batch sizes: "16" between 8 and 32 was never run.
      afterBuildTicks: (axis) => { axis.ticks = batches.map((b) => ({ value: b })); },
      ticks: { callback: (value) => String(value) },
    };
  }

  window.perfmonBatchCharts = { fmt, baseOptions, wantsLogX, batchAxis };
})();
