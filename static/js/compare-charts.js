// The compare page's overlaid charts: one dataset per job (the first is the baseline), from the
// JSON the server embeds as <script id="compare-data" type="application/json">.
(function () {
  "use strict";
  const COLORS = ["#2563eb", "#db2777", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#4b5563"];
  const dataEl = document.getElementById("compare-data");
  if (!dataEl || !window.Chart) return;
  const data = JSON.parse(dataEl.textContent);
  const jobs = data.jobs;
  const { fmt, batchAxis } = window.perfmonBatchCharts;
  const options = window.perfmonBatchCharts.baseOptions;

  function points(job, key) {
    return job.points.filter((p) => p[key] !== null).map((p) => ({ x: p.batch_size, y: p[key] }));
  }

  function lines(canvas, yTitle, unit, digits, series) {
    const opts = options(yTitle);
    opts.scales.x = batchAxis(data.batch_sizes);
    opts.plugins.tooltip = { callbacks: {
      title: (items) => "batch " + items[0].parsed.x,
      label: (item) => item.dataset.label + ": " + fmt(item.parsed.y, digits) + " " + unit,
    } };
    return new window.Chart(canvas, { type: "line", data: { datasets: series }, options: opts });
  }

  // All jobs measured a single, shared batch size: lines would be dots, so compare bars per job.
  function bars(canvas, yTitle, unit, digits, keys) {
    const opts = options(yTitle);
    opts.scales.x = { title: { display: true, text: "batch " + data.batch_sizes[0] } };
    opts.plugins.tooltip = { callbacks: { label: (item) => item.dataset.label + ": " + fmt(item.parsed.y, digits) + " " + unit } };
    opts.plugins.legend.display = keys.length > 1;
    opts.plugins.legend.labels.boxHeight = 10;
    // Each job has its own color, so the legend names the shade: solid p50, light p99.
    opts.plugins.legend.labels.generateLabels = () => keys.map((key, k) => ({
      text: key.label, fillStyle: k === 0 ? "#4b5563" : "#4b556388", strokeStyle: "transparent", datasetIndex: k,
    }));
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: jobs.map((job) => job.label),
        datasets: keys.map((key, k) => ({
          label: key.label,
          data: jobs.map((job) => (job.points[0] ? job.points[0][key.field] : null)),
          backgroundColor: jobs.map((job, i) => COLORS[i % COLORS.length] + (k === 0 ? "" : "88")),
          maxBarThickness: 48,
        })),
      },
      options: opts,
    });
  }

  const latencyCanvas = document.getElementById("compare-latency-chart");
  const throughputCanvas = document.getElementById("compare-throughput-chart");
  if (data.batch_sizes.length === 1) {
    window.perfmonBatchCharts.logScaleToggle(bars(latencyCanvas, "latency (ms)", "ms", 3,
      [{ field: "p50_ms", label: "p50" }, { field: "p99_ms", label: "p99" }]));
    bars(throughputCanvas, "samples / s", "samples/s", 1, [{ field: "throughput_per_s", label: "throughput" }]);
    return;
  }
  const latencySeries = [];
  jobs.forEach((job, i) => {
    const color = COLORS[i % COLORS.length];
    latencySeries.push({ label: job.label + " p50", data: points(job, "p50_ms"), borderColor: color,
      backgroundColor: color, pointRadius: 3, borderWidth: 2, tension: 0 });
    latencySeries.push({ label: job.label + " p99", data: points(job, "p99_ms"), borderColor: color,
      backgroundColor: color, borderDash: [5, 4], pointRadius: 2, borderWidth: 1.5, tension: 0 });
  });
  window.perfmonBatchCharts.logScaleToggle(lines(latencyCanvas, "latency (ms)", "ms", 3, latencySeries));
  lines(throughputCanvas, "samples / s", "samples/s", 1, jobs.map((job, i) => ({
    label: job.label, data: points(job, "throughput_per_s"), borderColor: COLORS[i % COLORS.length],
    backgroundColor: COLORS[i % COLORS.length], pointRadius: 3, borderWidth: 2, tension: 0,
  })));
})();
