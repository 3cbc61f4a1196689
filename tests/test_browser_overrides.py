"""Real chromium: a reviewer reads a warning's evidence (the overlap marked in the input and the completion), marks it
"not a problem" with a click and another with the keyboard, undoes one; the warnings collapse in place, the approve
key still works, and the lead's dashboard counts the overruled warnings per check."""

import re

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from annotate.models import Example, QualityOverride
from annotate.scans import scan_request, warning_fields
from tests.browser import login
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
INPUT = "Hi team, my Skylark ring stays amber after every firmware update <b>and</b> then turns blue. Help?"
COMPLETION = "The customer says the ring stays amber after every firmware update <b>and</b> then turns blue. "


@override_settings(CELERY_TASK_ALWAYS_EAGER=True)
def test_reviewer_overrules_warnings_and_the_lead_sees_the_counts(
    page, browser, live_server, screenshot, task, annotator, reviewer, lead, inline_celery
):
    from tests.reviews.conftest import submit_new

    example = submit_new(task, annotator, COMPLETION, instruction="Summarise the customer's message.", input=INPUT)
    scan_request(task=task, user=lead)  # inline: counts the "Stray whitespace" warning (trailing space)
    example.refresh_from_db()
    assert ",whitespace," in example.warning_codes
    # the leak as the redesigned check reports it: the overlap's offsets in the input and in the completion
    start, end = INPUT.index("ring"), INPUT.index("blue") + 4
    leak = {
        "code": "leak",
        "message": "The completion repeats 12 words of the input.",
        "blocking": False,
        "detail": {
            "field": "input",
            "field_span": [start, end],
            "completion_span": [COMPLETION.index("ring"), COMPLETION.index("blue") + 4],
        },
    }
    others = [w for w in example.warnings if w["code"] != "leak"]  # today's leak check names no offsets
    Example.objects.filter(pk=example.pk).update(**warning_fields([leak, *others]))

    login(page, reviewer.username)
    page.goto(f"/tasks/{task.slug}/review/{example.uuid}/")
    leak_item = page.locator("#quality-warnings .warning[data-code=leak]")
    expect(leak_item).to_contain_text("Answer leak:")
    marked = leak_item.locator("[data-testid=evidence-field] mark")
    expect(marked).to_have_text(INPUT[start:end])  # the <b> of the user's text shown as text, not markup
    expect(leak_item.locator("[data-testid=evidence-completion] mark")).to_have_text(INPUT[start:end])
    expect(page.locator("#quality-warnings .warning[data-code=whitespace]")).to_contain_text("Stray whitespace:")
    assert page.locator("#quality-warnings b").count() == 0
    screenshot("evidence")

    leak_item.get_by_placeholder("Note (optional)").fill("A summary restates the message: that is the task.")
    leak_item.get_by_role("button", name="Not a problem").click()
    overruled = page.locator("#quality-warnings .warning.overruled[data-code=leak]")
    expect(overruled).to_contain_text("Answer leak: marked not a problem by rita")
    expect(overruled.locator("details")).not_to_have_attribute("open", "")  # collapsed
    expect(overruled.locator("mark").first).not_to_be_visible()
    assert QualityOverride.objects.get().note == "A summary restates the message: that is the task."

    page.keyboard.press("o")  # the keyboard: the first open warning, "Stray whitespace"
    expect(page.locator("#quality-warnings .warning.overruled")).to_have_count(2)
    expect(page.locator("#quality-warnings [data-not-a-problem]")).to_have_count(0)
    screenshot("overruled")
    stored = Example.objects.get(pk=example.pk)
    assert stored.warning_codes == "" and stored.risk == 0

    # changed her mind about the whitespace: undo, from the collapsed line
    whitespace = page.locator("#quality-warnings .warning.overruled[data-code=whitespace]")
    whitespace.locator("summary").click()
    whitespace.get_by_role("button", name="Undo: it is a problem").click()
    expect(page.locator("#quality-warnings .warning[data-code=whitespace] [data-not-a-problem]")).to_be_visible()
    assert Example.objects.get(pk=example.pk).warning_codes == ",whitespace,"
    page.keyboard.press("o")  # and again, by the keyboard
    expect(page.locator("#quality-warnings .warning.overruled")).to_have_count(2)
    page.keyboard.press("a")  # the review keys still work after the swaps: approve and go on
    page.wait_for_url(re.compile(rf"/tasks/{task.slug}/review/"))
    expect(page.get_by_text("Approved “Summarise the customer's message.”.")).to_be_visible()

    lead_page = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900}).new_page()
    login(lead_page, lead.username)
    lead_page.goto(f"/tasks/{task.slug}/dashboard/")
    table = lead_page.get_by_test_id("checks")
    for code, title in (("leak", "Answer leak"), ("whitespace", "Stray whitespace")):
        row = table.locator(f"tr[data-code={code}]")
        expect(row.locator("td").first).to_have_text(title)
        expect(row.get_by_test_id("overruled")).to_have_text("1")
        expect(row.get_by_test_id("open")).to_have_text("0")
    expect(table.locator("tr[data-code=whitespace]").get_by_test_id("overruled-share")).to_have_text("100%")
    expect(table).not_to_contain_text(re.compile(r"[a-z]+_[a-z]+"))  # names, never codes
    lead_page.screenshot(path=str(ARTIFACTS / "test_reviewer_overrules_warnings-dashboard.png"), full_page=True)
