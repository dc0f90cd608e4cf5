// The dashboard's live CPU % and memory % chart: the last 5 minutes, backfilled from history on
// load (as the node page's live view is) and then fed by the node's samples over the WebSocket.
(function () {
  "use strict";
  const canvas = document.getElementById("host-chart");
  if (!canvas || !window.perfmonLive) return;
  const WINDOW_S = 300;
  // A bounded window keeps the chart smooth however long the page stays open (5 min at 2 Hz).
  const MAX_POINTS = 600;
  const KEYS = [{ metric: "host.cpu_percent", gpu: null }, { metric: "host.memory_percent", gpu: null }];
  const node = canvas.dataset.node;
  const statusEl = document.getElementById("host-chart-status");

  const chart = new Chart(canvas, {
    type: "line",
    data: {
      datasets: [
        { label: "CPU %", data: [], borderColor: "#2563eb", backgroundColor: "#2563eb22", fill: true },
        { label: "Memory %", data: [], borderColor: "#db2777", backgroundColor: "#db277722", fill: false },
      ],
    },
    options: {
      animation: false,
      parsing: false,
      normalized: true,
      spanGaps: false,
      responsive: true,
      maintainAspectRatio: false,
      elements: { point: { radius: 0 }, line: { borderWidth: 2, tension: 0.2 } },
      interaction: { mode: "index", intersect: false },
      scales: {
        x: {
          type: "linear",
          ticks: {
            maxTicksLimit: 6,
            callback: (value) => new Date(value * 1000).toLocaleTimeString(),
          },
        },
        y: { min: 0, max: 100, title: { display: true, text: "%" } },
      },
      plugins: {
        tooltip: { callbacks: { title: (items) => new Date(items[0].parsed.x * 1000).toLocaleTimeString() } },
      },
    },
  });

  function fmt(value) { return value === null || value === undefined ? "N/A" : value.toFixed(1) + " %"; }

  function mark(source) {
    canvas.dataset.source = source;
    canvas.dataset.points = String(chart.data.datasets[0].data.length);
  }

  // Drop what has left the window (by time) and anything beyond the cap.
  function trim(dataset, nowS) {
    let drop = Math.max(0, dataset.data.length - MAX_POINTS);
    while (drop < dataset.data.length && dataset.data[drop].x < nowS - WINDOW_S) drop += 1;
    if (drop) dataset.data.splice(0, drop);
  }

  // History first: without it the chart would start empty on every visit.
  async function backfill() {
    const url = canvas.dataset.seriesUrl;
    if (!url || !window.perfmonSeries) return;
    const endS = Date.now() / 1000;
    let answers;
    try {
      answers = await window.perfmonSeries.fetchMany(url, {
        node: node, start: Math.floor(endS - WINDOW_S), end: Math.ceil(endS), points: MAX_POINTS / 2,
      }, KEYS);
    } catch (err) {
      if (statusEl) statusEl.textContent = "Last 5 minutes, live (no earlier points: " + err.message + ")";
      return;
    }
    chart.data.datasets.forEach((dataset, i) => {
      const answer = answers[i];
      if (!answer || !answer.body) return;
      const firstLive = dataset.data.length ? dataset.data[0].x : Infinity;
      const older = answer.body.points.filter((p) => p[0] < firstLive).map((p) => ({ x: p[0], y: p[1] }));
      dataset.data = older.concat(dataset.data);
    });
    chart.update("none");
    mark(canvas.dataset.source === "live" ? "live" : "history");
  }

  window.perfmonLive.subscribe("node:" + node, (sample) => {
    const host = sample.host;
    const series = [host.cpu_percent, host.memory_percent];
    chart.data.datasets.forEach((dataset, i) => {
      const last = dataset.data[dataset.data.length - 1];
      if (last && last.x >= sample.ts) return; // already there from history
      dataset.data.push({ x: sample.ts, y: series[i] === undefined ? null : series[i] });
      trim(dataset, sample.ts);
    });
    chart.update("none");
    document.getElementById("cpu-now").textContent = fmt(host.cpu_percent);
    document.getElementById("mem-now").textContent = fmt(host.memory_percent);
    document.getElementById("gpu-status").textContent =
      sample.gpu_status === "ok" ? sample.gpus.length + " GPU(s)" : sample.gpu_status;
    const stateEl = document.getElementById("node-state");
    if (stateEl) { stateEl.textContent = "online"; stateEl.className = "badge ok"; }
    mark("live");
  });
  backfill();
})();
