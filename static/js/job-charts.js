// Charts of a finished benchmark, drawn from the figures in the server-rendered result table
// (data- attributes on its rows), so the page needs no second request. job.html loads this file;
// job-detail.js calls window.perfmonJobCharts.render(container) after it inserts the result partial
// (scripts inside innerHTML never run).
(function () {
  "use strict";
  const COLORS = { p50: "#2563eb", p90: "#7c3aed", p95: "#d97706", p99: "#dc2626", throughput: "#16a34a" };
  const PERCENTILES = ["p50", "p95", "p99"];
  const { fmt, baseOptions, batchAxis, logScaleToggle } = window.perfmonBatchCharts;

  function figure(value) {
    const n = parseFloat(value);
    return Number.isFinite(n) ? n : null;
  }

  function readRuns(container) {
    const rows = container.querySelectorAll("#result-table tbody tr[data-batch-size]");
    return Array.from(rows, (row) => ({
      batch: figure(row.dataset.batchSize),
      p50: figure(row.dataset.p50), p90: figure(row.dataset.p90),
      p95: figure(row.dataset.p95), p99: figure(row.dataset.p99),
      throughput: figure(row.dataset.throughput),
    })).filter((run) => run.batch !== null).sort((a, b) => a.batch - b.batch);
  }

  function readConcurrency(container) {
    const rows = container.querySelectorAll("#concurrency-table tbody tr[data-concurrency]");
    return Array.from(rows, (row) => ({
      clients: figure(row.dataset.concurrency),
      rps: figure(row.dataset.requestsPerS),
      p99: figure(row.dataset.p99),
    })).filter((p) => p.rps !== null && p.p99 !== null).sort((a, b) => a.clients - b.clients);
  }

  function fresh(canvas) {
    const old = window.Chart.getChart(canvas);
    if (old) old.destroy();
  }

  function latencyLines(canvas, runs) {
    const batches = runs.map((r) => r.batch);
    const options = baseOptions("latency (ms)");
    options.scales.x = batchAxis(batches);
    options.plugins.tooltip = { callbacks: {
      title: (items) => "batch " + items[0].parsed.x,
      label: (item) => item.dataset.label + ": " + fmt(item.parsed.y, 3) + " ms",
    } };
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets: PERCENTILES.map((key) => ({
        label: key, borderColor: COLORS[key], backgroundColor: COLORS[key],
        data: runs.filter((r) => r[key] !== null).map((r) => ({ x: r.batch, y: r[key] })),
        pointRadius: 3, borderWidth: 2, tension: 0,
      })) },
      options: options,
    });
  }

  // One batch size: a line would be a single dot, so show that batch's percentiles as bars.
  function latencyBars(canvas, run) {
    const keys = ["p50", "p90", "p95", "p99"].filter((key) => run[key] !== null);
    const options = baseOptions("latency (ms)");
    options.plugins.legend = { display: false };
    options.scales.x = { title: { display: true, text: "batch " + run.batch } };
    options.plugins.tooltip = { callbacks: { label: (item) => fmt(item.parsed.y, 3) + " ms" } };
    return new window.Chart(canvas, {
      type: "bar",
      data: { labels: keys, datasets: [{ label: "latency", data: keys.map((k) => run[k]),
        backgroundColor: keys.map((k) => COLORS[k]), maxBarThickness: 60 }] },
      options: options,
    });
  }

  function throughputLine(canvas, runs) {
    const batches = runs.map((r) => r.batch);
    const options = baseOptions("samples / s");
    options.plugins.legend = { display: false };
    options.scales.x = batchAxis(batches);
    options.plugins.tooltip = { callbacks: {
      title: (items) => "batch " + items[0].parsed.x,
      label: (item) => fmt(item.parsed.y, 1) + " samples/s",
    } };
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets: [{ label: "throughput", borderColor: COLORS.throughput, backgroundColor: COLORS.throughput + "33",
        data: runs.filter((r) => r.throughput !== null).map((r) => ({ x: r.batch, y: r.throughput })),
        pointRadius: 3, borderWidth: 2, fill: true, tension: 0 }] },
      options: options,
    });
  }

  function concurrencyCurve(canvas, points) {
    const options = baseOptions("p99 latency (ms)");
    options.plugins.legend = { display: false };
    options.interaction = { mode: "nearest", intersect: false };
    options.scales.x = { type: "linear", beginAtZero: true, title: { display: true, text: "throughput (requests / s)" } };
    options.plugins.tooltip = { callbacks: {
      title: (items) => points[items[0].dataIndex].clients + " concurrent clients",
      label: (item) => fmt(item.parsed.x, 1) + " req/s, p99 " + fmt(item.parsed.y, 3) + " ms",
    } };
    return new window.Chart(canvas, {
      type: "scatter",
      data: { datasets: [{ label: "p99 vs req/s", showLine: true, borderColor: COLORS.p99, backgroundColor: COLORS.p99,
        data: points.map((p) => ({ x: p.rps, y: p.p99 })), pointRadius: 4, borderWidth: 2 }] },
      options: options,
    });
  }

  function hide(container, name) {
    const box = container.querySelector('[data-chart="' + name + '"]');
    if (box) box.hidden = true;
  }

  // Draws (or redraws) every chart of the result partial inside container; returns the charts.
  function render(container) {
    const root = container || document;
    const charts = [];
    if (!window.Chart) return charts;
    const runs = readRuns(root);
    const latency = root.querySelector("#latency-chart");
    const throughput = root.querySelector("#throughput-chart");
    if (latency && throughput) {
      [latency, throughput].forEach(fresh);
      if (runs.length === 0) {
        hide(root, "latency");
        hide(root, "throughput");
      } else if (runs.length === 1) {
        charts.push(latencyBars(latency, runs[0]));
        hide(root, "throughput"); // one number, already in the table
      } else {
        charts.push(latencyLines(latency, runs), throughputLine(throughput, runs));
      }
      if (runs.length) logScaleToggle(charts[0]);
    }
    const concurrency = root.querySelector("#concurrency-chart");
    if (concurrency) {
      fresh(concurrency);
      const points = readConcurrency(root);
      if (points.length) charts.push(concurrencyCurve(concurrency, points));
      else hide(root, "concurrency");
    }
    return charts;
  }

  window.perfmonJobCharts = { render: render };
  // The page was served with the result already in it (the job had ended): draw it now.
  const initial = document.getElementById("job-result");
  if (initial) render(initial);
})();
