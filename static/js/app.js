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

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-help-open]")) toggleHelp();
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
