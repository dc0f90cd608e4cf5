// Reads history from GET /api/metrics/series (session cookie auth, same origin).
// Resolves to {unit, resolution_s, points: [[epoch_s, avg, min, max], ...]};
// rejects with an Error whose message is the server's {"error": ...} reason.
(function () {
  "use strict";

  async function fetchJson(url, query) {
    const params = new URLSearchParams();
    Object.keys(query).forEach((key) => {
      if (query[key] !== null && query[key] !== undefined) params.set(key, String(query[key]));
    });
    let response;
    try {
      response = await fetch(url + "?" + params.toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
    } catch (err) {
      throw new Error("history server unreachable");
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (!response.ok) {
      const reason = body && body.error ? body.error : "HTTP " + response.status + " " + response.statusText;
      throw new Error(reason);
    }
    return body;
  }

  async function fetchSeries(url, query) {
    const body = await fetchJson(url, query);
    if (!body || !Array.isArray(body.points)) throw new Error("malformed history answer");
    return body;
  }

  // Several series of one node in one request: keys are [{metric, gpu}]; resolves to one
  // {body} or {error} per key, in order (GET /api/metrics/series/many).
  async function fetchMany(url, query, keys) {
    const series = keys.map((key) => (key.gpu === null || key.gpu === undefined ? key.metric : key.metric + ":" + key.gpu));
    const body = await fetchJson(url + "/many", Object.assign({}, query, { series: series.join(",") }));
    if (!body || !Array.isArray(body.series)) throw new Error("malformed history answer");
    return body.series.map((answer) => (answer.error ? { error: answer.error } : { body: answer }));
  }

  window.perfmonSeries = { fetchSeries, fetchMany };
})();
