// One detail chart of the node page: a Chart.js line chart over epoch seconds with one dataset
// per (metric, GPU), fed either live (appendSample) or from history (setPoints), always bounded.
(function () {
  "use strict";
  const MAX_LIVE_POINTS = 600; // 5 minutes at 2 Hz; the live window is trimmed by time as well
  const MAX_HISTORY_POINTS = 1000; // the series API is asked for at most this many
  const COLORS = ["#2563eb", "#db2777", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#4b5563"];
  const units = window.perfmonUnits;

  // "host.cpu_percent" -> sample.host.cpu_percent; "gpu.x" -> the GPU's x. undefined -> null (gap).
  function liveValue(sample, metric, gpuIndex) {
    const dot = metric.indexOf(".");
    const scope = metric.slice(0, dot);
    const field = metric.slice(dot + 1);
    let source = null;
    if (scope === "host") source = sample.host;
    else if (scope === "gpu") source = (sample.gpus || []).find((g) => g.index === gpuIndex);
    const value = source ? source[field] : null;
    return value === undefined ? null : value;
  }

  // Tick steps a reader expects on a clock: 10 s, 1 min, 15 min, 6 h, 1 d...
  const STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800, 604800];

  // Ticks at round local times (the linear scale alone would put them at round epoch numbers).
  function timeTicks(minS, maxS, wanted) {
    const step = STEPS_S.find((s) => s >= (maxS - minS) / wanted) || STEPS_S[STEPS_S.length - 1];
    const offsetS = step >= 3600 ? -new Date(minS * 1000).getTimezoneOffset() * 60 : 0;
    const ticks = [];
    for (let t = Math.ceil((minS + offsetS) / step) * step - offsetS; t <= maxS && ticks.length < 50; t += step) {
      ticks.push({ value: t });
    }
    return ticks;
  }

  // The series API leaves out buckets without samples; a null row between two points further
  // apart than a few buckets makes the chart show the hole instead of bridging it.
  function withGaps(points, bucketS) {
    if (!bucketS || points.length < 2) return points;
    const out = [points[0]];
    for (let i = 1; i < points.length; i += 1) {
      if (points[i][0] - points[i - 1][0] > 3 * bucketS) out.push([points[i - 1][0] + bucketS, null, null, null]);
      out.push(points[i]);
    }
    return out;
  }

  // A value with no drawn neighbour (a lone sample, a bucket between gaps) has no line to sit on:
  // give it a dot, or the chart looks empty although the API sent it.
  function isolated(data, i) {
    const point = data[i];
    if (!point || point.y === null || point.y === undefined) return false;
    const before = data[i - 1];
    const after = data[i + 1];
    return (!before || before.y === null) && (!after || after.y === null);
  }

  function pointRadius(ctx) {
    return ctx.type === "data" && isolated(ctx.dataset.data, ctx.dataIndex) ? 2.5 : 0;
  }

  function timeLabel(epochS, spanS) {
    const date = new Date(epochS * 1000);
    if (spanS > 2 * 86400) return date.toLocaleDateString([], { month: "short", day: "numeric" }) + " " +
      date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (spanS > 3000) return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // options: {unit, series: [{metric, label}], gpuIndexes: [..] for per-GPU charts else null,
  //           onZoom(startS, endS) after the user drags across the chart}
  function create(canvas, options) {
    const unit = options.unit;
    const keys = [];
    (options.gpuIndexes || [null]).forEach((gpu, g) => {
      options.series.forEach((serie, s) => {
        const name = gpu === null ? serie.label : "GPU " + gpu + (serie.label ? " " + serie.label : "");
        keys.push({ metric: serie.metric, gpu: gpu, label: name, color: COLORS[(gpu === null ? s : g) % COLORS.length],
          dash: gpu !== null && s > 0 ? [5, 3] : [] });
      });
    });

    const chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: keys.map((key) => ({
          label: key.label || "value", data: [], borderColor: key.color, backgroundColor: key.color + "22",
          borderDash: key.dash, fill: keys.length === 1,
        })),
      },
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        spanGaps: false, // a missing value is a gap, never a line through zero
        responsive: true,
        maintainAspectRatio: false,
        elements: { point: { radius: pointRadius, hitRadius: 4 }, line: { borderWidth: 1.5, tension: 0 } },
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: {
            type: "linear",
            afterBuildTicks: (axis) => { if (axis.max > axis.min) axis.ticks = timeTicks(axis.min, axis.max, 6); },
            ticks: {
              maxTicksLimit: 6, maxRotation: 0,
              // "this" is the x scale: the label's precision follows the visible span.
              callback: function (value) { return timeLabel(value, this.max - this.min); },
            },
          },
          y: {
            beginAtZero: true,
            suggestedMax: unit === "percent" ? 100 : undefined,
            afterBuildTicks: (axis) => {
              if (unit !== "bytes" || !(axis.max > 0)) return;
              const nice = units.binaryTicks(axis.max, 4);
              axis.max = nice.max;
              axis.ticks = nice.ticks;
            },
            ticks: { maxTicksLimit: 5, callback: function (value) { return units.tick(value, unit, this.max); } },
          },
        },
        plugins: {
          legend: { display: keys.length > 1, labels: { boxWidth: 12, boxHeight: 2 } },
          tooltip: {
            callbacks: {
              title: (items) => new Date(items[0].parsed.x * 1000).toLocaleString(),
              label: (item) => {
                const raw = item.raw;
                let text = item.dataset.label + ": " + units.format(raw.y, unit);
                if (raw.min !== undefined && raw.min !== raw.max) {
                  text += " (min " + units.format(raw.min, unit) + ", max " + units.format(raw.max, unit) + ")";
                }
                return text;
              },
            },
          },
          zoom: {
            zoom: {
              mode: "x",
              drag: { enabled: true, backgroundColor: "rgba(37, 99, 235, 0.15)", threshold: 8 },
              onZoomComplete: ({ chart: zoomed }) => {
                if (options.onZoom) options.onZoom(zoomed.scales.x.min, zoomed.scales.x.max);
              },
            },
          },
        },
      },
    });

    function mark(source) {
      canvas.dataset.source = source;
      canvas.dataset.points = String(chart.data.datasets[0].data.length);
    }

    return {
      keys: keys,
      chart: chart,
      // The visible span in epoch seconds; null lets the data decide.
      setWindow(startS, endS) {
        chart.options.scales.x.min = startS === null ? undefined : startS;
        chart.options.scales.x.max = endS === null ? undefined : endS;
      },
      // Replace every dataset: pointsByKey[i] is the series API's [[epoch_s, avg, min, max], ...].
      setPoints(pointsByKey, source) {
        chart.data.datasets.forEach((dataset, i) => {
          const points = (pointsByKey[i] || []).slice(-MAX_HISTORY_POINTS);
          dataset.data = points.map((p) => ({ x: p[0], y: p[1], min: p[2], max: p[3] }));
        });
        chart.update("none");
        mark(source);
      },
      // Put history before the live points already drawn (the live window's seed).
      seed(pointsByKey) {
        chart.data.datasets.forEach((dataset, i) => {
          const firstLive = dataset.data.length ? dataset.data[0].x : Infinity;
          const older = (pointsByKey[i] || []).filter((p) => p[0] < firstLive).slice(-MAX_LIVE_POINTS);
          dataset.data = older.map((p) => ({ x: p[0], y: p[1], min: p[2], max: p[3] })).concat(dataset.data);
        });
        chart.update("none");
        mark("live");
      },
      clear() {
        chart.data.datasets.forEach((dataset) => { dataset.data = []; });
        chart.update("none");
        mark("none");
      },
      // Add one live sample; drop points older than windowStartS and beyond the cap. Samples more
      // than gapS apart (the socket was away, the node stalled) leave a gap instead of a line.
      appendSample(sample, windowStartS, gapS) {
        chart.data.datasets.forEach((dataset, i) => {
          const last = dataset.data[dataset.data.length - 1];
          if (last && last.x >= sample.ts) return; // already seeded from history
          if (last && gapS && sample.ts - last.x > gapS) dataset.data.push({ x: last.x + gapS / 2, y: null });
          dataset.data.push({ x: sample.ts, y: liveValue(sample, keys[i].metric, keys[i].gpu) });
          let drop = Math.max(0, dataset.data.length - MAX_LIVE_POINTS);
          while (drop < dataset.data.length && dataset.data[drop].x < windowStartS) drop += 1;
          if (drop) dataset.data.splice(0, drop);
        });
        chart.update("none");
        mark("live");
      },
    };
  }

  window.perfmonMetricChart = { create, liveValue, withGaps, isolated, MAX_HISTORY_POINTS };
})();
