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

  // A "log scale" checkbox in the chart's caption: with p99 ten times p50, a linear axis flattens
  // p50 into the floor. The choice lives on the figure so a redraw of the chart keeps it.
  function logScaleToggle(chart) {
    const figure = chart.canvas.closest("figure");
    const caption = figure && figure.querySelector("figcaption");
    if (!caption) return;
    let input = caption.querySelector("input[data-role=log-y]");
    if (!input) {
      const label = document.createElement("label");
      label.className = "log-toggle";
      input = document.createElement("input");
      input.type = "checkbox";
      input.dataset.role = "log-y";
      label.append(input, " log scale");
      caption.append(" ", label);
    }
    const title = chart.options.scales.y.title.text.replace(/ \(log scale\)$/, "");
    function apply() {
      const log = input.checked;
      figure.dataset.logY = String(log);
      chart.options.scales.y.type = log ? "logarithmic" : "linear";
      chart.options.scales.y.beginAtZero = !log; // log(0) is not on the axis
      chart.options.scales.y.title.text = title + (log ? " (log scale)" : "");
      chart.update("none");
    }
    input.onchange = apply; // a redrawn chart replaces the handler of the one it replaced
    input.checked = figure.dataset.logY === "true";
    if (input.checked) apply();
  }

  window.perfmonBatchCharts = { fmt, baseOptions, wantsLogX, batchAxis, logScaleToggle };
})();
