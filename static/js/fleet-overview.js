// The dashboard's fleet overview: every node's GPUs as small tiles, kept live from the "nodes"
// heartbeat, which carries each GPU as [index, util %, memory used B, memory total B, °C, W]
// (one subscription and a few kB a tick, however large the fleet).
(function () {
  "use strict";
  const root = document.getElementById("fleet-overview");
  if (!root || !window.perfmonLive) return;
  const units = window.perfmonUnits;
  const nodes = new Map();

  root.querySelectorAll(".fleet-node[data-node]").forEach((el) => {
    const tiles = new Map();
    el.querySelectorAll(".fleet-tile[data-gpu-index]").forEach((tile) => tiles.set(Number(tile.dataset.gpuIndex), tile));
    const heartbeat = window.perfmonHeartbeat.watch(el.querySelector("[data-role=node-state]"), {
      intervalS: Number(el.dataset.intervalS) || 1,
      lastSeenAgeS: Number(el.dataset.lastSeenAgeS),
      onChange: (online) => tiles.forEach((tile) => { tile.dataset.stale = String(!online); }),
    });
    nodes.set(el.dataset.node, { tiles, heartbeat });
  });

  function memory(used, total) {
    if (units.missing(used)) return "N/A";
    return units.format(used, "bytes") + (units.missing(total) ? "" : " / " + units.format(total, "bytes"));
  }

  function update(tile, gpu) {
    const [, util, used, total, temp, power] = gpu;
    tile.querySelector("[data-field=util]").textContent = units.format(util, "percent");
    const bar = tile.querySelector("[data-field=util-bar]");
    bar.style.width = (units.missing(util) ? 0 : Math.max(0, Math.min(100, util))) + "%";
    bar.dataset.level = util >= 90 ? "high" : "normal";
    tile.querySelector("[data-field=memory]").textContent = memory(used, total);
    tile.querySelector("[data-field=temp]").textContent = units.format(temp, "celsius");
    tile.querySelector("[data-field=power]").textContent = units.format(power, "watts");
    tile.dataset.updates = String(Number(tile.dataset.updates) + 1);
  }

  window.perfmonLive.subscribe("nodes", (message) => {
    const node = nodes.get(message.node);
    if (!node) return; // a node that joined after the page loaded shows on the next load
    node.heartbeat.beat(message.ts);
    (message.gpus || []).forEach((gpu) => {
      const tile = node.tiles.get(gpu[0]);
      if (tile) update(tile, gpu);
    });
  });
})();
