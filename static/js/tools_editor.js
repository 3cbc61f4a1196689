// A tool-calling turn: its text, and tool calls built from the task's tool set. Each call picks a function and
// fills its arguments in a form generated from the function's JSON Schema (enums as choices, required fields marked,
// nested objects as nested fields), or as raw JSON checked as it is typed. Every change is written to the turn's
// textarea as {"content", "tool_calls"} (annotate/tools.py's stored shape) and an input event sent, so the page's own
// script saves it and the server's checks (unknown function, invalid arguments) answer inline.
// One builder per [data-tool-builder] (templates/annotate/_tool_builder.html): data-for names its textarea (default
// #id_completion), data-label its text box's label, data-show-ids shows each call's id (earlier turns: the tool
// results answer them); the tool set is the page's json_script #tool-set. Builders that htmx swaps in are mounted
// too. Keyboard: Alt+C adds a call to the builder holding the focus, else to the visible one marked data-shortcut;
// every control is a native input in tab order.
(function () {
  "use strict";
  const source = document.getElementById("tool-set");
  if (!source) return;
  const tools = JSON.parse(source.textContent);
  const functions = {};
  tools.forEach(function (t) { functions[t.function.name] = t.function; });
  const names = Object.keys(functions);
  let uid = 0;

  function parse(text) {
    try {
      const value = JSON.parse(text);
      if (value && typeof value === "object" && !Array.isArray(value) && "tool_calls" in value) {
        return { content: value.content || "", tool_calls: Array.isArray(value.tool_calls) ? value.tool_calls : [] };
      }
    } catch (e) { /* not the stored shape: the text is the reply */ }
    return { content: text || "", tool_calls: [] };
  }
  function argumentsOf(call) {
    try { const v = JSON.parse(call.arguments || "{}"); return v && typeof v === "object" && !Array.isArray(v) ? v : null; }
    catch (e) { return null; }
  }
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function fieldId() { uid += 1; return "tool-field-" + uid; }
  function newId() {
    const bytes = new Uint8Array(6);
    crypto.getRandomValues(bytes);
    return "call_" + Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // Problems of the arguments found here, as the annotator types (the server checks them fully).
  function problems(schema, value, path, out) {
    if (!schema || typeof schema !== "object" || value === null || typeof value !== "object") return out;
    (schema.required || []).forEach(function (name) {
      if (!(name in value)) out.push((path ? path + "." : "") + name + " is required");
    });
    Object.keys(schema.properties || {}).forEach(function (name) {
      const sub = schema.properties[name];
      if (!(name in value)) return;
      if (sub.enum && sub.enum.indexOf(value[name]) < 0) out.push(name + " must be one of " + sub.enum.join(", "));
      if (sub.type === "object") problems(sub, value[name], (path ? path + "." : "") + name, out);
    });
    return out;
  }

  // One input per schema property; `set(value)` stores it (undefined removes the key).
  function input(name, sub, required, value, set) {
    const id = fieldId();
    const wrap = el("div", { class: "tool-arg" });
    const label = el("label", { for: id }, name);
    if (required) { label.appendChild(el("span", { class: "required", title: "required" }, " *")); }
    wrap.appendChild(label);
    if (sub.description) wrap.appendChild(el("small", { class: "muted" }, " " + sub.description));
    let control;
    if (Array.isArray(sub.enum)) {
      control = el("select", { id: id });
      control.appendChild(el("option", { value: "" }, required ? "— choose —" : "(none)"));
      sub.enum.forEach(function (option, i) {
        const o = el("option", { value: String(i) }, JSON.stringify(option).replace(/^"|"$/g, ""));
        if (value === option) o.selected = true;
        control.appendChild(o);
      });
      control.addEventListener("change", function () { set(control.value === "" ? undefined : sub.enum[Number(control.value)]); });
    } else if (sub.type === "object") {
      const fieldset = el("fieldset", { class: "tool-object" });
      fieldset.appendChild(el("legend", {}, name + (required ? " *" : "")));
      const inner = value && typeof value === "object" ? value : {};
      objectFields(fieldset, sub, inner, function (next) { set(Object.keys(next).length || required ? next : undefined); });
      return fieldset;
    } else if (sub.type === "boolean") {
      control = el("select", { id: id });
      [["", "(none)"], ["true", "true"], ["false", "false"]].forEach(function (pair) {
        const o = el("option", { value: pair[0] }, pair[1]);
        if (String(value) === pair[0]) o.selected = true;
        control.appendChild(o);
      });
      control.addEventListener("change", function () { set(control.value === "" ? undefined : control.value === "true"); });
    } else if (sub.type === "integer" || sub.type === "number") {
      control = el("input", { id: id, type: "number", step: sub.type === "integer" ? "1" : "any" });
      if (sub.minimum !== undefined) control.min = sub.minimum;
      if (sub.maximum !== undefined) control.max = sub.maximum;
      if (typeof value === "number") control.value = String(value);
      control.addEventListener("input", function () { set(control.value === "" ? undefined : Number(control.value)); });
    } else if (sub.type === "string") {
      control = el("input", { id: id, type: "text" });
      if (typeof value === "string") control.value = value;
      control.addEventListener("input", function () { set(control.value === "" ? undefined : control.value); });
    } else { // arrays and anything else: JSON
      control = el("input", { id: id, type: "text", class: "mono", placeholder: "JSON" });
      if (value !== undefined) control.value = JSON.stringify(value);
      const error = el("small", { class: "error", role: "alert" });
      control.addEventListener("input", function () {
        if (control.value === "") { error.textContent = ""; set(undefined); return; }
        try { set(JSON.parse(control.value)); error.textContent = ""; } catch (e) { error.textContent = "Not valid JSON yet."; }
      });
      wrap.appendChild(control);
      wrap.appendChild(error);
      return wrap;
    }
    if (required) control.setAttribute("aria-required", "true");
    wrap.appendChild(control);
    return wrap;
  }

  function objectFields(parent, schema, value, changed) {
    const required = schema.required || [];
    Object.keys(schema.properties || {}).forEach(function (name) {
      parent.appendChild(input(name, schema.properties[name] || {}, required.indexOf(name) >= 0, value[name], function (v) {
        if (v === undefined) delete value[name]; else value[name] = v;
        changed(value);
      }));
    });
  }

  function mount(root) {
    if (root.dataset.mounted) return;
    const box = document.getElementById(root.dataset.for || "id_completion");
    if (!box) return;
    root.dataset.mounted = "1";
    const showIds = "showIds" in root.dataset;
    const what = root.dataset.label || "Reply text (optional when the turn calls a tool)";
    let state = parse(box.value);

    function write() {
      box.value = JSON.stringify({ content: state.content, tool_calls: state.tool_calls });
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function callCard(call, index) {
      const card = el("fieldset", { class: "tool-call", "data-call": String(index) });
      card.appendChild(el("legend", {}, "Call " + (index + 1) + (showIds && call.id ? " · " + call.id : "")));
      const selectId = fieldId();
      card.appendChild(el("label", { for: selectId }, "Function"));
      const select = el("select", { id: selectId, "data-function": "" });
      names.forEach(function (name) {
        const o = el("option", { value: name }, name);
        if (name === call.name) o.selected = true;
        select.appendChild(o);
      });
      if (names.indexOf(call.name) < 0) {
        const o = el("option", { value: call.name || "" }, (call.name || "?") + " (not in the tool set)");
        o.selected = true;
        select.appendChild(o);
      }
      select.addEventListener("change", function () { call.name = select.value; call.arguments = "{}"; write(); render(); });
      card.appendChild(select);
      const fn = functions[call.name];
      if (fn && fn.description) card.appendChild(el("p", { class: "muted small" }, fn.description));
      const args = argumentsOf(call);
      const status = el("p", { class: "tool-status small", role: "status", "aria-live": "polite" });
      function check() {
        const value = argumentsOf(call);
        if (value === null) { status.textContent = "The arguments are not a JSON object."; status.className = "tool-status small error"; return; }
        const found = fn ? problems(fn.parameters || {}, value, "", []) : ["unknown function"];
        status.textContent = found.length ? found.join("; ") : "Arguments look valid.";
        status.className = "tool-status small " + (found.length ? "error" : "ok");
      }
      const raw = el("details", { class: "tool-raw" });
      raw.appendChild(el("summary", {}, "Raw JSON of the arguments"));
      const rawId = fieldId();
      raw.appendChild(el("label", { for: rawId, class: "visually-hidden" }, (root.dataset.label ? root.dataset.label + ": a" : "A") + "rguments of call " + (index + 1) + " as JSON"));
      const area = el("textarea", { id: rawId, rows: "3", class: "mono", spellcheck: "false", "data-raw-arguments": "" });
      area.value = call.arguments || "{}";
      area.addEventListener("input", function () { call.arguments = area.value; write(); check(); });
      area.addEventListener("change", function () { if (argumentsOf(call) !== null) render(); });
      raw.appendChild(area);
      if (fn && args !== null) {
        const form = el("div", { class: "tool-args" });
        objectFields(form, fn.parameters || {}, args, function (next) {
          call.arguments = JSON.stringify(next);
          area.value = call.arguments;
          write();
          check();
        });
        card.appendChild(form);
      } else {
        raw.open = true;
      }
      card.appendChild(raw);
      card.appendChild(status);
      const remove = el("button", { type: "button", class: "link", "data-remove-call": "" }, "Remove this call");
      remove.addEventListener("click", function () { state.tool_calls.splice(index, 1); write(); render(); });
      card.appendChild(remove);
      check();
      return card;
    }

    const contentId = box.id + "-content";
    function render() {
      root.textContent = "";
      root.appendChild(el("label", { for: contentId }, what));
      const content = el("textarea", { id: contentId, rows: showIds ? "2" : "4", "data-tool-content": "" });
      content.value = state.content;
      content.addEventListener("input", function () { state.content = content.value; write(); });
      root.appendChild(content);
      const list = el("div", { class: "tool-calls" });
      state.tool_calls.forEach(function (call, i) { list.appendChild(callCard(call, i)); });
      if (!state.tool_calls.length) list.appendChild(el("p", { class: "muted small" }, "No tool call: the turn answers with text only."));
      root.appendChild(list);
      const add = el("button", { type: "button", "data-add-call": "", title: "Alt+C" }, "Add a tool call ");
      add.appendChild(el("kbd", {}, "Alt+C"));
      add.disabled = !names.length;
      add.addEventListener("click", addCall);
      root.appendChild(add);
    }
    function addCall() {
      if (!names.length) return;
      state.tool_calls.push({ id: newId(), name: names[0], arguments: "{}" });
      write();
      render();
      const selects = root.querySelectorAll("select[data-function]");
      if (selects.length) selects[selects.length - 1].focus();
    }
    root.toolBuilderAdd = addCall;
    // The raw JSON of the whole turn, edited by hand: the builder follows when it parses.
    box.addEventListener("input", function (event) {
      if (event.isTrusted) { state = parse(box.value); render(); }
    });
    render();
  }

  function mountAll(scope) { (scope || document).querySelectorAll("[data-tool-builder]").forEach(mount); }
  function visible(node) { return node.getClientRects().length > 0; }
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || (event.key !== "c" && event.key !== "C")) return;
    const active = document.activeElement;
    const holding = active && active.closest ? active.closest("[data-tool-builder]") : null;
    const target = holding || Array.from(document.querySelectorAll("[data-tool-builder][data-shortcut]")).find(visible);
    if (target && target.toolBuilderAdd) { event.preventDefault(); target.toolBuilderAdd(); }
  });
  document.addEventListener("htmx:load", function () { mountAll(document); });
  mountAll(document);
})();
