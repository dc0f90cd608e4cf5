// The node page: reads its config from the server, then hands every live sample of the node
// to the parts that show it (state badge, header numbers, GPU cards, charts, process tables).
// When the socket reconnects the page simply keeps its last data until samples flow again.
(function () {
  "use strict";
  const configEl = document.getElementById("node-page-config");
  if (!configEl || !window.perfmonLive) return;
  const config = JSON.parse(configEl.textContent);
  const units = window.perfmonUnits;
  const $ = (id) => document.getElementById(id);

  const heartbeat = window.perfmonHeartbeat.watch($("node-state"), {
    intervalS: config.sampleIntervalS,
    lastSeenAgeS: config.lastSeenAgeS,
    onChange: (online, ageS) => { $("node-last-seen").textContent = units.age(ageS); },
  });
  const cards = window.perfmonGpuCards.create($("gpu-cards"), $("gpu-card-template"));
  const charts = window.perfmonNodeCharts.create($("node-charts"), config);
  const processes = window.perfmonNodeProcesses.create($("gpu-processes"), $("host-processes"), config,
    Array.from(document.querySelectorAll("[data-sort]")));

  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

  function showHeader(sample) {
    const host = sample.host || {};
    setText($("host-cpu-now"), units.format(host.cpu_percent, "percent"));
    setText($("host-load-now"), [host.load_avg_1m, host.load_avg_5m, host.load_avg_15m]
      .map((v) => units.format(v, "load")).join(" / "));
    setText($("host-memory-now"), units.format(host.memory_used_bytes, "bytes") + " / " +
      units.format(host.memory_total_bytes, "bytes"));
    setText($("host-swap-now"), units.format(host.swap_used_bytes, "bytes") + " / " +
      units.format(host.swap_total_bytes, "bytes"));

    const status = $("gpu-status");
    const cpuOnly = sample.gpu_status && sample.gpu_status !== "ok";
    status.hidden = !cpuOnly;
    if (cpuOnly) setText(status, "CPU only: " + sample.gpu_status);

    const warnings = Array.isArray(sample.warnings) ? sample.warnings.map(String) : [];
    const list = $("node-warnings");
    if (list.dataset.shown !== warnings.join("\n")) {
      list.dataset.shown = warnings.join("\n");
      list.replaceChildren(...warnings.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    }
  }

  // Each part guards itself: a field another sampler version lacks must not stop the others.
  function safely(part, fn) {
    try { fn(); } catch (err) { console.error("node page: " + part + " failed on a sample", err); }
  }

  window.perfmonLive.subscribe("node:" + config.node, (sample) => {
    heartbeat.beat(sample.ts);
    safely("header", () => showHeader(sample));
    safely("GPU cards", () => cards.update(sample));
    safely("charts", () => charts.onSample(sample));
    safely("process tables", () => processes.update(sample));
    document.body.dataset.samples = String(Number(document.body.dataset.samples || 0) + 1);
  });
  window.perfmonLive.subscribe("jobs", (message) => { if (message.job) processes.onJob(message.job); });
})();
