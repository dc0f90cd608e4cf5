// A tiny line of the last N values on a canvas, for the GPU cards. Plain canvas, not Chart.js:
// dozens of these redraw every second and each costs a few microseconds this way.
(function () {
  "use strict";

  // canvas: where to draw; options.max: fixed top of the scale (e.g. 100 for percent),
  // else the window's own maximum; options.points: how many values to keep.
  function create(canvas, options) {
    const opts = options || {};
    const size = opts.points || 60;
    const color = opts.color || "#2563eb";
    const values = [];

    function draw() {
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth;
      const height = canvas.clientHeight;
      if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
      if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      const known = values.filter((v) => v !== null);
      if (!known.length) return;
      const top = opts.max || Math.max.apply(null, known) || 1;
      const step = width / (size - 1);
      const x0 = width - (values.length - 1) * step;
      ctx.beginPath();
      let pen = false;
      values.forEach((value, i) => {
        if (value === null) { pen = false; return; } // unsupported or missing: a gap, not a zero
        const x = x0 + i * step;
        const y = height - 1 - (Math.min(value, top) / top) * (height - 2);
        if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        pen = true;
      });
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }

    return {
      push(value) {
        values.push(value === undefined ? null : value);
        if (values.length > size) values.shift();
        canvas.dataset.points = String(values.length);
        draw();
      },
    };
  }

  window.perfmonSparkline = { create };
})();
