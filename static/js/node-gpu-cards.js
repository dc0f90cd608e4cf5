// One card per GPU on the node page: the current numbers, a sparkline each for utilization,
// memory, temperature and power, throttle reasons, MIG marking and per-GPU warnings.
(function () {
  "use strict";
  const units = window.perfmonUnits;
  // Throttle reasons that only mean "nothing to do": shown, but not as an alert.
  const BENIGN_THROTTLE = new Set(["gpu_idle", "idle", "none", "applications_clocks_setting"]);

  function create(container, template) {
    const cards = new Map(); // GPU index -> {el, sparks}

    function field(card, name) { return card.querySelector('[data-field="' + name + '"]'); }

    function wire(el) {
      const sparks = {};
      el.querySelectorAll(".gpu-metric").forEach((metric) => {
        const percent = metric.dataset.metric.endsWith("_percent");
        sparks[metric.dataset.metric] = window.perfmonSparkline.create(metric.querySelector("canvas"),
          { max: percent ? 100 : null, points: 60 });
      });
      return { el: el, sparks: sparks };
    }

    container.querySelectorAll(".gpu-card").forEach((el) => cards.set(Number(el.dataset.gpuIndex), wire(el)));

    // A GPU the page was not rendered with (a MIG device, a GPU that came back): a card from the template.
    function cardFor(gpu) {
      if (!cards.has(gpu.index)) {
        const el = template.content.firstElementChild.cloneNode(true);
        el.dataset.gpuIndex = String(gpu.index);
        container.appendChild(el);
        cards.set(gpu.index, wire(el));
      }
      return cards.get(gpu.index);
    }

    function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }

    function warningsOf(gpu) {
      const warnings = [];
      if (gpu.persistence_mode === false) {
        warnings.push("Persistence mode is off: the driver may unload between jobs and slow the first CUDA call.");
      }
      if (gpu.ecc_errors_uncorrected) warnings.push(gpu.ecc_errors_uncorrected + " uncorrected ECC errors.");
      return warnings;
    }

    function update(gpu) {
      const card = cardFor(gpu);
      const el = card.el;
      el.classList.toggle("mig", Boolean(gpu.is_mig_device));
      field(el, "mig").hidden = !gpu.is_mig_device;
      // The sampler numbers MIG devices 100 * (parent + 1) + position: GPU 0's are 100, 101, ...
      const parent = gpu.parent_index;
      setText(field(el, "label"), gpu.is_mig_device && parent !== undefined && parent !== null
        ? "GPU " + parent + " · MIG " + (gpu.index - 100 * (parent + 1)) : "GPU " + gpu.index);
      if (gpu.name) setText(field(el, "name"), gpu.name);
      if (gpu.uuid) setText(field(el, "uuid"), gpu.uuid);

      // [value, what it is out of]: the limit in small print so the number stays readable.
      const values = {
        utilization_gpu_percent: [units.format(gpu.utilization_gpu_percent, "percent"), ""],
        memory_used_bytes: [units.format(gpu.memory_used_bytes, "bytes"), "/ " + units.format(gpu.memory_total_bytes, "bytes")],
        temperature_c: [units.format(gpu.temperature_c, "celsius"), ""],
        power_draw_w: [units.format(gpu.power_draw_w, "watts"), "/ " + units.format(gpu.power_limit_w, "watts")],
      };
      Object.keys(values).forEach((metric) => {
        const box = el.querySelector('[data-metric="' + metric + '"]');
        setText(box.querySelector("[data-value]"), values[metric][0]);
        setText(box.querySelector("[data-sub]"), values[metric][1]);
        const raw = gpu[metric] === undefined ? null : gpu[metric];
        // Memory's sparkline is a share of the total, so two GPUs of different sizes compare.
        card.sparks[metric].push(metric === "memory_used_bytes" && raw !== null && gpu.memory_total_bytes
          ? (100 * raw) / gpu.memory_total_bytes : raw);
      });

      setText(field(el, "utilization_memory_percent"), units.format(gpu.utilization_memory_percent, "percent"));
      setText(field(el, "sm_clock_mhz"), units.format(gpu.sm_clock_mhz, "mhz"));
      setText(field(el, "mem_clock_mhz"), units.format(gpu.mem_clock_mhz, "mhz"));
      setText(field(el, "fan_percent"), units.format(gpu.fan_percent, "percent"));
      setText(field(el, "pcie"), units.format(gpu.pcie_tx_bytes_per_s, "bytes_per_s") + " / " +
        units.format(gpu.pcie_rx_bytes_per_s, "bytes_per_s"));
      const ecc = (v) => (units.missing(v) ? "N/A" : String(v));
      setText(field(el, "ecc"), ecc(gpu.ecc_errors_corrected) + " / " + ecc(gpu.ecc_errors_uncorrected));

      const throttle = field(el, "throttle");
      const reasons = Array.isArray(gpu.throttle_reasons) ? gpu.throttle_reasons : [];
      throttle.hidden = reasons.length === 0;
      throttle.classList.toggle("benign", reasons.every((r) => BENIGN_THROTTLE.has(r)));
      setText(throttle, reasons.length ? "Clocks held back: " + reasons.join(", ") : "");

      const list = field(el, "warnings");
      const warnings = warningsOf(gpu);
      if (list.dataset.shown !== warnings.join("\n")) {
        list.dataset.shown = warnings.join("\n");
        list.replaceChildren(...warnings.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
      }
    }

    return {
      update(sample) { (sample.gpus || []).forEach(update); },
    };
  }

  window.perfmonGpuCards = { create };
})();
