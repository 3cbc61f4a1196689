"""Real chromium: claim, type, reload (the draft is kept), submit with the keyboard, and the next example appears."""

import re

import pytest
from playwright.sync_api import expect

from annotate.models import Example, Revision
from tests.browser import login
from tests.factories import ExampleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_annotator_never_loses_a_draft_and_submits_with_the_keyboard(page, screenshot, task, annotator):
    first = ExampleFactory(task=task, instruction="My thermostat blinks amber after the update. What now?")
    second = ExampleFactory(task=task, instruction="Can I move my Skylark to a new house?")
    login(page, annotator.username)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"/tasks/{task.slug}/annotate/")  # a GET claims nothing: one focused button does
    start = page.get_by_role("button", name="Start annotating")
    expect(start).to_be_focused()
    assert Example.objects.filter(claimed_by__isnull=False).count() == 0
    screenshot("start-annotating")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/examples/{first.uuid}/edit/")
    instruction = page.locator("[data-field=instruction]")
    expect(instruction).to_have_text("My thermostat blinks amber after the update. What now?")

    box = page.locator("#id_completion")
    box.fill("Hold the button for ten seconds")
    expect(page.locator("#save-status")).to_contain_text("Saved", timeout=8000)  # autosave, a few seconds after typing
    page.reload()
    expect(page.locator("#id_completion")).to_have_value("Hold the button for ten seconds")

    # Typed, then the page is left before the autosave fires: the beacon (or the browser's copy) keeps it.
    page.locator("#id_completion").press_sequentially(", then wait for the green light.", delay=5)
    page.goto(f"/tasks/{task.slug}/mine/")
    page.goto(f"/tasks/{task.slug}/examples/{first.uuid}/edit/")
    expect(page.locator("#id_completion")).to_have_value(
        "Hold the button for ten seconds, then wait for the green light."
    )
    screenshot("editor")

    page.keyboard.press("Control+/")  # the help, even with the text box focused
    expect(page.locator("#help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()
    page.locator("#id_completion").focus()
    page.keyboard.press("Alt+2")  # kind: edge case
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Submitted for review.")).to_be_visible()
    expect(instruction).to_have_text("Can I move my Skylark to a new house?")
    first.refresh_from_db()
    assert first.status == "submitted" and first.kind == "edge"
    assert first.completion == "Hold the button for ten seconds, then wait for the green light."
    assert Revision.objects.filter(example=first, reason="submit").exists()
    assert Example.objects.get(pk=second.pk).claimed_by == annotator
    screenshot("next")

    page.locator("#id_completion").fill("Yes: unpair it first.")
    expect(page.locator("#save-status")).to_contain_text("Saved", timeout=8000)
    page.keyboard.press("Alt+N")  # next (a POST): the draft stays in My work, and nothing else is left
    expect(page.get_by_text("Nothing left to annotate")).to_be_visible()
    expect(page.get_by_role("link", name="1 draft or flagged example")).to_be_visible()


def test_switching_tabs_saves_and_typing_on_does_not_conflict_with_that_save(page, task, annotator):
    example = ExampleFactory(task=task, instruction="Does the Skylark work with solar panels?")
    login(page, annotator.username)
    page.goto(f"/tasks/{task.slug}/annotate/")
    expect(page.get_by_role("button", name="Start annotating")).to_be_focused()
    page.keyboard.press("Enter")
    page.locator("#id_completion").press_sequentially("Yes, through", delay=5)
    # The annotator switches to another tab before the autosave fires: the page saves at once.
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    status = page.locator("#save-status")
    expect(status).to_contain_text("Saved", timeout=8000)  # never shown while the box holds unsaved text
    assert Example.objects.get(pk=example.pk).completion == "Yes, through"
    # Usually version 2; version 3 when an autosave went out mid-typing (a slow machine): the status then said
    # "Changes since version 2" until the switch's save stored the rest.
    saved = int(status.get_attribute("data-saved-version"))
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    # Back, typing on: the next autosave carries the version of that save, so it is stored, not refused.
    page.locator("#id_completion").press_sequentially(" the battery inverter.", delay=5)
    expect(status).to_have_text(re.compile(r"^Saved "), timeout=8000)
    assert int(status.get_attribute("data-saved-version")) > saved
    expect(page.get_by_text("changed since")).to_have_count(0)
    assert Example.objects.get(pk=example.pk).completion == "Yes, through the battery inverter."
