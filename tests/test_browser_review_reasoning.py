"""Real chromium, keyboard only: in a task that asks for the reasoning, a reviewer's "fix and approve" shows the
reasoning beside the completion; an edit of a version another reviewer changed meanwhile is refused with the typed
texts kept and nothing overwritten; after a reload the reviewer fixes both, and the stored revision and the diffs on
the review screen and the timeline show it."""

import re

import pytest
from playwright.sync_api import expect

from annotate.models import Example, Revision
from reviews import services
from tests.browser import login
from tests.factories import MembershipFactory, UserFactory
from tests.reviews.test_reviewer_reasoning import REASONING, submit_with_reasoning

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reviewer_edits_the_reasoning_beside_the_completion_from_the_keyboard(
    page, screenshot, task, annotator, reviewer
):
    task.asks_reasoning = True
    task.approvals_required = 2
    task.save()
    example = submit_with_reasoning(task, annotator)
    other = UserFactory(username="remy")
    MembershipFactory(task=task, user=other, role="reviewer")

    login(page, reviewer.username)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"/tasks/{task.slug}/review/{example.uuid}/")
    page.keyboard.press("e")
    completion, reasoning = page.locator("#id_edit_completion"), page.get_by_test_id("edit-reasoning")
    expect(completion).to_be_focused()
    expect(reasoning).to_be_visible()
    expect(reasoning).to_have_value(REASONING)
    completion_box, reasoning_box = completion.bounding_box(), reasoning.bounding_box()
    assert reasoning_box["x"] + reasoning_box["width"] <= completion_box["x"]  # beside it, before it
    assert abs(reasoning_box["y"] - completion_box["y"]) < 5
    page.keyboard.press("Shift+Tab")
    expect(reasoning).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("Mine: hold the button for 10 seconds.")

    # Meanwhile another reviewer fixes the reasoning (approval 1 of 2): this page now shows a stale version.
    services.verdict_record(
        example=example, reviewer=other, decision="approve", version=example.version,
        completion=example.completion, reasoning="Theirs: hold the <button> for ten seconds, then wait.",
    )  # fmt: skip
    page.keyboard.press("Control+Enter")
    error = page.get_by_test_id("decide-error")
    expect(error).to_contain_text("remy changed this example since you opened it")
    expect(page.get_by_test_id("edit-reasoning")).to_have_value("Mine: hold the button for 10 seconds.")
    stored = Example.objects.get(pk=example.pk)
    assert stored.reasoning == "Theirs: hold the <button> for ten seconds, then wait."
    assert not Revision.objects.filter(example=example, reasoning__startswith="Mine").exists()
    screenshot("stale-edit-refused")

    page.goto(f"/tasks/{task.slug}/review/{example.uuid}/")  # the reload the error offers
    expect(page.get_by_test_id("reasoning")).to_have_text("Theirs: hold the <button> for ten seconds, then wait.")
    expect(page.get_by_test_id("reasoning-diff")).to_be_visible()  # the other reviewer's change, marked
    page.keyboard.press("e")
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_test_id("edit-reasoning")).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.press("Backspace")  # the final "."
    page.keyboard.type(" until it blinks.")
    page.keyboard.press("Tab")
    expect(page.locator("#id_edit_completion")).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Then wait.")
    screenshot("edit-reasoning-beside-completion")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(rf"/tasks/{task.slug}/review/$"))
    expect(page.get_by_text("it waits for a second reviewer")).to_be_visible()

    revision = Revision.objects.filter(example=example).order_by("id").last()
    assert (revision.reason, revision.author) == ("reviewer_edit", reviewer)
    assert revision.reasoning == "Theirs: hold the <button> for ten seconds, then wait until it blinks."
    assert revision.text == "Hold the round button for ten seconds. Then wait."
    stored = Example.objects.get(pk=example.pk)
    assert (stored.reasoning, stored.completion) == (revision.reasoning, revision.text)
    assert stored.version == example.version + 2  # the other reviewer's edit, then this one

    page.goto(f"/tasks/{task.slug}/review/{example.uuid}/")
    diff = page.get_by_test_id("reasoning-diff")
    expect(diff.locator("del")).to_have_text(["wait."])
    expect(diff.locator("ins")).to_have_text(["wait until it blinks."])
    page.goto(f"/tasks/{task.slug}/examples/{example.uuid}/")
    timeline = page.get_by_test_id("timeline-reasoning-diff")
    expect(timeline).to_have_count(2)  # the other reviewer's change and this one
    expect(timeline.first.locator("ins")).to_contain_text(["Theirs"])
    expect(timeline.first).to_contain_text("<button>")  # user text shown as text, not markup
    screenshot("timeline-reasoning-diff")
