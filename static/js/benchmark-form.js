// The benchmark form: each runtime's options (selects marked data-runtime="<runtime>") show only
// while that runtime is chosen. The server ignores the options of other runtimes, so without this
// script the form still submits correctly, just with every option visible.
(function () {
  "use strict";
  const form = document.getElementById("benchmark-form");
  if (!form) return;
  const runtime = form.querySelector('select[name="runtime"]');
  if (!runtime) return;
  const options = Array.from(form.querySelectorAll("select[data-runtime]"));

  function update() {
    for (const select of options) {
      const shown = select.dataset.runtime === runtime.value;
      const label = select.closest("label") || select;
      label.hidden = !shown;
      const error = document.getElementById(select.id + "-error");
      if (error) error.hidden = !shown;
    }
  }

  runtime.addEventListener("change", update);
  update();
})();
