// Every page: a toast when an alert fires, resolves, has no data or fails to evaluate (pushed by a
// browser channel), and the firing-alert count in the navigation kept live. Data arrive over the
// page's one WebSocket (live-socket.js), topic "alerts".
(function () {
  "use strict";
  const box = document.getElementById("alert-toasts");
  const countEl = document.getElementById("alert-count");
  const SHOW_MS = 20000;
  const MAX_TOASTS = 5;
  const seen = new Set(); // idempotency keys: a notification shown once however often it arrives
  const WORDS = { firing: "firing", resolved: "resolved", nodata: "no data", error: "evaluation error" };

  function setCount(firing) {
    if (!countEl) return;
    countEl.dataset.count = String(firing);
    countEl.textContent = firing + " firing";
    countEl.classList.toggle("firing", firing > 0);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function toast(alert, key) {
    if (!box) return;
    if (key) {
      if (seen.has(key)) return;
      seen.add(key);
    }
    const item = el("div", "toast state-" + alert.state + " severity-" + (alert.severity || "warning"));
    item.setAttribute("role", "status");
    item.dataset.alertId = String(alert.id);
    item.dataset.state = alert.state;
    const title = el("div", "toast-title");
    const link = el("a", "", alert.rule + ": " + (WORDS[alert.state] || alert.state));
    link.href = alert.url ? new URL(alert.url, location.href).pathname : "#";
    title.appendChild(link);
    item.appendChild(title);
    const value = alert.value === null || alert.value === undefined ? "" : "value " + Number(alert.value).toPrecision(4);
    item.appendChild(el("div", "toast-body", [alert.summary || "", value && !String(alert.summary).includes(String(alert.value)) ? value : ""].filter(Boolean).join(" · ")));
    const close = el("button", "toast-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "dismiss");
    close.addEventListener("click", () => item.remove());
    item.appendChild(close);
    box.prepend(item);
    while (box.children.length > MAX_TOASTS) box.lastElementChild.remove();
    setTimeout(() => item.remove(), SHOW_MS);
  }

  if (countEl) setCount(Number(countEl.dataset.count || 0));
  if (!window.perfmonLive) return;
  window.perfmonLive.subscribe("alerts", (message) => {
    if (message.type === "alert_count") setCount(message.firing);
    else if (message.type === "alert" && message.alert) toast(message.alert, message.key);
  });
})();
