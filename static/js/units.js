// Numbers with their units, for every node-page script. null/undefined means the node
// cannot measure the value (unsupported field): it reads "N/A", never 0.
(function () {
  "use strict";
  const MIB = 1024 * 1024;
  const GIB = 1024 * MIB;

  function missing(value) { return value === null || value === undefined || Number.isNaN(value); }

  function fixed(value, digits) { return Number(value).toFixed(digits); }

  function bytes(value) {
    if (missing(value)) return "N/A";
    if (Math.abs(value) >= GIB) return fixed(value / GIB, 1) + " GiB";
    return fixed(value / MIB, Math.abs(value) >= 100 * MIB ? 0 : 1) + " MiB";
  }

  function rate(value) { // bytes per second, decimal as disk and network tools show it
    if (missing(value)) return "N/A";
    if (Math.abs(value) >= 1e9) return fixed(value / 1e9, 2) + " GB/s";
    if (Math.abs(value) >= 1e6) return fixed(value / 1e6, 1) + " MB/s";
    return fixed(value / 1e3, 1) + " kB/s";
  }

  const formats = {
    percent: (v) => (missing(v) ? "N/A" : fixed(v, 1) + " %"),
    bytes: bytes,
    bytes_per_s: rate,
    celsius: (v) => (missing(v) ? "N/A" : fixed(v, 0) + " °C"),
    watts: (v) => (missing(v) ? "N/A" : fixed(v, 0) + " W"),
    mhz: (v) => (missing(v) ? "N/A" : fixed(v, 0) + " MHz"),
    load: (v) => (missing(v) ? "N/A" : fixed(v, 2)),
  };

  const SUFFIX = { percent: " %", celsius: " °C", watts: " W", mhz: " MHz" };

  // An axis label: every tick of an axis in one unit, picked from the axis maximum, so that
  // "0.5 MB/s" and "1 MB/s" line up instead of mixing kB/s and MB/s.
  function tick(value, unit, axisMax) {
    let divisor = 1;
    let name = SUFFIX[unit] || "";
    if (unit === "bytes") [divisor, name] = axisMax >= GIB ? [GIB, " GiB"] : [MIB, " MiB"];
    if (unit === "bytes_per_s") {
      [divisor, name] = axisMax >= 1e9 ? [1e9, " GB/s"] : axisMax >= 1e6 ? [1e6, " MB/s"]
        : axisMax >= 1e3 ? [1e3, " kB/s"] : [1, " B/s"];
    }
    return +(value / divisor).toFixed(2) + name;
  }

  // 1, 2, 2.5, 5 x 10^k: the smallest at least x.
  function niceStep(x) {
    const power = Math.pow(10, Math.floor(Math.log10(x)));
    return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= x - 1e-9 * power);
  }

  // Ticks of a byte axis at round MiB/GiB (Chart.js rounds in decimal: 13.97 GiB, 9.31 GiB...).
  // Returns {max, ticks} from 0 to a round maximum at or above axisMax.
  function binaryTicks(axisMax, wanted) {
    const divisor = axisMax >= GIB ? GIB : MIB;
    const step = niceStep(axisMax / divisor / wanted) * divisor;
    const max = Math.ceil(axisMax / step - 1e-9) * step;
    const ticks = [];
    for (let v = 0; v <= max + step / 2; v += step) ticks.push({ value: v });
    return { max, ticks };
  }

  function format(value, unit) { return (formats[unit] || ((v) => (missing(v) ? "N/A" : String(v))))(value); }

  // "12 s ago" / "3 min ago" for the last-seen columns.
  function age(seconds) {
    if (missing(seconds)) return "never";
    if (seconds < 90) return Math.max(0, Math.round(seconds)) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " d ago";
  }

  window.perfmonUnits = { format, missing, age, tick, binaryTicks };
})();
