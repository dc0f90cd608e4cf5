// The node page's detail charts and their time range: "live" shows the last 5 minutes from the
// socket (seeded from history on load); 1 h .. 30 d and drag-zoom read the series API at one
// point per pixel of chart width. Answers to a superseded request are dropped.
(function () {
  "use strict";
  const LIVE_WINDOW_S = 300;
  const PRESET_NAMES = { live: "last 5 minutes, live", 3600: "last hour", 86400: "last 24 h",
    604800: "last 7 days", 2592000: "last 30 days" };

  function create(root, config) {
    const statusEl = root.querySelector("#range-status");
    const resetButton = root.querySelector("#range-reset");
    const buttons = Array.from(root.querySelectorAll("[data-range]"));
    let preset = "live";
    let live = true;
    let latestTs = null;
    let generation = 0;
    // The heartbeat's offline threshold: a longer silence is drawn as a gap.
    const gapS = 3 * (config.sampleIntervalS || 1) + 1;

    const charts = Array.from(root.querySelectorAll("canvas[data-chart]")).map((canvas) =>
      window.perfmonMetricChart.create(canvas, {
        unit: canvas.dataset.unit,
        series: JSON.parse(canvas.dataset.series),
        gpuIndexes: canvas.dataset.perGpu === "true" ? config.gpuIndexes : null,
        onZoom: zoomTo,
      }));

    function setStatus(text, isError) {
      statusEl.textContent = text;
      statusEl.classList.toggle("error", Boolean(isError));
    }

    function span(startS, endS) {
      const fmt = (s) => new Date(s * 1000).toLocaleString([], { month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit" });
      return fmt(startS) + " – " + fmt(endS);
    }

    function pointsFor(metricChart) {
      return Math.max(10, Math.min(window.perfmonMetricChart.MAX_HISTORY_POINTS, Math.round(metricChart.chart.width)));
    }

    // Fetch every dataset of every chart for [startS, endS]; returns null when superseded.
    async function fetchAll(startS, endS) {
      const mine = ++generation;
      root.dataset.loading = "true";
      // One request per chart, for all of its datasets.
      const answers = await Promise.all(charts.map((metricChart) =>
        window.perfmonSeries.fetchMany(config.seriesUrl, {
          node: config.node, start: Math.floor(startS), end: Math.ceil(endS), points: pointsFor(metricChart),
        }, metricChart.keys).catch((err) => metricChart.keys.map(() => ({ error: err.message })))));
      if (mine !== generation) return null;
      root.dataset.loading = "false";
      root.dataset.loads = String(Number(root.dataset.loads || 0) + 1);
      const flat = answers.flat();
      const failed = flat.filter((answer) => answer.error);
      // bucket_s: the spacing of the points sent; resolution_s: the stored tier they came from.
      const spacings = flat.filter((a) => a.body).map((a) => a.body.bucket_s || a.body.resolution_s).filter((r) => r);
      // first_ts: each series' earliest sample; the earliest of them is where this node's history starts.
      const firsts = flat.filter((a) => a.body && typeof a.body.first_ts === "number").map((a) => a.body.first_ts);
      return {
        pointsPerChart: answers.map((list) => list.map((answer) =>
          (answer.body ? window.perfmonMetricChart.withGaps(answer.body.points, answer.body.bucket_s) : []))),
        // A series the node never recorded (a GPU without PCIe counters) is just empty; only
        // when nothing at all came back is the history itself unavailable.
        error: failed.length === flat.length && failed.length ? failed[0].error : null,
        missing: failed.length,
        total: flat.length,
        spacingS: spacings.length ? Math.max.apply(null, spacings) : null,
        firstS: firsts.length ? Math.min.apply(null, firsts) : null,
      };
    }

    function spacing(seconds) {
      if (seconds >= 3600 && seconds % 3600 === 0) return seconds / 3600 + " h";
      if (seconds >= 60 && seconds % 60 === 0) return seconds / 60 + " min";
      return seconds + " s";
    }

    // "14:05", with the date when it is not today: where the recorded history begins.
    function clock(epochS) {
      const date = new Date(epochS * 1000);
      const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      if (date.toDateString() === new Date().toDateString()) return time;
      return date.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
    }

    function describe(result, label, startsInside) {
      if (result.error) { setStatus(label + ": history unavailable: " + result.error, true); return; }
      let text = label + (result.spacingS ? " · one point per " + spacing(result.spacingS) : "");
      if (startsInside) text += " · history starts at " + clock(result.firstS);
      if (result.missing) text += " · " + result.missing + " of " + result.total + " series have no history";
      setStatus(text, false);
    }

    async function showRange(startS, endS, label) {
      live = false;
      charts.forEach((c) => { c.setWindow(startS, endS); c.clear(); });
      setStatus(label + ": loading…", false);
      const result = await fetchAll(startS, endS);
      if (!result) return;
      // A range reaching back past the first sample (a young install asked for 30 days) would
      // squeeze all the data into the last pixels: draw from where history starts instead.
      const startsInside = result.firstS !== null && result.firstS > startS && result.firstS < endS;
      root.dataset.historyStart = startsInside ? String(result.firstS) : "";
      if (startsInside) {
        const padS = Math.max(1, (endS - result.firstS) * 0.02);
        charts.forEach((c) => c.setWindow(Math.max(startS, result.firstS - padS), endS));
      }
      charts.forEach((c, i) => c.setPoints(result.pointsPerChart[i], "history"));
      describe(result, label, startsInside);
    }

    async function showLive() {
      live = true;
      generation += 1; // any history answer still on its way is now stale
      const nowS = latestTs || Date.now() / 1000;
      charts.forEach((c) => { c.clear(); c.setWindow(nowS - LIVE_WINDOW_S, nowS); });
      setStatus(PRESET_NAMES.live, false);
      root.dataset.historyStart = "";
      const result = await fetchAll(nowS - LIVE_WINDOW_S, nowS);
      if (!result || !live) return;
      charts.forEach((c, i) => c.seed(result.pointsPerChart[i]));
      // Live still works: say why the window starts empty, without alarming.
      if (result.error) setStatus(PRESET_NAMES.live + " (no earlier points: " + result.error + ")", false);
    }

    function choose(range) {
      preset = range;
      root.dataset.activeRange = range;
      resetButton.hidden = true;
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range)));
      if (range === "live") return showLive();
      const endS = Date.now() / 1000;
      return showRange(endS - Number(range), endS, PRESET_NAMES[range]);
    }

    function zoomTo(startS, endS) {
      root.dataset.activeRange = "zoom";
      resetButton.hidden = false;
      buttons.forEach((b) => b.setAttribute("aria-pressed", "false"));
      showRange(startS, endS, span(startS, endS));
    }

    buttons.forEach((b) => b.addEventListener("click", () => choose(b.dataset.range)));
    resetButton.addEventListener("click", () => choose(preset));
    choose("live");

    return {
      onSample(sample) {
        latestTs = sample.ts;
        if (!live) return;
        charts.forEach((c) => {
          c.setWindow(sample.ts - LIVE_WINDOW_S, sample.ts);
          c.appendSample(sample, sample.ts - LIVE_WINDOW_S, gapS);
        });
      },
    };
  }

  window.perfmonNodeCharts = { create };
})();
