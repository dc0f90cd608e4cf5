// One WebSocket per page to /ws/live. Pages call perfmonLive.subscribe(topic, handler);
// the socket reconnects by itself with exponential backoff and re-subscribes, and the
// header shows whether the feed is live.
(function () {
  "use strict";
  const handlers = new Map(); // topic -> [handler]
  const stateEl = document.getElementById("connection-state");
  let socket = null;
  let retryMs = 500;
  let lastMessageAt = Date.now();
  // Nodes sample every second: a node feed silent for this long means Redis or the sampler is
  // away, even though the socket itself is still open.
  const SILENT_AFTER_MS = 5000;

  function setState(state, text) {
    if (!stateEl) return;
    stateEl.dataset.state = state;
    stateEl.textContent = text;
  }

  function topicOf(message) {
    if (message.type === "sample") return "node:" + message.node;
    if (message.type === "heartbeat") return "nodes";
    if (message.type === "model") return "model:" + message.model_id;
    if (message.type === "alert" || message.type === "alert_count") return "alerts";
    if (message.type === "job" || message.type === "progress") {
      return "job:" + (message.job ? message.job.id : message.job_id);
    }
    return null;
  }

  function dispatch(message) {
    const topic = topicOf(message);
    const targets = (handlers.get(topic) || []).concat(message.type === "job" ? handlers.get("jobs") || [] : []);
    targets.forEach((handler) => handler(message));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/live");
    socket.onopen = () => {
      retryMs = 500;
      setState("live", "live");
      handlers.forEach((_, topic) => socket.send(JSON.stringify({ subscribe: topic })));
    };
    socket.onmessage = (event) => {
      lastMessageAt = Date.now();
      if (stateEl && stateEl.dataset.state !== "live") setState("live", "live");
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "error") { console.warn("perfmon live:", message.error); return; }
      if (message.type === "heartbeats") {
        // The fleet's heartbeats of the last second in one frame (dashboard/fleet_frames.py).
        message.beats.forEach((beat) => dispatch(beat));
        return;
      }
      if (message.type === "backfill") {
        // Samples the node kept while Redis was away, oldest first: handled as if they came live.
        message.samples.forEach((sample) => dispatch(sample));
        return;
      }
      dispatch(message);
    };
    socket.onclose = (event) => {
      if (event.code === 4401) { // the session ended: log in again
        location.href = "/login/?next=" + encodeURIComponent(location.pathname);
        return;
      }
      setState("reconnecting", "reconnecting…");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    };
  }

  setInterval(() => {
    const watchingNodes = [...handlers.keys()].some((topic) => topic.startsWith("node:"));
    const open = socket && socket.readyState === WebSocket.OPEN;
    if (open && watchingNodes && Date.now() - lastMessageAt > SILENT_AFTER_MS) {
      setState("reconnecting", "reconnecting…");
    }
  }, 1000);

  window.perfmonLive = {
    subscribe(topic, handler) {
      const first = !handlers.has(topic);
      handlers.set(topic, (handlers.get(topic) || []).concat([handler]));
      if (first && socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ subscribe: topic }));
      }
    },
  };
  connect();
})();
