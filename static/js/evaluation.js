// Judging an evaluation run, keyboard first: a / s / b choose "A is better", "as good", "B is better";
// 1-7 toggle the reasons; c goes to the comment (Esc leaves it); Enter or Ctrl+Enter sends; n passes.
// On a run's page, j starts judging.
(function () {
  "use strict";
  function typing(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type);
  }
  const CHOICES = { a: "a", s: "same", b: "b" };

  document.addEventListener("keydown", function (event) {
    const help = document.getElementById("help");
    if (help && help.open) return;
    const form = document.querySelector("form[data-judge-form]");
    const mod = event.ctrlKey || event.metaKey;
    if (form && event.key === "Enter" && (mod || !typing(event.target))) {
      event.preventDefault();
      form.querySelector("[data-send]").click();
      return;
    }
    if (form && event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target) || mod || event.altKey) return;
    if (form && CHOICES[event.key]) {
      const radio = form.querySelector('input[name=choice][value="' + CHOICES[event.key] + '"]');
      if (radio) { radio.checked = true; event.preventDefault(); }
      return;
    }
    if (form && /^[1-9]$/.test(event.key)) {
      const box = form.querySelector('input[name=reasons][data-number="' + event.key + '"]');
      if (box) { box.checked = !box.checked; event.preventDefault(); }
      return;
    }
    if (form && event.key === "c") { event.preventDefault(); form.querySelector("#id_comment").focus(); return; }
    if (event.key === "n") { const next = document.querySelector("[data-next]"); if (next) { event.preventDefault(); next.click(); } return; }
    if (event.key === "j") { const start = document.querySelector("[data-testid=start-judging]"); if (start) { event.preventDefault(); start.click(); } }
  });
})();
