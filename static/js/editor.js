// The annotator's editor: shortcuts, and nothing typed is ever lost (autosave by htmx, a beacon on leaving the
// page, and a copy in this browser's storage until the server confirms the save).
(function () {
  "use strict";
  const form = document.querySelector("form[data-editor]");
  if (!form) return;
  const box = form.querySelector("#id_completion");
  const key = "pairsmith:draft:" + form.dataset.example;
  let dirty = false;

  function version() { return form.querySelector("#id_version").value; }
  function remember() {
    try {
      const kind = form.querySelector("input[name=kind]:checked");
      localStorage.setItem(key, JSON.stringify({ text: box.value, kind: kind && kind.value, version: version() }));
    } catch (e) { /* storage full or disabled: the server autosave still runs */ }
  }
  function forget() { try { localStorage.removeItem(key); } catch (e) { /* ignore */ } }

  // A copy kept in this browser from a visit that could not save (offline, tab closed): restore it.
  try {
    const kept = JSON.parse(localStorage.getItem(key) || "null");
    if (kept && kept.version === version() && kept.text !== box.value) {
      box.value = kept.text;
      dirty = true;
      const status = document.getElementById("save-status");
      if (status) status.textContent = "Restored text you typed earlier that was not saved yet; it saves in a moment.";
      box.dispatchEvent(new Event("input", { bubbles: true }));
    } else if (kept) {
      forget();
    }
  } catch (e) { forget(); }

  form.addEventListener("input", function () { dirty = true; remember(); });
  form.addEventListener("change", function () { dirty = true; remember(); });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    const saved = document.querySelector("#save-status[data-saved-version]");
    if (saved && event.detail.target && event.detail.target.id === "save-status") { dirty = false; forget(); }
  });

  // Leaving the page: a beacon, the one request a closing page can still send; its answer is lost with the page.
  function saveOnLeave(event) {
    if (!dirty || !navigator.sendBeacon) return;
    const data = new FormData(form);
    data.set("autosave", "1");
    navigator.sendBeacon(form.dataset.saveUrl, data);
    dirty = false;
  }
  window.addEventListener("pagehide", saveOnLeave);
  // Back from the back/forward cache after a beacon: the version on this page is older than the stored one.
  window.addEventListener("pageshow", function (event) { if (event.persisted) window.location.reload(); });
  // Only hidden (another tab, another window): save through htmx, queued behind any autosave in flight, so the
  // answer updates this page's version and the next autosave does not conflict with this one.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && dirty && window.htmx) window.htmx.trigger(form, "pairsmith:save");
  });
  // A submit right after a change must not race the autosave it set off: the save bumps the version, so a submit
  // sent before its answer would carry the old version and be refused. Hold the submit until saves are answered.
  let inflight = 0;
  let submitWaiting = false;
  function isSave(event) { return (event.detail.requestConfig.path || "") === form.dataset.saveUrl; }
  document.body.addEventListener("htmx:beforeRequest", function (event) { if (isSave(event)) inflight += 1; });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (!isSave(event)) return;
    inflight = Math.max(0, inflight - 1);
    if (inflight === 0 && submitWaiting) { submitWaiting = false; form.requestSubmit(); }
  });
  form.addEventListener("submit", function (event) {
    if (inflight > 0) { event.preventDefault(); submitWaiting = true; return; }
    dirty = false;
    forget();
  });

  document.addEventListener("keydown", function (event) {
    const mod = event.ctrlKey || event.metaKey;
    if (mod && event.key === "Enter") { event.preventDefault(); form.requestSubmit(); return; }
    if (mod && event.key.toLowerCase() === "s") {
      event.preventDefault();
      event.stopImmediatePropagation();
      form.querySelector("[data-save]").click();
      return;
    }
    if (event.altKey && !mod && /^[1-4]$/.test(event.key)) {
      const radios = form.querySelectorAll("input[name=kind]");
      const radio = radios[Number(event.key) - 1];
      if (radio) { event.preventDefault(); radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
      return;
    }
    if (event.altKey && !mod && event.key.toLowerCase() === "n") {
      event.preventDefault();
      document.querySelector("[data-next]").click();  // a POST form: taking the next example changes state
      return;
    }
    if (event.altKey && !mod && event.key.toLowerCase() === "k") {
      const skip = document.querySelector("form[data-skip] select");
      if (skip) { event.preventDefault(); skip.focus(); }
    }
  }, true);

  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
})();
