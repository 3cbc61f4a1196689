// The comparison screen, keyboard first: a/1 A, b/2 B, x/3 both bad (then write the better completion),
// q w e r t y u toggle reasons, Enter saves (Ctrl+Enter while writing). Keys typed into a text box stay text.
(function () {
  "use strict";
  const form = document.querySelector("[data-compare]");
  if (!form) return;
  const better = form.querySelector("[data-better]");
  const picks = { a: "left", 1: "left", b: "right", 2: "right", x: "both_bad", 3: "both_bad" };

  function pick(value) {
    const radio = form.querySelector("input[name='pick'][value='" + value + "']");
    if (!radio) return;
    radio.checked = true;
    update();
    if (value === "both_bad") form.querySelector("#id_better").focus();
  }

  function update() {
    const chosen = form.querySelector("input[name='pick']:checked");
    const value = chosen ? chosen.value : "";
    better.hidden = value !== "both_bad";
    form.querySelectorAll(".candidate").forEach(function (card) {
      card.classList.toggle("picked", card.dataset.side === value);
    });
  }

  form.addEventListener("change", update);
  update();

  document.addEventListener("keydown", function (event) {
    const typing = /^(TEXTAREA|INPUT|SELECT)$/.test(event.target.tagName) && event.target.type !== "radio" && event.target.type !== "checkbox";
    if (typing) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (picks[event.key]) { event.preventDefault(); pick(picks[event.key]); return; }
    const reason = form.querySelector("input[data-key='" + event.key + "']");
    if (reason) { event.preventDefault(); reason.checked = !reason.checked; return; }
    if (event.key === "Enter") { event.preventDefault(); form.requestSubmit(); }
  });
})();
