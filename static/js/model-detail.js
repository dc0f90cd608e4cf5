// A model's page: a version's validation verdict shows as soon as the worker gives it (the
// "model:<id>" topic), and deletions ask for confirmation first.
(function () {
  "use strict";
  const root = document.getElementById("model");
  if (!root) return;
  const modelId = root.dataset.modelId;

  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  function show(version) {
    const row = document.getElementById("version-" + version.id);
    if (!row || row.dataset.status === version.status) return;
    row.dataset.status = version.status;
    const status = row.querySelector("[data-role=status]");
    status.textContent = version.status;
    status.className = "status status-" + version.status;
    const reason = row.querySelector("[data-role=reason]");
    reason.textContent = version.status_reason || "";
    reason.hidden = !version.status_reason;
    row.querySelector("[data-role=benchmark]").hidden = version.status !== "ready";
    const download = row.querySelector("[data-role=download]");
    if (download && version.status === "rejected") download.remove(); // its file is gone
  }

  function refresh() {
    fetch("/api/models/" + modelId, { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((model) => { if (model) model.versions.forEach(show); })
      .catch(() => {}); // the socket still brings the next change
  }

  if (window.perfmonLive) {
    window.perfmonLive.subscribe("model:" + modelId, (message) => {
      if (message.event === "validated") show(message);
      else if (message.event === "deleted" && message.version !== null) {
        const row = document.querySelector("#versions-table tr[data-version='" + message.version + "']");
        if (row) row.remove();
      } else refresh();
    });
  }
  // A verdict that landed between rendering and subscribing would otherwise be missed.
  if (root.querySelector("tr[data-status=validating]")) refresh();
})();
