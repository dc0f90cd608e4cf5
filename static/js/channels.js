// The channels page: the add form shows only the fields of the chosen kind.
(function () {
  "use strict";
  const form = document.getElementById("channel-form");
  if (!form) return;
  const kind = form.querySelector("[name=kind]");
  const FIELDS = { webhook: ["url", "format"], email: ["to"], browser: [] };
  const OPTIONAL = ["url", "format", "to"];
  function show() {
    const wanted = FIELDS[kind.value] || [];
    OPTIONAL.forEach((name) => {
      const label = form.querySelector('label[data-field="' + name + '"]');
      if (label) label.hidden = !wanted.includes(name);
    });
  }
  kind.addEventListener("change", show);
  show();
})();
