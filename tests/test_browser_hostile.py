"""Real chromium against hostile text: every field a user fills carries a payload, and every page that shows it is
visited by the persona who sees it. No dialog fires, no request reaches a canary path, the payload shows as text,
no handler, inline script, `javascript:` link or htmx attribute of a payload reaches the DOM, and every response
carries a Content-Security-Policy whose script-src forbids inline script.

Each payload `n` tries three ways out: `alert(n)` (script tag, onerror handler, javascript: link), an image on
/canary-<n>, and htmx (`hx-get="/canary-hx-<n>" hx-trigger="load"`) on text that htmx would act on if it were HTML.
"""

import json
import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import expect

from annotate import services as annotate_services
from annotate.models import Example, OutputFormat, Role
from annotate.scans import scan_request, scan_run
from exports import services as export_services
from reviews import services as review_services
from tests.conftest import _member
from tests.exports.conftest import build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def hostile(n: int) -> str:
    """The full payload: a script, an image with a handler, htmx on load, a javascript: link."""
    return (
        f'<script>alert({n})</script><img src="/canary-{n}" onerror="alert({n})">'
        f'<div hx-get="/canary-hx-{n}" hx-trigger="load">hx{n}</div><a href="javascript:alert({n})">js{n}</a>'
    )


def short(n: int) -> str:
    """For fields of 60 characters or fewer (field labels, token names, user names)."""
    return f"<script>alert({n})</script><img src=/canary-{n}>"


def marker(n: int) -> str:
    """What every payload starts with: the literal text the page must show."""
    return f"<script>alert({n})</script>"


# What each field carries (the number is the payload's).
TASK_NAME, LABEL, SYSTEM, INSTRUCTION_TEXT, OUTPUT_LABEL, OUTPUT_HELP, INSTRUCTION_LABEL, INSTRUCTION_HELP = (
    1,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
)
INSTRUCTION, CONTEXT, INPUT, COMPLETION, FIRST_COMPLETION, TURN, SUB_FLAG = 10, 11, 12, 13, 14, 15, 16
FLAG_COMMENT, FLAGGED_INSTRUCTION, FLAGGED_COMPLETION, APPROVED_INSTRUCTION = 17, 18, 19, 20
TOKEN_NAME, USERNAME, UPLOAD_KEY, UPLOAD_VALUE, UPLOAD_COMPLETION, TYPED = 21, 26, 23, 24, 25, 27
UPLOAD_NAME = "<img src=canary-22 onerror=alert(22)><b hx-get=canary-hx-22 hx-trigger=load>22.jsonl"  # no "/"

GUIDELINES = f"""# Rules {marker(2)}

Raw HTML stays text: <script>alert(2)</script> and <img src="/canary-2" onerror="alert(2)">.

<div hx-get="/canary-hx-2" hx-trigger="load">htmx in guidelines</div>

A [javascript link](javascript:alert(2)), a [data link](data:text/html,<script>alert(2)</script>), an autolink
<javascript:alert(2)>, an image ![canary](/canary-2b) and a [fine link](https://example.com/).
"""


def _seed(task, annotator, reviewer, lead):
    """The task, its template, examples in review, flagged and approved, two exports, a scan, a token: all hostile."""
    task.name = hostile(TASK_NAME)
    task.guidelines = GUIDELINES
    task.output_format = OutputFormat.LABEL
    task.labels = [short(LABEL), "plain"]
    task.system_prompt = hostile(SYSTEM)
    task.save()
    template = task.current_template
    template.instruction_text = hostile(INSTRUCTION_TEXT)
    template.fields = {
        **template.fields,
        "instruction": {"label": short(INSTRUCTION_LABEL), "help": hostile(INSTRUCTION_HELP)},
        "output": {"label": short(OUTPUT_LABEL), "help": hostile(OUTPUT_HELP)},
    }
    template.save()

    mallory = _member(task, short(USERNAME), Role.ANNOTATOR)  # a user name is text too
    fields = {"instruction": hostile(INSTRUCTION), "context": hostile(CONTEXT), "input": hostile(INPUT)}
    sub = annotate_services.example_write_new(task=task, user=mallory, fields=fields, completion="draft", kind="edge")
    Example.objects.filter(pk=sub.pk).update(messages=[{"role": "user", "content": hostile(TURN)}])
    sub.refresh_from_db()
    sub = annotate_services.example_submit(
        example=sub, user=mallory, completion=hostile(FIRST_COMPLETION), kind="edge", expected_version=sub.version
    )
    review_services.verdict_record(
        example=sub, reviewer=lead, decision="flag", version=sub.version, reasons=["unclear"],
        comment=hostile(SUB_FLAG),
    )  # fmt: skip
    sub.refresh_from_db()
    sub = annotate_services.example_submit(
        example=sub, user=mallory, completion=hostile(COMPLETION), kind="edge", expected_version=sub.version
    )

    flagged = annotate_services.example_write_new(
        task=task, user=annotator, fields={"instruction": hostile(FLAGGED_INSTRUCTION)}, completion="x", kind="happy"
    )
    flagged = annotate_services.example_submit(
        example=flagged, user=annotator, completion=hostile(FLAGGED_COMPLETION), kind="happy",
        expected_version=flagged.version,
    )  # fmt: skip
    review_services.verdict_record(
        example=flagged, reviewer=reviewer, decision="flag", version=flagged.version, reasons=["inaccurate"],
        comment=hostile(FLAG_COMMENT),
    )  # fmt: skip

    def approved(i: int) -> Example:
        return annotate_services.example_create(
            task=task, fields={"instruction": f"{hostile(APPROVED_INSTRUCTION)} #{i}"},
            completion=short(LABEL) if i % 2 else "plain", status=Example.Status.APPROVED, author=annotator,
        )  # fmt: skip

    for i in range(3):
        approved(i)
    assert build(task, user=lead).state == "succeeded"
    for i in range(3, 6):
        approved(i)
    export = build(task, user=lead)  # v2: its page lists the added examples by instruction
    assert export.state == "succeeded" and export.base_version == 1

    scan = scan_request(task=task, user=lead)
    scan.refresh_from_db()
    if scan.is_live:
        scan_run(scan_id=scan.pk)
    export_services.token_create(user=lead, name=short(TOKEN_NAME))
    return {"submitted": sub, "flagged": flagged, "export": export, "mallory": mallory}


# --- the watcher ------------------------------------------------------------------------------------------------


class Watcher:
    """Everything a payload could make the browser do: dialogs, requests to a canary, CSP violations."""

    def __init__(self, page, origin: str) -> None:
        self.origin = origin
        self.dialogs: list[str] = []
        self.canaries: list[str] = []
        self.violations: list[str] = []
        self.policies: list[tuple[str, str]] = []
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("response", self._response)

    def _request(self, request) -> None:
        if "canary" in request.url or not request.url.startswith((self.origin, "data:")):
            self.canaries.append(request.url)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)

    def _response(self, response) -> None:
        if response.request.resource_type in ("document", "xhr", "fetch"):
            self.policies.append((response.url, response.headers.get("content-security-policy", "")))

    def assert_quiet(self, where: str) -> None:
        assert not self.dialogs, f"{where}: a dialog fired: {self.dialogs}"
        assert not self.canaries, f"{where}: requests to canaries (or off the site): {self.canaries}"
        assert not self.violations, f"{where}: CSP violations (something tried to run): {self.violations}"
        for url, policy in self.policies:
            script_src = next((d for d in policy.split(";") if d.strip().startswith("script-src")), "")
            assert script_src, f"{url}: no Content-Security-Policy script-src ({policy!r})"
            assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, (url, script_src)
        self.policies.clear()


# What a payload would leave in the DOM had it been parsed as HTML.
DOM_PROBE = """() => {
  const bad = [];
  for (const s of document.scripts) if (!s.src) bad.push("inline script: " + s.textContent.slice(0, 60));
  for (const el of document.querySelectorAll("*")) {
    for (const a of el.attributes) {
      const name = a.name.toLowerCase(), value = a.value.toLowerCase();
      if (name.startsWith("on")) bad.push(el.tagName + " has handler " + name);
      if (value.includes("canary") && (name.startsWith("hx-") || name.startsWith("data-hx-")
          || ["src", "href", "action", "formaction", "srcset", "poster", "style"].includes(name)))
        bad.push(el.tagName + " " + name + "=" + a.value);
      if (["href", "src", "action", "formaction"].includes(name) && value.trim().startsWith("javascript:"))
        bad.push(el.tagName + " " + name + "=" + a.value);
    }
  }
  return bad;
}"""


# User text outside an hx-disable container: htmx would act on it if it ever reached the DOM as HTML (DESIGN.md,
# Safety). Text of textareas, options and the title is never parsed as HTML.
UNFENCED_PROBE = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.includes("alert(")) continue;
    const el = node.parentElement;
    if (el.closest("[hx-disable], textarea, option, title")) continue;
    out.push(el.tagName + " in " + el.parentElement.tagName + ": " + node.textContent.slice(0, 40));
  }
  return out;
}"""


def login(page, live_server, user) -> None:
    """Log in by session cookie (the login form has its own tests; this keeps the tour short)."""
    client = Client()
    client.force_login(user)
    page.context.clear_cookies()
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])


def check(page, watcher: Watcher, where: str) -> None:
    """Once htmx has done what it does on load: nothing fired, nothing was parsed as HTML, all text is fenced."""
    page.wait_for_load_state("networkidle")
    assert not page.evaluate(DOM_PROBE), (where, page.evaluate(DOM_PROBE))
    assert not page.evaluate(UNFENCED_PROBE), (where, page.evaluate(UNFENCED_PROBE))
    watcher.assert_quiet(where)


def visit(page, watcher: Watcher, url: str, *visible: int) -> None:
    """Open `url` and check it; the payloads `visible` show as text."""
    response = page.goto(url)
    assert response is not None and response.ok, (url, response and response.status)
    check(page, watcher, url)
    for n in visible:
        expect(page.get_by_text(marker(n)).filter(visible=True).first, f"{url}: payload {n} as text").to_be_visible()


def test_hostile_text_shows_as_text_on_every_page(page, live_server, screenshot, task, annotator, reviewer, lead):
    seeded = _seed(task, annotator, reviewer, lead)
    sub, flagged, export = seeded["submitted"], seeded["flagged"], seeded["export"]
    slug = task.slug
    watcher = Watcher(page, live_server.url)

    # The reviewer: queue, the review page (screenshot), triage, timelines, examples.
    login(page, live_server, reviewer)
    visit(page, watcher, "/", TASK_NAME)
    htmx_config = page.evaluate(
        "() => [htmx.config.allowEval, htmx.config.allowScriptTags, htmx.config.includeIndicatorStyles]"
    )
    assert htmx_config == [False, False, False]  # htmx without eval, script tags or inline styles: it works under CSP
    visit(page, watcher, reverse("annotate:task_detail", args=[slug]), TASK_NAME, LABEL, 2)
    guidelines = page.locator("section.guidelines")
    expect(guidelines.get_by_role("link", name="fine link")).to_have_attribute("href", "https://example.com/")
    expect(guidelines).to_contain_text("[javascript link](javascript:alert(2))")  # no link made of it
    expect(guidelines).to_contain_text('<div hx-get="/canary-hx-2" hx-trigger="load">')
    visit(page, watcher, reverse("reviews:queue", args=[slug]), TASK_NAME, INSTRUCTION, USERNAME)
    visit(
        page, watcher, reverse("reviews:review", args=[slug, sub.uuid]),
        TASK_NAME, INSTRUCTION, CONTEXT, INPUT, COMPLETION, TURN, USERNAME, OUTPUT_LABEL,
    )  # fmt: skip
    expect(page.get_by_test_id("diff").locator("ins").first).to_contain_text(marker(COMPLETION))
    expect(page.locator("details.earlier")).to_have_attribute("open", "")  # open beside a diff
    expect(page.get_by_text(marker(SUB_FLAG)).first).to_be_visible()
    page.locator("details.guidelines summary").click()
    expect(page.locator("details.guidelines").get_by_text(marker(2)).first).to_be_visible()
    page.keyboard.press("f")  # the flag panel opens; its comment box takes a payload as text too
    page.locator("#id_comment").fill(hostile(30))
    check(page, watcher, "review page, flag panel open")
    assert screenshot("review-page-with-payloads").exists()
    visit(page, watcher, reverse("reviews:triage", args=[slug]), TASK_NAME, FLAGGED_INSTRUCTION, FLAG_COMMENT)
    visit(page, watcher, reverse("reviews:example", args=[slug, sub.uuid]), TASK_NAME, COMPLETION, SUB_FLAG)
    visit(page, watcher, reverse("reviews:example", args=[slug, flagged.uuid]), FLAGGED_COMPLETION, FLAG_COMMENT)
    visit(page, watcher, reverse("annotate:examples", args=[slug]), TASK_NAME, INSTRUCTION, APPROVED_INSTRUCTION)
    visit(page, watcher, reverse("exports:list", args=[slug]), TASK_NAME)

    # The annotator: the editor with the reviewer's flag, My work, a new example.
    login(page, live_server, annotator)
    my_work = reverse("annotate:my_work", args=[slug])
    visit(page, watcher, my_work + "?status=flagged", TASK_NAME, FLAGGED_INSTRUCTION, FLAG_COMMENT)
    visit(page, watcher, my_work + "?status=approved", APPROVED_INSTRUCTION)
    edit = reverse("annotate:edit", args=[slug, flagged.uuid])
    visit(
        page, watcher, edit, TASK_NAME, FLAGGED_INSTRUCTION, FLAG_COMMENT, OUTPUT_LABEL, OUTPUT_HELP, INSTRUCTION_LABEL
    )
    page.locator("details.guidelines summary").click()
    expect(page.locator("details.guidelines").get_by_text(marker(2)).first).to_be_visible()
    expect(page.locator("#id_completion")).to_have_value(hostile(FLAGGED_COMPLETION))
    page.locator("#id_completion").fill(hostile(31))  # autosave and the live feedback answer with fragments
    page.wait_for_timeout(2500)
    check(page, watcher, "editor after typing")
    visit(page, watcher, my_work + "?status=draft", FLAGGED_INSTRUCTION)  # the autosave made it a draft again
    visit(page, watcher, reverse("annotate:write_new", args=[slug]), TASK_NAME, INSTRUCTION_LABEL, INSTRUCTION_HELP)

    # The lead: dashboard, exports, members, template and its live preview, imports, tokens, settings.
    login(page, live_server, lead)
    visit(page, watcher, reverse("annotate:dashboard", args=[slug]), TASK_NAME)
    expect(page.locator("[data-plot=labels]")).to_contain_text(f"<script>alert({LABEL})")  # a chart shortens labels
    expect(page.locator("[data-plot=annotators]")).to_contain_text(f"<script>alert({USERNAME})")
    visit(page, watcher, reverse("exports:detail", args=[slug, export.version]), TASK_NAME, APPROVED_INSTRUCTION)
    visit(page, watcher, reverse("annotate:members", args=[slug]), TASK_NAME, USERNAME)
    visit(page, watcher, reverse("annotate:task_edit", args=[slug]))
    expect(page.locator("input[name=name]")).to_have_value(hostile(TASK_NAME))
    template_url = reverse("annotate:template_edit", args=[slug])
    visit(page, watcher, template_url, TASK_NAME, SYSTEM)  # the preview renders the first example and the system
    with page.expect_response(re.compile(r"/template/preview/$")) as preview:
        page.locator("[name=sample_instruction]").fill(hostile(TYPED))
    assert preview.value.ok
    preview_box = page.locator("#preview")
    expect(preview_box.get_by_test_id("rendered-prompt")).to_contain_text(hostile(TYPED))
    expect(preview_box.get_by_text(marker(TYPED)).first).to_be_visible()
    check(page, watcher, "template live preview")
    visit(page, watcher, reverse("exports:tokens"), TOKEN_NAME)

    visit(page, watcher, reverse("imports:upload", args=[slug]), TASK_NAME)
    record = {
        "instruction": hostile(UPLOAD_VALUE), "completion": hostile(UPLOAD_COMPLETION), short(UPLOAD_KEY): "ignored",
    }  # fmt: skip
    page.locator("input[name=file]").set_input_files(
        {"name": UPLOAD_NAME, "mimeType": "application/json", "buffer": (json.dumps(record) + "\n").encode()}
    )
    page.get_by_role("button", name="Upload and preview").click()
    page.wait_for_url(re.compile(r"/import/[0-9a-f-]{36}/$"))
    check(page, watcher, "import mapping")
    expect(page.get_by_test_id("upload-name")).to_have_text(UPLOAD_NAME)
    for n in (UPLOAD_KEY, UPLOAD_VALUE, UPLOAD_COMPLETION):
        expect(page.get_by_text(marker(n)).first).to_be_visible()
    with page.expect_response(re.compile(r"/preview/$")):
        page.locator("[name=status]").select_option("submitted")  # hx-trigger="change": the preview is redrawn
    check(page, watcher, "import preview redrawn")
    page.get_by_label("Drop them: they are not imported").check()  # the key no field takes, listed: dropped
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_url(re.compile(r"/imports/\d+/$"))
    check(page, watcher, "import job")
    expect(page.get_by_test_id("import-summary")).to_contain_text("Imported 1 example")
    expect(page.get_by_text(UPLOAD_NAME).first).to_be_visible()
    expect(page.get_by_text(marker(UPLOAD_KEY)).first).to_be_visible()  # an ignored key
    visit(page, watcher, reverse("imports:upload", args=[slug]))
    expect(page.get_by_text(UPLOAD_NAME).first).to_be_visible()
    imported = Example.objects.get(task=task, instruction=hostile(UPLOAD_VALUE))
    visit(page, watcher, reverse("reviews:review", args=[slug, imported.uuid]), UPLOAD_VALUE, UPLOAD_COMPLETION)
    try:
        audit = reverse("annotate:audit", args=[slug])
    except NoReverseMatch:
        audit = None
    if audit:
        visit(page, watcher, audit, TASK_NAME)
    visit(page, watcher, "/", TASK_NAME)
