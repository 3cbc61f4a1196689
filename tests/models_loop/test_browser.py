"""Real chromium: a lead turns drafts and the judge on and drafts with the model; the annotator opens the draft in
the box, marked "model draft", edits and submits it; the reviewer sees the judge's advice; the lead's dashboard shows
how drafts were edited and what was spent. The endpoint is the fake (a boundary Pairsmith does not own)."""

import pytest
from playwright.sync_api import expect

from annotate.models import Example
from models_loop.models import DraftEdit, Judgement
from tests.browser import login, logout

from .conftest import new_examples

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_draft_from_the_model_is_marked_in_the_editor_and_judged_on_submit(
    page, screenshot, task, lead, annotator, reviewer, llm, inline
):
    new_examples(task, 2)
    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/model/")
    expect(page.get_by_test_id("model-on")).to_contain_text("its default model is fake-model")
    page.get_by_label("Drafts on").check()
    page.get_by_label("Judge on").check()
    page.get_by_label("Draft prompt").fill("Answer in one short, polite sentence.")
    expect(page.locator('pre[data-request="draft"][data-role="system"]')).to_have_text(
        "[system]\nAnswer in one short, polite sentence."
    )  # the preview follows the typing
    screenshot("settings")
    page.get_by_role("button", name="Save model settings").click()
    expect(page.get_by_text("Model settings saved.")).to_be_visible()

    page.goto(f"/tasks/{task.slug}/")
    page.get_by_role("button", name="Draft with the model").click()
    expect(page.get_by_test_id("draft-run-result")).to_contain_text("2 drafted")
    screenshot("task-page")
    logout(page)

    login(page, annotator.username)
    page.goto(f"/tasks/{task.slug}/annotate/")
    page.get_by_role("button", name="Start annotating").click()  # a GET claims nothing; the button does
    box = page.locator("#id_completion")
    expect(box).to_have_value("Draft: Question 0: where is parcel 0?")
    expect(page.get_by_test_id("model-draft")).to_contain_text("model draft (fake-model)")
    screenshot("editor")
    box.fill("Parcel 0 is in the Leeds depot and arrives on Monday.")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("Submitted for review.")).to_be_visible()
    example = Example.objects.get(instruction="Question 0: where is parcel 0?")
    assert example.status == "submitted"
    assert DraftEdit.objects.get(example=example).change == "rewritten"
    assert Judgement.objects.get(example=example).score == 4
    logout(page)

    login(page, reviewer.username)
    page.goto(f"/tasks/{task.slug}/review/{example.uuid}/")
    expect(page.get_by_test_id("judge-score")).to_have_text("judge 4/5")
    expect(page.get_by_test_id("judge-reason")).to_have_text("Follows the guidelines.")
    expect(page.get_by_test_id("draft-edit")).to_contain_text("Started from a model draft: rewritten")
    screenshot("review")
    logout(page)

    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/dashboard/")
    dashboard = page.get_by_test_id("model-dashboard")
    expect(dashboard.get_by_test_id("spend-requests")).to_have_text("3")  # two drafts, one judgement
    expect(dashboard.locator('tr[data-kind="all"]')).to_contain_text("100%")
    dashboard.scroll_into_view_if_needed()
    screenshot("dashboard")
