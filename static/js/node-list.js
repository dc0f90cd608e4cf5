// The node list: each node's badge and "last seen" follow its live samples.
(function () {
  "use strict";
  const table = document.getElementById("node-list");
  if (!table || !window.perfmonLive) return;
  const intervalS = Number(table.dataset.sampleIntervalS) || 1;
  // The socket allows 32 topics per connection; beyond that rows keep the server's state.
  const MAX_WATCHED = 32;

  Array.from(table.querySelectorAll("tbody tr[data-node]")).slice(0, MAX_WATCHED).forEach((row) => {
    const lastSeenEl = row.querySelector(".last-seen");
    const heartbeat = window.perfmonHeartbeat.watch(row.querySelector("[data-role=node-state]"), {
      intervalS: intervalS,
      lastSeenAgeS: Number(row.dataset.lastSeenAgeS),
      onChange: (online, ageS) => { lastSeenEl.textContent = window.perfmonUnits.age(ageS); },
    });
    window.perfmonLive.subscribe("node:" + row.dataset.node, (sample) => {
      heartbeat.beat(sample.ts);
      row.dataset.samples = String(Number(row.dataset.samples || 0) + 1);
    });
  });
})();
