// The annotator's editor: shortcuts, and nothing typed is ever lost. Autosave by htmx, a beacon when the page is
// left, and a copy in this browser's storage until the server holds a revision of what was typed.
// Every save carries the version this page last saw, this tab's editor id and a number that grows with each save of
// the tab, across its reloads: the server then tells this tab's own earlier saves (the previous page's beacon landing
// late) from someone else's (another tab, a reviewer), and keeps a conflicting text as a revision that is not
// current instead of dropping it (annotate/revisions.py).
(function () {
  "use strict";
  const form = document.querySelector("form[data-editor]");
  if (!form) return;
  const box = form.querySelector("#id_completion");
  // The reasoning box, in tasks that ask for it: saved with the completion (the same request), kept in the copy.
  const reasoningBox = form.querySelector("#id_reasoning");
  function reasoning() { return reasoningBox ? reasoningBox.value : undefined; }
  const saveUrl = form.dataset.saveUrl;
  const prefix = "pairsmith:draft:" + form.dataset.example + ":";
  const ABANDONED_MS = 10 * 60 * 1000; // a copy nobody updated for this long belongs to a tab that is gone
  const SUBMITTED_KEPT_MS = 60 * 60 * 1000;

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }
  function session(name, value) {
    try {
      if (value === undefined) return sessionStorage.getItem("pairsmith:" + name);
      if (value === null) sessionStorage.removeItem("pairsmith:" + name);
      else sessionStorage.setItem("pairsmith:" + name, value);
    } catch (e) { /* storage disabled: this page is an editor of its own */ }
    return null;
  }

  // This tab's editor id lives in sessionStorage, which a reload keeps. A duplicated tab starts with a copy of it,
  // "live" marker included (this page removes the marker when it goes): such a tab takes an id of its own.
  const page = randomId();
  let client = session("editor");
  if (!client || session("editor-live")) { client = randomId(); session("editor", client); }
  if (session("editor") !== client) client = page; // no sessionStorage
  session("editor-live", page);
  form.querySelector("input[name=client]").value = client;
  let localSeq = 0;
  function nextSeq() {
    localSeq = Math.max(Number(session("seq")) || 0, localSeq) + 1;
    session("seq", String(localSeq));
    return localSeq;
  }

  // What has been typed on this page, and how much of it the server holds in a revision.
  let edits = 0;
  let storedEdits = 0;
  const sent = new Map(); // seq of a save -> edits it carried
  let lastSeq = 0;
  let submitting = false;
  function dirty() { return edits > storedEdits; }
  function version() { return form.querySelector("#id_version").value; }
  function kind() { const k = form.querySelector("input[name=kind]:checked"); return k && k.value; }

  const key = prefix + client;
  const adopted = []; // other tabs' copies restored here: forgotten once this page's save holds them
  function remember(extra) {
    const copy = { text: box.value, reasoning: reasoning(), kind: kind(), version: version(), client: client, seq: lastSeq, at: Date.now() };
    try { localStorage.setItem(key, JSON.stringify(Object.assign(copy, extra || {}))); } catch (e) { /* full */ }
  }
  function forget() {
    try { [key].concat(adopted).forEach(function (k) { localStorage.removeItem(k); }); } catch (e) { /* ignore */ }
  }
  // This example's copies, this tab's first. Copies of other examples left by a submit are swept after a while (a
  // failed submit is retried well before), so that storage does not fill up with texts the server holds.
  function copies() {
    const found = [];
    const swept = [];
    try {
      for (let i = 0; i < localStorage.length; i += 1) {
        const k = localStorage.key(i);
        if (!k || !k.startsWith("pairsmith:draft:")) continue;
        const copy = JSON.parse(localStorage.getItem(k) || "null");
        if (!copy || typeof copy.text !== "string") swept.push(k);
        else if (k.startsWith(prefix)) found.push({ key: k, copy: copy });
        else if (copy.submitted && Date.now() - (copy.at || 0) > SUBMITTED_KEPT_MS) swept.push(k);
      }
      swept.forEach(function (k) { localStorage.removeItem(k); });
    } catch (e) { /* storage disabled */ }
    return found.sort(function (a, b) { return (b.key === key) - (a.key === key); });
  }

  // Saves through htmx (autosave, Ctrl+S, "Keep mine") carry this tab's id and the next number.
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.path !== saveUrl) return;
    lastSeq = nextSeq();
    event.detail.parameters.client = client;
    event.detail.parameters.seq = String(lastSeq);
    sent.set(String(lastSeq), edits);
  });
  document.body.addEventListener("htmx:afterSwap", function () {
    const status = document.getElementById("save-status");
    const seq = status && status.dataset.storedSeq;
    if (!seq || !sent.has(seq)) return;
    storedEdits = Math.max(storedEdits, sent.get(seq));
    sent.delete(seq);
    if (!dirty()) { forget(); replays.splice(0).forEach(replay); return; }
    // An older text was stored while newer typing waits for its own save. The text changes here, in the swap's own
    // task, so that "Saved" is never shown; the class after the settle (htmx gives a swapped element its old classes
    // until then, then its own).
    showUnsaved(status);
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    const status = document.getElementById("save-status");
    if (!status || !status.dataset.unsaved) return;
    status.classList.remove("ok");
    status.classList.add("pending");
  });
  // "Saved" is shown only while the box holds what the server stored: typing (or an older save answering while
  // newer typing waits) turns it into "Changes since version N", until the save of those changes answers.
  function showUnsaved(status) {
    if (!status || !status.dataset.savedVersion || status.dataset.unsaved) return;
    status.textContent = "Changes since version " + status.dataset.savedVersion + ": saving…";
    status.dataset.unsaved = "1";
    status.classList.remove("ok");
    status.classList.add("pending");
  }

  function saveNow() { if (window.htmx) window.htmx.trigger(form, "pairsmith:save"); }
  function changed() { edits += 1; remember(); showUnsaved(document.getElementById("save-status")); }
  form.addEventListener("input", changed);
  // A text box fires "change" when it loses focus, after its input events: only the kind and roles count here.
  form.addEventListener("change", function (event) { if (event.target.tagName !== "TEXTAREA") changed(); });

  // Leaving: a beacon, the one request a closing page can still send (its answer is lost with the page); the copy
  // in storage stays, marked as left, in case the beacon never arrives.
  window.addEventListener("pagehide", function () {
    session("editor-live", null);
    if (submitting || !dirty()) return;
    lastSeq = nextSeq();
    remember({ left: true });
    if (!navigator.sendBeacon) return;
    const data = new FormData(form);
    data.set("autosave", "1");
    data.set("client", client);
    data.set("seq", String(lastSeq));
    navigator.sendBeacon(saveUrl, data);
  });
  // Back from the back/forward cache: the page may be older than what is stored; fetch it again.
  window.addEventListener("pageshow", function (event) { if (event.persisted) window.location.reload(); });
  // Only hidden (another tab, another window): save now, queued behind any autosave in flight.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && dirty()) saveNow();
  });

  // A submit right after a change must not race the autosave it set off: hold it until saves are answered.
  let inflight = 0;
  let submitWaiting = false;
  function isSave(event) { return (event.detail.requestConfig.path || "") === saveUrl; }
  document.body.addEventListener("htmx:beforeRequest", function (event) { if (isSave(event)) inflight += 1; });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (!isSave(event)) return;
    inflight = Math.max(0, inflight - 1);
    if (inflight === 0 && submitWaiting) { submitWaiting = false; form.requestSubmit(); }
  });
  form.addEventListener("submit", function (event) {
    if (inflight > 0) { event.preventDefault(); submitWaiting = true; return; }
    lastSeq = nextSeq();
    form.querySelector("input[name=seq]").value = String(lastSeq);
    submitting = true; // the submit carries the text; the copy in storage stays in case it never arrives
    remember({ left: true, submitted: true });
  });

  // A copy another page kept that may not be on the server (its beacon lost, or never sent): send it as that page
  // did or would have, with its base, editor id and number, once this page's own text is stored. The server stores
  // it as the current text when nothing else was written since, else keeps it as a revision that is not current (or
  // nothing, when it holds that text already); this page reloads if it became current.
  const replays = [];
  function replay(found) {
    const data = new FormData();
    data.set("csrfmiddlewaretoken", form.querySelector("input[name=csrfmiddlewaretoken]").value);
    data.set("autosave", "1");
    data.set("completion", found.copy.text);
    if (reasoningBox && typeof found.copy.reasoning === "string") data.set("reasoning", found.copy.reasoning);
    data.set("kind", found.copy.kind || kind());
    data.set("version", found.copy.version);
    data.set("client", found.copy.client || client);
    data.set("seq", String(Number(found.copy.seq) || 0));
    fetch(saveUrl, { method: "POST", body: data, credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : "";
    }).then(function (html) {
      if (!/data-stored-seq="\d+"/.test(html)) return; // not stored (no longer this user's to edit): keep the copy
      try { localStorage.removeItem(found.key); } catch (e) { /* ignore */ }
      const saved = /data-saved-version="(\d+)"/.exec(html);
      if (saved && saved[1] !== version() && !dirty()) window.location.reload();
    }).catch(function () { /* offline: the copy stays for the next visit */ });
  }

  // On opening: what the browser kept in the box (a reload keeps typed text), or a copy in storage from this tab's
  // previous page or a tab that is gone, is not on the server yet: show it and save it at once.
  const radios = Array.from(form.querySelectorAll("input[name=kind]"));
  const storedRadio = radios.find(function (r) { return r.defaultChecked; });
  const stored = {
    text: box.defaultValue, reasoning: reasoningBox ? reasoningBox.defaultValue : undefined,
    kind: storedRadio ? storedRadio.value : kind(),
  };
  if (box.value !== stored.text || reasoning() !== stored.reasoning || kind() !== stored.kind) edits += 1;
  // A copy made before the reasoning box existed (or in a task without it) has none: it leaves the box as it is.
  function sameReasoning(copy) { return typeof copy.reasoning !== "string" || copy.reasoning === stored.reasoning; }
  let restored = false;
  copies().forEach(function (found) {
    const copy = found.copy;
    const mine = copy.client === client || copy.left || Date.now() - (copy.at || 0) > ABANDONED_MS;
    if (!mine) return; // another tab that is still open holds it
    if (copy.text === stored.text && sameReasoning(copy) && (copy.kind || stored.kind) === stored.kind) {
      try { localStorage.removeItem(found.key); } catch (e) { /* ignore */ }
    } else if (copy.version === version() && !restored) {
      box.value = copy.text;
      if (reasoningBox && typeof copy.reasoning === "string") reasoningBox.value = copy.reasoning;
      const radio = radios.find(function (r) { return r.value === copy.kind; });
      if (radio) radio.checked = true;
      if (found.key !== key) adopted.push(found.key);
      restored = true;
      edits += 1;
    } else {
      replays.push(found);
    }
  });
  if (form.hasAttribute("data-unsaved")) edits += 1; // the editor again after a refused submit: the text is unsaved
  if (!dirty()) {
    replays.splice(0).forEach(replay);
  } else {
    remember();
    const status = document.getElementById("save-status");
    if (status && restored) status.textContent = "Restored text you typed earlier that was not saved yet; saving it now.";
    // htmx sets the page up on DOMContentLoaded, after this deferred script: save once it has.
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", function () { window.setTimeout(saveNow, 0); });
    } else {
      window.setTimeout(saveNow, 0);
    }
  }

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
