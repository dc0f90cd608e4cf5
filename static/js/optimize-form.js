// The optimization form: the ordered pass list (add, remove, move up/down, each pass's parameters)
// is built from the pass catalogue the server declares (GET /api/passes reads the same), and is
// sent as JSON in the hidden "passes" field. The server validates; a refused pass gets its message
// beside it (pass-errors: position -> message). The mode radio shows passes or auto constraints.
(function () {
  "use strict";
  const form = document.getElementById("optimize-form");
  if (!form) return;
  const catalogue = JSON.parse(document.getElementById("pass-catalogue").textContent);
  const passErrors = JSON.parse(document.getElementById("pass-errors").textContent);
  const byName = Object.fromEntries(catalogue.map((decl) => [decl.name, decl]));
  const hidden = form.querySelector("input[name=passes]");
  const list = document.getElementById("pass-list");
  const choice = document.getElementById("pass-choice");
  const choiceSummary = document.getElementById("pass-choice-summary");

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => node.append(child));
    return node;
  }

  function where(decl) {
    const parts = [];
    if (decl.accepts.indexOf("torch") < 0) parts.push("after ONNX export");
    if (decl.devices.length === 1) parts.push(decl.devices[0] + " only");
    if (decl.needs_labeled_data) parts.push("needs a labeled data set");
    return parts.length ? " (" + parts.join("; ") + ")" : "";
  }

  catalogue.forEach((decl) => choice.append(el("option", { value: decl.name, text: decl.title + where(decl) })));
  function describeChoice() {
    const decl = byName[choice.value];
    choiceSummary.textContent = decl ? decl.summary + (decl.caveat ? " Note: " + decl.caveat + "." : "") : "";
  }
  choice.addEventListener("change", describeChoice);
  describeChoice();

  function paramInput(decl, param, value) {
    const id = "pass-" + Math.random().toString(36).slice(2) + "-" + param.name;
    let input;
    if (param.kind === "choice") {
      input = el("select", { id: id });
      param.choices.forEach((c) => input.append(el("option", { value: c, text: c })));
      input.value = value;
    } else if (param.kind === "bool") {
      input = el("input", { id: id, type: "checkbox" });
      input.checked = Boolean(value);
    } else {
      input = el("input", { id: id, type: "number", step: param.kind === "int" ? "1" : "any" });
      if (param.low !== null && param.low !== undefined) input.min = String(param.low);
      if (param.high !== null && param.high !== undefined) input.max = String(param.high);
      input.value = String(value);
    }
    input.dataset.param = param.name;
    input.dataset.kind = param.kind;
    const range = param.kind === "int" || param.kind === "float" ? " (" + param.low + " to " + param.high + ")" : "";
    return el("label", { for: id, class: "pass-param" + (param.kind === "bool" ? " bool" : "") }, [
      param.name, input, el("span", { class: "help", text: param.help + range + "; default " + param.default }),
    ]);
  }

  function passItem(name, params) {
    const decl = byName[name];
    const item = el("li", { class: "pass-item", dataset: { pass: name } });
    const head = el("div", { class: "pass-head" }, [
      el("strong", { text: decl ? decl.title : name }), " ", el("code", { text: name }),
    ]);
    const buttons = el("span", { class: "pass-buttons" });
    [["up", "↑", "move up"], ["down", "↓", "move down"], ["remove", "✕", "remove"]].forEach(([action, text, title]) => {
      buttons.append(el("button", { type: "button", class: "secondary small", dataset: { action: action }, title: title, "aria-label": title + " " + name, text: text }));
    });
    head.append(buttons);
    item.append(head);
    if (decl) {
      if (decl.caveat) item.append(el("p", { class: "help caveat", text: "Note: " + decl.caveat + "." }));
      const box = el("div", { class: "pass-params" });
      decl.params.forEach((param) => {
        const value = params && Object.prototype.hasOwnProperty.call(params, param.name) ? params[param.name] : param.default;
        box.append(paramInput(decl, param, value));
      });
      item.append(box);
    }
    return item;
  }

  function renumber() {
    Array.from(list.children).forEach((item, index) => { item.dataset.index = String(index); });
  }

  function add(name, params) {
    list.append(passItem(name, params));
    renumber();
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const item = button.closest("li");
    const action = button.dataset.action;
    if (action === "remove") item.remove();
    else if (action === "up" && item.previousElementSibling) list.insertBefore(item, item.previousElementSibling);
    else if (action === "down" && item.nextElementSibling) list.insertBefore(item.nextElementSibling, item);
    const error = item.querySelector(".pass-error");
    if (error && action !== "remove") error.remove(); // the message was about the old position
    renumber();
  });
  document.getElementById("pass-add").addEventListener("click", () => add(choice.value, null));

  function read() {
    return Array.from(list.children).map((item) => {
      const params = {};
      item.querySelectorAll("[data-param]").forEach((input) => {
        const kind = input.dataset.kind;
        if (kind === "bool") params[input.dataset.param] = input.checked;
        else if (kind === "choice") params[input.dataset.param] = input.value;
        else if (input.value.trim() !== "") {
          // Sent as typed (a number, or the text when it is none) so the server names what is wrong.
          const n = Number(input.value);
          params[input.dataset.param] = Number.isFinite(n) ? n : input.value;
        }
      });
      return { name: item.dataset.pass, params: params };
    });
  }

  // The pipeline as last submitted (or "run again"'s), else a sensible start.
  let initial = [];
  try { initial = JSON.parse(hidden.value || "[]"); } catch (e) { initial = []; }
  if (!Array.isArray(initial) || initial.length === 0) initial = [{ name: "onnxruntime", params: {} }];
  initial.forEach((step) => add(step && step.name, step && step.params));

  // Each refused pass: its message beside it, and the parameter it names marked invalid.
  Object.entries(passErrors).forEach(([index, message]) => {
    const item = list.children[Number(index)];
    if (!item) return;
    item.classList.add("has-error");
    item.append(el("div", { class: "pass-error error", role: "alert", text: message }));
    const named = /parameter '([^']+)'/.exec(message);
    const input = named && item.querySelector('[data-param="' + named[1] + '"]');
    if (input) input.setAttribute("aria-invalid", "true");
  });

  const radios = form.querySelectorAll("input[name=mode]");
  function showMode() {
    const checked = form.querySelector("input[name=mode]:checked");
    const mode = checked ? checked.value : "passes";
    form.querySelectorAll(".mode-panel").forEach((panel) => { panel.hidden = panel.dataset.mode !== mode; });
  }
  radios.forEach((radio) => radio.addEventListener("change", showMode));
  showMode();

  form.addEventListener("submit", () => { hidden.value = JSON.stringify(read()); });
})();
