"""Real chromium: a lead starts an evaluation run from the endpoint (the fake OpenAI-compatible server: a boundary
Pairsmith does not own), the judge compares each answer with the approved one, and a reviewer judges every answer
blind with the keyboard only; the run's page then shows win / tie / loss with intervals, the judge beside the
reviewer, and a failure becomes a new example."""

import json

import pytest
from playwright.sync_api import expect

from annotate.models import Example
from models_loop.models import EvaluationItem, EvaluationRun
from tests.browser import login, logout
from tests.exports.conftest import build
from tests.fake_llm import Step

from .test_evaluation import approve_fixed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _judge_prefers_the_approved_answer(body):
    if body.get("response_format", {}).get("json_schema", {}).get("name") != "comparison":
        return None
    a = body["messages"][1]["content"].split("Answer A:\n")[1].split("\n\nAnswer B:")[0]
    return Step(content=json.dumps({"better": "B" if a.startswith("Draft:") else "A", "reason": "Names the day."}))


def test_a_reviewer_judges_an_evaluation_run_with_the_keyboard(page, screenshot, model_on, lead, reviewer, llm, inline):
    task = model_on
    approve_fixed(task, 16)
    export = build(task, user=lead, test_ratio=0.3)
    llm.rule = _judge_prefers_the_approved_answer

    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/")
    page.get_by_test_id("evaluations-link").click()
    page.get_by_label("Name").fill("ft-checkpoint-1")
    screenshot("evaluations")
    page.get_by_role("button", name="Start the run").click()
    run = EvaluationRun.objects.get(name="ft-checkpoint-1")
    assert run.export == export and run.size >= 3
    expect(page.get_by_test_id("start-judging")).to_be_visible()  # answered and judged: the run is over
    run.refresh_from_db()
    assert run.state == "succeeded" and run.counts == {"answered": run.size, "judged": run.size, "junk": 0}
    expect(page.get_by_test_id("judge-results").locator('tr[data-kind="all"] td[data-result="worse"]')).to_contain_text(
        "100%"
    )
    logout(page)

    login(page, reviewer.username)
    page.goto(run.get_absolute_url())
    page.keyboard.press("j")  # start judging
    expect(page.get_by_role("heading", name="Which answer is better?")).to_be_visible()
    screenshot("evaluation-judge")
    for n in range(run.size):
        item = EvaluationItem.objects.get(pk=page.locator("input[name=item]").get_attribute("value"))
        model_side = "a" if item.model_first else "b"
        approved_side = "b" if model_side == "a" else "a"
        page.keyboard.press(approved_side)  # the approved answer is better: the model's is worse
        page.keyboard.press("2")  # incomplete
        page.keyboard.press("c")
        page.keyboard.type("Misses the day.")
        page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        # The next answer opens; after the last, the run's page (nothing left to judge).
        page.wait_for_url(f"**?after={item.pk}" if n < run.size - 1 else f"**{run.get_absolute_url()}")
        item.refresh_from_db()
        assert (item.result, item.reasons, item.comment, item.judged_by) == (
            "worse", ["incomplete"], "Misses the day.", reviewer
        )  # fmt: skip
    expect(page.get_by_text("Every answer of this run is judged.")).to_be_visible()
    people = page.get_by_test_id("people-results").locator('tr[data-kind="all"]')
    expect(people.locator('td[data-result="worse"]')).to_contain_text("100%")
    expect(page.get_by_test_id("judge-agreement")).to_contain_text("agreed with the reviewer on 100%")
    page.get_by_test_id("figures").scroll_into_view_if_needed()
    screenshot("evaluation-run")

    page.get_by_test_id("make-example").first.click()
    expect(page.get_by_text("is waiting for annotators")).to_be_visible()
    made = EvaluationItem.objects.exclude(new_example=None).get()
    assert Example.objects.get(pk=made.new_example_id).status == "new"
    expect(page.get_by_test_id("new-example-link")).to_have_count(1)
    page.get_by_test_id("items").scroll_into_view_if_needed()
    screenshot("evaluation-items")
