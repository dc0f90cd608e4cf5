// Charts of an optimization result: p50 latency per pass (bars, one series per batch size, red
// where slower than the original) and, for auto, the Pareto chart (x = p50, y = accuracy or
// agreement; every candidate a point, the frontier connected, the original and the chosen one
// marked). Figures come from the JSON blocks in the server-rendered partial. job.html loads this
// file; job-detail.js calls window.perfmonOptimizeCharts.render(container) after inserting a result.
(function () {
  "use strict";
  const SERIES = ["#2563eb", "#7c3aed", "#0891b2", "#d97706"];
  const SLOWER = "#dc2626";
  const { fmt, baseOptions } = window.perfmonBatchCharts;

  function data(root, id) {
    const block = root.querySelector("#" + id);
    if (!block) return null;
    try { return JSON.parse(block.textContent); } catch (e) { return null; }
  }

  function fresh(canvas) {
    const old = window.Chart.getChart(canvas);
    if (old) old.destroy();
  }

  function passLatency(canvas, chart) {
    const labels = chart.rows.map((row) => row.label);
    const options = baseOptions("p50 latency (ms)");
    options.interaction = { mode: "index", intersect: false };
    options.plugins.tooltip = { callbacks: { label: (item) => item.dataset.label + ": " + fmt(item.parsed.y, 3) + " ms" } };
    const datasets = chart.batch_sizes.map((bs, i) => {
      const color = SERIES[i % SERIES.length];
      return {
        label: "batch " + bs,
        data: chart.rows.map((row) => row.p50[bs]),
        backgroundColor: chart.rows.map((row) => (row.slower ? SLOWER : color)),
        maxBarThickness: 48,
      };
    });
    return new window.Chart(canvas, { type: "bar", data: { labels: labels, datasets: datasets }, options: options });
  }

  function pareto(canvas, chart) {
    const frontier = chart.points.filter((p) => p.pareto).sort((a, b) => a.p50 - b.p50);
    const chosen = chart.points.filter((p) => p.chosen);
    const point = (p) => ({ x: p.p50, y: p.score, label: p.label });
    const datasets = [
      { label: "candidates", data: chart.points.map(point), backgroundColor: "#9ca3af", pointRadius: 4 },
      { label: "Pareto frontier", data: frontier.map(point), showLine: true, borderColor: "#2563eb",
        backgroundColor: "#2563eb", pointRadius: 5, borderWidth: 2 },
    ];
    if (chart.original && chart.original.p50 !== null && chart.original.score !== null) {
      datasets.push({ label: "original", data: [point(chart.original)], backgroundColor: "#111827",
        pointStyle: "rectRot", pointRadius: 8 });
    }
    if (chosen.length) {
      datasets.push({ label: "chosen", data: chosen.map(point), backgroundColor: "#16a34a", borderColor: "#14532d",
        pointStyle: "star", pointRadius: 11, borderWidth: 2 });
    }
    const options = baseOptions(chart.score_name);
    options.scales.y.beginAtZero = false;
    options.scales.x = { type: "linear", beginAtZero: true, title: { display: true, text: "p50 latency (ms)" } };
    options.interaction = { mode: "nearest", intersect: true };
    options.plugins.legend = { labels: { boxWidth: 10 } };
    options.plugins.tooltip = { callbacks: {
      label: (item) => item.raw.label + ": " + fmt(item.parsed.x, 3) + " ms, " + chart.score_name + " " + fmt(item.parsed.y, 4),
    } };
    return new window.Chart(canvas, { type: "scatter", data: { datasets: datasets }, options: options });
  }

  // Draws (or redraws) the optimization charts inside container; returns the charts.
  function render(container) {
    const root = container || document;
    const charts = [];
    if (!window.Chart) return charts;
    const bars = root.querySelector("#pass-latency-chart");
    const barData = data(root, "pass-latency-data");
    if (bars && barData && barData.rows.length) {
      fresh(bars);
      charts.push(passLatency(bars, barData));
      bars.dataset.drawn = "true";
    }
    const scatter = root.querySelector("#pareto-chart");
    const scatterData = data(root, "pareto-data");
    if (scatter && scatterData) {
      fresh(scatter);
      charts.push(pareto(scatter, scatterData));
      scatter.dataset.drawn = "true";
    }
    return charts;
  }

  window.perfmonOptimizeCharts = { render: render };
  const initial = document.getElementById("job-result");
  if (initial) render(initial);
})();
