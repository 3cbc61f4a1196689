// Pairsmith: small, vanilla, no inline script anywhere (the Content-Security-Policy forbids it).
(function () {
  "use strict";

  function typing(event) {
    const el = event.target;
    return el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  }

  function toggleHelp() {
    const help = document.getElementById("help");
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }

  let pendingG = false;
  document.addEventListener("keydown", function (event) {
    // Ctrl/Cmd+S submits the form that asks for it, from anywhere on the page.
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      const form = document.querySelector("form[data-save-shortcut]");
      if (form) {
        event.preventDefault();
        const button = form.querySelector("button[name=save]");
        form.requestSubmit(button || undefined);
      }
      return;
    }
    // Ctrl/Cmd+/ opens the help even while typing (the editor keeps its text box focused, where "?" is a letter).
    if ((event.ctrlKey || event.metaKey) && event.key === "/") { event.preventDefault(); toggleHelp(); return; }
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (pendingG && event.key === "h") { window.location.href = "/"; }
    pendingG = event.key === "g";
  });

  // A button with data-copy="<selector>" copies that input's value (or that element's text) to the clipboard.
  function copy(button) {
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = "value" in source ? source.value : source.textContent;
    const done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(source); });
    } else {
      select(source);  // plain http: no clipboard API; the text is selected for Ctrl+C
    }
  }

  function select(source) {
    if (source.select) { source.focus(); source.select(); return; }
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-help-open]")) toggleHelp();
    const copyButton = event.target.closest("[data-copy]");
    if (copyButton) copy(copyButton);
    // A click outside an open menu closes it (a <details> otherwise stays open).
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  // htmx 2 swaps no 4xx answer: a rate limit's 429 carries the message to show (the editor's status line, or the
  // page's notice area), so let it in.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 429) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
