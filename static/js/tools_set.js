// The lead's tool set page: the JSON checked as it is typed (the server checks every definition when it is saved),
// and a file read into the box in this browser.
(function () {
  "use strict";
  const box = document.querySelector("[data-tools-json]");
  const status = document.getElementById("tools-json-status");
  const file = document.querySelector("[data-tools-file]");
  if (!box || !status) return;
  function check() {
    let value;
    try { value = JSON.parse(box.value); } catch (e) {
      status.textContent = "Not valid JSON yet: " + e.message;
      status.className = "small error";
      return;
    }
    if (!Array.isArray(value)) { status.textContent = "The tool set must be a JSON array."; status.className = "small error"; return; }
    const bad = value.findIndex(function (t) { return !t || t.type !== "function" || !t.function || typeof t.function.name !== "string"; });
    if (bad >= 0) { status.textContent = "tools[" + bad + "] is not {\"type\": \"function\", \"function\": {\"name\", …}}."; status.className = "small error"; return; }
    status.textContent = "Valid JSON: " + value.length + " function" + (value.length === 1 ? "" : "s") + " (" + value.map(function (t) { return t.function.name; }).join(", ") + "). Saving checks each schema.";
    status.className = "small ok";
  }
  box.addEventListener("input", check);
  if (file) {
    file.addEventListener("change", function () {
      const chosen = file.files && file.files[0];
      if (!chosen) return;
      if (chosen.size > 8 * 1024 * 1024) { status.textContent = "That file is over 8 MB: not a tool set."; status.className = "small error"; return; }
      chosen.text().then(function (text) { box.value = text; check(); box.focus(); });
    });
  }
  check();
})();
