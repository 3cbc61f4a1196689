"""Real chromium: a reviewer approves one pair and flags another from the keyboard; the annotator revises the
flagged pair and resubmits it; the reviewer approves it."""

import re

import pytest
from playwright.sync_api import expect

from annotate.models import Example
from reviews.models import Verdict
from tests.browser import login, logout
from tests.reviews.conftest import submit_new

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reviewer_approves_and_flags_with_the_keyboard_and_the_annotator_fixes_it(
    page, screenshot, task, annotator, reviewer
):
    first = submit_new(
        task, annotator, "Hold the round button for ten seconds.", instruction="My thermostat blinks amber. What now?"
    )
    second = submit_new(task, annotator, "Yes, any time.", instruction="Can I move my Skylark to a new house?")
    slug = task.slug

    login(page, reviewer.username)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"/tasks/{slug}/review/next/")  # a GET leases nothing: one focused button does
    expect(page.get_by_role("button", name="Start reviewing")).to_be_focused()
    expect(page.get_by_test_id("waiting")).to_have_text("2")
    assert not Example.objects.filter(claimed_by__isnull=False).exists()
    screenshot("start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/review/{first.uuid}/$"))  # the pair's own address, by a redirect
    expect(page.get_by_test_id("rendered-prompt")).to_contain_text("My thermostat blinks amber")
    assert Example.objects.get(pk=first.pk).claimed_by == reviewer
    page.keyboard.press("n")  # pass (a POST): the next pair, and this one goes back to the pool
    page.wait_for_url(re.compile(rf"/review/{second.uuid}/$"))
    assert Example.objects.get(pk=first.pk).claimed_by is None
    page.keyboard.press("n")
    page.wait_for_url(re.compile(rf"/review/{first.uuid}/$"))
    page.keyboard.press("a")  # approve: the next pair opens
    page.wait_for_url(re.compile(rf"/review/{second.uuid}/"))
    expect(page.get_by_text("Approved “My thermostat blinks amber. What now?”.")).to_be_visible()

    page.keyboard.press("f")  # flag: reasons by number, c for the comment
    reasons = page.locator("fieldset.reasons")
    expect(reasons).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("6")
    expect(page.locator("input[name=reasons][value=inaccurate]")).to_be_checked()
    expect(page.locator("input[name=reasons][value=off_task]")).to_be_checked()
    page.keyboard.press("c")
    expect(page.locator("#id_comment")).to_be_focused()
    page.keyboard.type("Say what the move involves: unpair it in the app, then pair it again at the new house.")
    screenshot("review-flag")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(rf"/tasks/{slug}/review/$"))  # the queue is empty now
    expect(page.get_by_text("Flagged “Can I move my Skylark to a new house?” back to anna.")).to_be_visible()
    second.refresh_from_db()
    assert second.status == "flagged"
    flag = Verdict.objects.get(example=second)
    assert (flag.decision, flag.reasons, flag.reviewer) == ("flag", ["inaccurate", "off_task"], reviewer)
    logout(page)

    login(page, annotator.username)
    page.goto(f"/tasks/{slug}/mine/?status=flagged")
    row = page.locator(f"tr[data-example='{second.uuid}']")
    expect(row).to_contain_text("inaccurate")
    expect(row).to_contain_text("off_task")
    expect(row).to_contain_text("unpair it in the app")
    row.get_by_role("link", name="Revise").click()
    page.wait_for_url(re.compile(rf"/examples/{second.uuid}/edit/"))
    expect(page.get_by_text("Sent back by rita")).to_be_visible()
    page.locator("#id_completion").fill("Yes. Unpair it in the app, move it, then pair it again at the new house.")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Submitted for review.")).to_be_visible()
    logout(page)

    login(page, reviewer.username)
    page.goto(f"/tasks/{slug}/review/")
    page.get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(re.compile(rf"/review/{second.uuid}/"))
    expect(page.get_by_test_id("diff").locator("ins").first).to_be_visible()
    expect(page.get_by_text("Earlier verdicts (1)")).to_be_visible()
    screenshot("review-resubmitted")
    page.keyboard.press("a")
    expect(page.get_by_text("Approved “Can I move my Skylark to a new house?”.")).to_be_visible()
    assert Example.objects.get(pk=second.pk).status == "approved"
    assert Example.objects.get(pk=first.pk).status == "approved"
    assert Verdict.objects.filter(example=second).count() == 2
    page.goto(f"/tasks/{slug}/examples/{second.uuid}/")
    expect(page.get_by_test_id("timeline").locator("li[data-kind=verdict]")).to_have_count(2)
    screenshot("timeline")


def test_a_late_header_swap_leaves_the_comment_focused(page, task, annotator, reviewer):
    """Under load the header's flagged badge (loaded by htmx after the page) can arrive after the reviewer pressed
    `c`: that swap must not pull the focus back to the reasons (it did, and the comment lost what was typed next)."""
    submit_new(task, annotator, "Yes, any time.", instruction="Can I move my Skylark to a new house?")
    login(page, reviewer.username)
    held = []
    page.route("**/account/flagged/", lambda route: held.append(route))  # the badge answers when we say so
    page.goto(f"/tasks/{task.slug}/review/next/")
    expect(page.get_by_role("button", name="Start reviewing")).to_be_focused()  # autofocus lands at a paint, after load
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/review/[0-9a-f-]+/$"))
    page.keyboard.press("f")
    page.keyboard.press("1")
    page.keyboard.press("c")
    expect(page.locator("#id_comment")).to_be_focused()
    page.wait_for_function("() => true")  # let the route handlers run
    assert held, "the header asks for its flagged badge after the page loads"
    for route in held:
        route.continue_()
    expect(page.locator("#flagged-badge")).to_have_count(1)
    page.wait_for_timeout(300)  # the swap and its afterSwap handlers
    expect(page.locator("#id_comment")).to_be_focused()
    page.keyboard.type("Say what the move involves.")
    expect(page.locator("#id_comment")).to_have_value("Say what the move involves.")
