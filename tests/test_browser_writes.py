"""Real chromium: the editor shows a rate limit's 429 in its status line (htmx swaps no 4xx by itself), and a lead
discards a broken draft from the example's timeline."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from annotate import services
from annotate.models import Example, Revision
from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def early_in_a_minute():
    """The clock five seconds into a minute (a little in the past), running: a test's writes fall in one window."""
    now = timezone.now()
    with time_machine.travel(now.replace(second=5, microsecond=0), tick=True):
        yield


def test_the_editor_shows_the_rate_limit_and_keeps_the_text(
    page, screenshot, settings, early_in_a_minute, task, annotator
):
    settings.RATE_LIMIT_WRITES = 1
    example = services.example_create(task=task, fields={"instruction": "How do I pair the Skylark remote?"})
    login(page, annotator.username)
    page.goto(f"/tasks/{task.slug}/annotate/")
    page.get_by_role("button", name="Start annotating").click()  # a GET claims nothing; the button does
    box = page.locator("#id_completion")
    box.fill("Hold the pairing button")
    expect(page.locator("#save-status")).to_contain_text("Saved", timeout=8000)
    box.press_sequentially(" for ten seconds.", delay=5)
    status = page.locator("#save-status")
    expect(status).to_contain_text("Not saved: Too many changes", timeout=8000)
    expect(status).to_contain_text("the limit is 1 a minute per person. Nothing was stored; try again in")
    expect(box).to_have_value("Hold the pairing button for ten seconds.")  # the text stays, to save later
    screenshot("429-in-the-editor")
    example.refresh_from_db()
    assert example.completion == "Hold the pairing button"
    assert Revision.objects.filter(example=example).count() == 1


def test_a_lead_discards_a_broken_draft_from_the_timeline(page, screenshot, task, annotator, lead):
    example = services.example_create(
        task=task, fields={"instruction": "Can the Skylark run on batteries?"}, completion="Yes, for a week."
    )
    Example.objects.filter(pk=example.pk).update(claimed_by=annotator, claim_expires_at=timezone.now() + timedelta(1))
    example.refresh_from_db()
    services.example_save(example=example, user=annotator, completion="paste " * 150, kind="edge", expected_version=1)
    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/examples/{example.uuid}/")
    page.get_by_text("Discard this draft…").click()
    expect(page.get_by_text("with its imported text")).to_be_visible()
    page.get_by_label("Why").fill("junk pasted by mistake")
    screenshot("discard-confirm")
    page.get_by_role("button", name="Discard the draft").click()
    expect(page.get_by_text("Draft discarded.")).to_be_visible()
    expect(page.get_by_text("discarded by a lead: junk pasted by mistake")).to_be_visible()
    expect(page.get_by_text("Discard this draft…")).to_have_count(0)  # a new example has no draft to discard
    screenshot("discarded")
    example.refresh_from_db()
    assert (example.status, example.completion) == ("new", "Yes, for a week.")


def test_a_reviewer_over_the_limit_sees_the_notice_and_keeps_the_form(
    page, screenshot, settings, early_in_a_minute, task, annotator, reviewer
):
    settings.RATE_LIMIT_WRITES = 1
    for i in range(2):
        services.example_create(
            task=task, fields={"instruction": f"Question {i}?"}, completion=f"Answer {i}.", source="written",
            status="submitted", author=annotator,
        )  # fmt: skip
    login(page, reviewer.username)
    page.goto(f"/tasks/{task.slug}/review/next/")
    page.get_by_role("button", name="Start reviewing").click()  # a GET leases nothing; the button does
    page.locator("button[data-approve]").click()
    expect(page.get_by_text("Approved “Question")).to_be_visible()
    page.locator("button[data-approve]").click()
    notice = page.locator("#rate-limit-notice")
    expect(notice).to_contain_text("Too many changes (saves, submits, verdicts, …): the limit is 1 a minute")
    expect(page.locator("button[data-approve]")).to_be_visible()  # the form stays, to approve later
    screenshot("429-notice")
    assert Example.objects.filter(status="approved").count() == 1
