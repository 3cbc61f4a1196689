// The task form: proposes a slug from the name until the lead edits the slug, and shows the labels and the JSON
// Schema only for the output formats that use them. No inline script anywhere (the Content-Security-Policy).
(function () {
  "use strict";
  const form = document.querySelector("form[data-task-form]");
  if (!form) return;

  const name = form.querySelector("[name=name]");
  const slug = form.querySelector("[name=slug]");
  if (name && slug) {
    let edited = slug.value !== "";
    slug.addEventListener("input", function () { edited = slug.value !== ""; });
    name.addEventListener("input", function () {
      if (edited) return;
      slug.value = name.value
        .normalize("NFKD").replace(/[\u0300-\u036f]/g, "")  // é -> e
        .toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 50).replace(/-+$/, "");
    });
  }

  const format = form.querySelector("[name=output_format]");
  const only = { labels: ["label"], json_schema: ["json"] };
  function sync() {
    if (!format) return;
    Object.keys(only).forEach(function (field) {
      const input = form.querySelector("[name=" + field + "]");
      const box = input && input.closest(".field");
      if (!box) return;
      const wanted = only[field].includes(format.value) || box.classList.contains("has-error");
      box.hidden = !wanted;
    });
  }
  if (format) { format.addEventListener("change", sync); sync(); }
})();
