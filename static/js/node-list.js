// The node list: each node's badge and "last seen" follow the small per-tick heartbeat every
// node sends on the "nodes" topic (one subscription, however large the fleet).
(function () {
  "use strict";
  const table = document.getElementById("node-list");
  if (!table || !window.perfmonLive) return;
  const intervalS = Number(table.dataset.sampleIntervalS) || 1;
  const rows = new Map();

  table.querySelectorAll("tbody tr[data-node]").forEach((row) => {
    const lastSeenEl = row.querySelector(".last-seen");
    const heartbeat = window.perfmonHeartbeat.watch(row.querySelector("[data-role=node-state]"), {
      intervalS: intervalS,
      lastSeenAgeS: Number(row.dataset.lastSeenAgeS),
      onChange: (online, ageS) => { lastSeenEl.textContent = window.perfmonUnits.age(ageS); },
    });
    rows.set(row.dataset.node, { row, heartbeat });
  });

  window.perfmonLive.subscribe("nodes", (message) => {
    const entry = rows.get(message.node);
    if (!entry) return; // a node that joined after the page loaded shows on the next load
    entry.heartbeat.beat(message.ts);
    entry.row.dataset.samples = String(Number(entry.row.dataset.samples || 0) + 1);
  });
})();
