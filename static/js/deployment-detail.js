// The deployment page's latency charts: each series of the deployment (history of its node, from
// GET /api/metrics/series) over the last hour, with the objective as a dashed horizontal line.
(function () {
  "use strict";
  const COLORS = ["#2563eb", "#db2777", "#16a34a", "#d97706", "#7c3aed", "#0891b2"];
  const RANGE_S = 3600;

  function timeLabel(epochS) {
    return new Date(epochS * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  async function load(node, series) {
    const answers = await window.perfmonSeries.fetchMany("/api/metrics/series", {
      node: node, start: Date.now() / 1000 - RANGE_S, points: 1000,
    }, series.map((s) => ({ metric: s.metric, gpu: null })));
    const datasets = [];
    answers.forEach((answer, i) => {
      if (!answer.body || !answer.body.points.length) return;
      datasets.push({
        label: series[i].label,
        data: answer.body.points.map((p) => ({ x: p[0], y: p[1] })),
        borderColor: COLORS[i % COLORS.length],
        backgroundColor: COLORS[i % COLORS.length],
        borderWidth: 1.5,
        pointRadius: answer.body.points.length < 60 ? 2 : 0,
        tension: 0,
      });
    });
    return datasets;
  }

  function objectiveLine(objectiveMs, datasets) {
    let lo = Infinity;
    let hi = -Infinity;
    datasets.forEach((d) => d.data.forEach((p) => { lo = Math.min(lo, p.x); hi = Math.max(hi, p.x); }));
    if (!isFinite(lo)) { hi = Date.now() / 1000; lo = hi - RANGE_S; }
    return {
      label: "objective " + objectiveMs + " ms",
      data: [{ x: lo, y: objectiveMs }, { x: hi, y: objectiveMs }],
      borderColor: "#dc2626",
      borderDash: [6, 4],
      borderWidth: 2,
      pointRadius: 0,
    };
  }

  function draw(canvas, datasets) {
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        scales: {
          x: { type: "linear", ticks: { callback: (v) => timeLabel(v), maxTicksLimit: 8 } },
          y: { beginAtZero: true, title: { display: true, text: "ms" } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  async function main() {
    const configNode = document.getElementById("deployment-chart-config");
    if (!configNode) return;
    const config = JSON.parse(configNode.textContent);
    const status = document.getElementById("latency-chart-status");
    try {
      const datasets = await load(config.node, config.series);
      if (config.objective_ms) datasets.push(objectiveLine(config.objective_ms, datasets));
      draw(document.getElementById("latency-chart"), datasets);
      const measured = datasets.filter((d) => !d.label.startsWith("objective")).length;
      status.textContent = measured ? "Last hour; the dashed red line is the objective." : "No latency in the last hour yet.";
      status.dataset.state = measured ? "drawn" : "empty";
      const network = document.getElementById("network-chart");
      if (network && config.network.length) draw(network, await load(config.node, config.network));
    } catch (err) {
      status.textContent = "Could not load the latency history: " + err.message;
      status.dataset.state = "error";
    }
  }

  document.addEventListener("DOMContentLoaded", main);
})();
