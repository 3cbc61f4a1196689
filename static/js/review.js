// The review screen, keyboard first: a approve, f flag, r reject, e edit, n/j next, p/k previous, o "not a problem"
// on the first open quality warning.
// In a flag or a rejection, 1-9 toggle the reasons, c goes to the comment, Ctrl+Enter sends, Esc steps back.
// The decision form is swapped by htmx when a verdict is refused, so every handler is delegated from document.
(function () {
  "use strict";
  document.documentElement.classList.add("js-review");

  function form() { return document.querySelector("form[data-decide]"); }
  function mode() { const f = form(); return f ? f.dataset.mode || "" : ""; }
  function typing(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type);
  }
  function click(selector) {
    const el = document.querySelector(selector);
    if (el) el.click();
    return Boolean(el);
  }

  function focusFor(f) {
    const m = f.dataset.mode || "";
    if (m === "edit") {  // a tools task: the builder's text box (the raw JSON stays folded away)
      const box = f.querySelector("[data-tool-builder] [data-tool-content]") || f.querySelector("#id_edit_completion");
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    } else if (m === "flag" || m === "reject") {
      const reasons = f.querySelector("fieldset.reasons");
      reasons.setAttribute("tabindex", "-1");
      reasons.focus();
    } else if (f.contains(document.activeElement)) {
      document.activeElement.blur();
    }
  }

  function setMode(next) {
    const f = form();
    if (!f) return;
    f.dataset.mode = next;
    focusFor(f);
  }

  document.addEventListener("keydown", function (event) {
    const help = document.getElementById("help");
    if (help && help.open) return;
    const f = form();
    const current = mode();
    const mod = event.ctrlKey || event.metaKey;
    if (f && mod && event.key === "Enter") {
      if (current) { event.preventDefault(); f.querySelector("[data-send=" + current + "]").click(); }
      return;
    }
    if (f && event.key === "Escape") {
      if (typing(event.target) && f.contains(event.target) && current !== "edit") { focusFor(f); }
      else if (current) { setMode(""); }
      return;
    }
    if (typing(event.target) || mod || event.altKey) return;
    if (f && (current === "flag" || current === "reject")) {
      if (/^[1-9]$/.test(event.key)) {
        const box = f.querySelector("input[data-number='" + event.key + "']");
        if (box) { event.preventDefault(); box.checked = !box.checked; }
        return;
      }
      if (event.key === "c") { event.preventDefault(); f.querySelector("#id_comment").focus(); return; }
      if (event.key === "Enter" && event.target.tagName !== "BUTTON") {
        event.preventDefault();
        f.querySelector("[data-send=" + current + "]").click();
        return;
      }
    }
    switch (event.key) {
      case "a":
        if (f && !current) { event.preventDefault(); click("[data-approve]"); }
        break;
      case "f": case "r": case "e":
        if (f) { event.preventDefault(); setMode({ f: "flag", r: "reject", e: "edit" }[event.key]); }
        break;
      case "n": case "j":
        if (click("[data-next]")) event.preventDefault();  // a POST form: "next" leases a pair
        break;
      case "p": case "k":
        if (click("a[data-previous]")) event.preventDefault();
        break;
      case "o":  // the first open quality warning: "not a problem" (its line offers the undo)
        if (!current && click("#quality-warnings [data-not-a-problem]")) event.preventDefault();
        break;
      default:
    }
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-mode-button]");
    if (button) { setMode(button.dataset.modeButton); return; }
    if (event.target.closest("form[data-decide] [data-cancel]")) setMode("");
  });

  // Only a swap of the decision form itself moves the focus: other swaps (the header's flagged badge loads after the
  // page, late under load) must not pull the focus back to the reasons while the reviewer types a comment.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    const f = form();  // the refused decision came back with its mode, reasons and comment: carry on typing
    const source = event.detail && event.detail.elt;  // the element whose request this was (the old form, if ours)
    if (f && source && source.matches && source.matches("form[data-decide]")) focusFor(f);
  });

  // Triage: "select all" and the count of selected examples.
  document.addEventListener("change", function (event) {
    const all = event.target.closest("input[data-select-all]");
    const table = document.getElementById("triage-table");
    if (!table) return;
    if (all) table.querySelectorAll("input[name=uuids]").forEach(function (box) { box.checked = all.checked; });
    const count = document.querySelector("[data-selected-count]");
    if (count) count.textContent = String(table.querySelectorAll("input[name=uuids]:checked").length);
  });
})();
