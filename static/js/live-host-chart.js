// The dashboard's live CPU % and memory % chart, fed by the node's samples over the WebSocket.
(function () {
  "use strict";
  const canvas = document.getElementById("host-chart");
  if (!canvas || !window.perfmonLive) return;
  // A bounded window keeps the chart smooth however long the page stays open.
  const MAX_POINTS = 300;
  const node = canvas.dataset.node;
  const countEl = document.getElementById("sample-count");
  let received = 0;

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

  window.perfmonLive.subscribe("node:" + node, (sample) => {
    const host = sample.host;
    const series = [host.cpu_percent, host.memory_percent];
    chart.data.datasets.forEach((dataset, i) => {
      dataset.data.push({ x: sample.ts, y: series[i] });
      if (dataset.data.length > MAX_POINTS) dataset.data.shift();
    });
    chart.update("none");
    document.getElementById("cpu-now").textContent = fmt(host.cpu_percent);
    document.getElementById("mem-now").textContent = fmt(host.memory_percent);
    document.getElementById("gpu-status").textContent =
      sample.gpu_status === "ok" ? sample.gpus.length + " GPU(s)" : sample.gpu_status;
    const stateEl = document.getElementById("node-state");
    if (stateEl) { stateEl.textContent = "online"; stateEl.className = "badge ok"; }
    received += 1;
    countEl.textContent = String(received);
    canvas.dataset.points = String(chart.data.datasets[0].data.length);
  });
})();
