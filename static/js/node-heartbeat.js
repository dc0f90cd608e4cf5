// Online/offline badge of one node, kept by the browser from the samples it receives:
// a node whose samples stop for 3 sample intervals turns offline (the "3 missed ticks").
(function () {
  "use strict";
  const MISSED_TICKS = 3;

  // badge: the element to keep up to date; intervalS: the configured sample interval;
  // lastSeenAgeS: how old the server's last heartbeat was when it rendered the page (an age,
  // not a time: the browser's clock may differ from the server's). Returns {beat(ts)}.
  function watch(badge, options) {
    let lastSeenS = Date.now() / 1000 - (options.lastSeenAgeS === undefined ? Infinity : options.lastSeenAgeS);
    let lastTs = null;
    let intervalS = options.intervalS || 1;
    const slackS = options.slackS === undefined ? 1 : options.slackS;
    const onChange = options.onChange || (() => {});

    function render() {
      const ageS = Date.now() / 1000 - lastSeenS;
      const online = ageS <= MISSED_TICKS * intervalS + slackS;
      if (badge.dataset.online !== String(online)) {
        badge.dataset.online = String(online);
        badge.textContent = online ? "online" : "offline";
        badge.classList.toggle("ok", online);
        badge.classList.toggle("bad", !online);
      }
      onChange(online, ageS);
    }

    setInterval(render, 500);
    render();
    return {
      // ts: the sample's own time. The browser's clock marks arrival: node clocks may differ.
      beat(ts) {
        // Learn the node's real period from its samples (nodes may run other intervals).
        if (lastTs !== null && ts > lastTs && ts - lastTs < 30) intervalS = Math.max(ts - lastTs, 0.1);
        lastTs = ts;
        lastSeenS = Date.now() / 1000;
        render();
      },
    };
  }

  window.perfmonHeartbeat = { watch };
})();
