"""The judge: `judge SLUG` and a judgement on every submit when on, against the fake endpoint (a boundary Pairsmith
does not own: tests/fake_llm.py). A score 1-5 and a reason per submitted text, advice that orders "riskiest first"
and never decides; junk answers are clear failures; agreement with reviewers is reported."""

import json
from io import StringIO

import pandas as pd
import pytest
from django.core.management import call_command

from annotate import services as annotate_services
from annotate.models import AuditEvent, Example
from annotate.scans import scan_request
from models_loop import services, stats
from models_loop.models import Judgement, ModelRun, TaskModelSettings
from reviews import services as review_services
from reviews.services import QueueFilters
from tests.fake_llm import Step

from .conftest import new_examples, submitted_example

committed = pytest.mark.django_db(transaction=True)


def judge(*args) -> str:
    out = StringIO()
    call_command("judge", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def score_by_text(body):
    """The fake judge: 1 for a rude completion, 5 otherwise (it reads the completion the request carries)."""
    text = body["messages"][-1]["content"]
    if "Completion:" not in text:
        return None
    score = 1 if "rude" in text.split("Completion:")[1] else 5
    return Step(content=json.dumps({"score": score, "reason": "Rude to the customer." if score == 1 else "Fine."}))


@committed
def test_judge_scores_every_submitted_text_and_a_low_score_goes_first_in_riskiest_first(
    model_on, llm, inline, annotator, reviewer
):
    polite = submitted_example(model_on, annotator, "It ships Monday.", "When does it ship?")
    rude = submitted_example(model_on, annotator, "Figure it out, rude person.", "Can I get a refund?")
    new_examples(model_on, 1)  # not submitted: not judged
    llm.rule = score_by_text
    out = judge(model_on.slug, "--wait")
    assert "Judgements of support with fake-model (every example due)" in out
    assert "succeeded: 2 judged, 0 junk" in out
    low = Judgement.objects.get(example=rude)
    assert (low.score, low.reason, low.model, low.revision) == (
        1,
        "Rude to the customer.",
        "fake-model",
        rude.revisions.get(),
    )
    assert low.tokens_in > 0 and low.tokens_out == 7  # the words of the JSON answer, as the fake counts
    assert Judgement.objects.get(example=polite).score == 5
    request = llm.requests[0]
    assert request["response_format"]["type"] == "json_schema" and request["max_tokens"] == 300
    rude.refresh_from_db()
    assert rude.status == Example.Status.SUBMITTED  # advice, never a verdict
    assert rude.warning_codes == ",judge_low," and rude.risk == 6
    assert rude.warnings[0]["message"] == "The model judge (fake-model) scored it 1/5: Rude to the customer."
    assert Example.objects.get(pk=polite.pk).warning_codes == ""
    first = review_services.review_claim_next(task=model_on, reviewer=reviewer, filters=QueueFilters(order="risky"))
    assert first == rude
    assert "succeeded: nothing to do" in judge(model_on.slug, "--wait")  # each text is judged once
    assert len(llm.requests) == 2


@committed
def test_a_scan_keeps_the_judges_warning(model_on, llm, inline, annotator, lead):
    rude = submitted_example(model_on, annotator, "Figure it out, rude person.")
    llm.rule = score_by_text
    judge(model_on.slug, "--wait")
    scan_request(task=model_on, user=lead)
    rude.refresh_from_db()
    assert "judge_low" in rude.warning_codes and rude.risk >= 6


@committed
def test_judge_on_submit_judges_the_submitted_text_after_commit(model_on, llm, inline, annotator):
    example = new_examples(model_on, 1)[0]
    annotate_services.example_claim_next(task=model_on, user=annotator)
    submitted = annotate_services.example_submit(
        example=example, user=annotator, completion="It ships Monday.", kind="happy", expected_version=1
    )
    judgement = Judgement.objects.get(example=example)
    assert judgement.revision == submitted.revisions.filter(reason="submit").get()
    assert judgement.score == 4 and judgement.reason == "Follows the guidelines."
    run = ModelRun.objects.get()
    assert (run.kind, run.example, run.state) == ("judge", example, "succeeded")
    event = AuditEvent.objects.get(action="model_run_finished")
    assert event.target == f"judge of {example.uuid}" and event.detail["counts"] == {"judged": 1, "junk": 0}
    assert not AuditEvent.objects.filter(action="model_run_requested").exists()  # the submit asked, not a person


@committed
def test_a_failing_judge_never_blocks_the_submit(model_on, llm, inline, annotator, settings):
    settings.LLM_MAX_RETRIES = 0
    llm.then(Step(status=503, message="overloaded"))
    example = new_examples(model_on, 1)[0]
    annotate_services.example_claim_next(task=model_on, user=annotator)
    submitted = annotate_services.example_submit(
        example=example, user=annotator, completion="It ships Monday.", kind="happy", expected_version=1
    )
    assert Example.objects.get(pk=submitted.pk).status == "submitted"
    run = ModelRun.objects.get()
    assert run.state == "failed"
    assert "The model endpoint failed (HTTP 503: overloaded) (1 attempt, no retries (LLM_MAX_RETRIES=0))." in run.error
    assert not Judgement.objects.exists()


@committed
def test_judge_off_for_the_task_submits_without_asking(model_on, llm, inline, annotator, lead):
    services.model_settings_save(task=model_on, user=lead, values={"judge_enabled": False})
    example = new_examples(model_on, 1)[0]
    annotate_services.example_claim_next(task=model_on, user=annotator)
    annotate_services.example_submit(
        example=example, user=annotator, completion="Monday.", kind="happy", expected_version=1
    )
    assert llm.requests == [] and not ModelRun.objects.exists()


@committed
def test_junk_from_the_judge_fails_the_submits_run_with_the_answer_quoted(model_on, llm, inline, annotator):
    llm.then(Step(content="I'd say this one is pretty good!"))
    example = new_examples(model_on, 1)[0]
    annotate_services.example_claim_next(task=model_on, user=annotator)
    annotate_services.example_submit(
        example=example, user=annotator, completion="Monday.", kind="happy", expected_version=1
    )
    run = ModelRun.objects.get()
    assert run.state == "failed"
    assert run.error == (
        f"Example {example.uuid}: The model's answer is not a judgement (expected JSON "
        '{"score": 1-5, "reason": "..."}): "I\'d say this one is pretty good!"'
    )
    assert not Judgement.objects.exists() and "judge_low" not in Example.objects.get(pk=example.pk).warning_codes
    assert TaskModelSettings.objects.get(task=model_on).requests == 1  # the tokens were spent all the same


@committed
def test_a_whole_task_run_counts_junk_and_goes_on(model_on, llm, inline, annotator):
    for i in range(3):
        submitted_example(model_on, annotator, f"Answer {i}.", f"Question {i}?")
    llm.then(Step(content="no idea"))
    out = judge(model_on.slug, "--wait")
    assert "succeeded: 2 judged, 1 junk" in out
    assert "The model's answer is not a judgement" in out
    assert Judgement.objects.count() == 2


@committed
def test_a_new_submit_drops_the_judges_warning_about_the_old_text(model_on, llm, inline, annotator, reviewer):
    rude = submitted_example(model_on, annotator, "Figure it out, rude person.")
    llm.rule = score_by_text
    judge(model_on.slug, "--wait")
    rude.refresh_from_db()
    review_services.verdict_record(
        example=rude, reviewer=reviewer, decision="flag", version=rude.version, reasons=["unclear"]
    )
    rude.refresh_from_db()
    annotate_services.example_submit(
        example=rude, user=annotator, completion="Sorry: it ships Monday.", kind="happy", expected_version=rude.version
    )
    rude.refresh_from_db()
    assert rude.warning_codes == "" and rude.risk == 0
    assert list(Judgement.objects.filter(example=rude).order_by("id").values_list("score", flat=True)) == [1, 5]


def test_agreement_with_the_reviewers(model_on, annotator, reviewer):
    cases = [(1, "reject"), (2, "flag"), (2, "approve"), (4, "approve"), (5, "approve"), (5, "flag")]
    for i, (score, decision) in enumerate(cases):
        example = submitted_example(model_on, annotator, f"Answer {i}.", f"Question {i}?")
        Judgement.objects.create(example=example, revision=example.revisions.get(), score=score, reason="r", model="m")
        reasons = [] if decision == "approve" else ["unclear"]
        review_services.verdict_record(
            example=example, reviewer=reviewer, decision=decision, version=example.version, reasons=reasons
        )
    submitted_example(model_on, annotator, "Unjudged.", "Other?")
    agreement = stats.judge_agreement(model_on)
    assert (agreement["judgements"], agreement["pairs"], agreement["low"], agreement["high"]) == (6, 6, 3, 3)
    assert agreement["low_caught"] == pytest.approx(2 / 3)
    assert agreement["high_approved"] == pytest.approx(2 / 3)
    rank = {"reject": 0, "flag": 1, "approve": 2}
    frame = pd.DataFrame({"score": [s for s, _ in cases], "verdict": [rank[d] for _, d in cases]})
    # Spearman's rho by its definition: Pearson's correlation of the average ranks.
    assert agreement["spearman"] == pytest.approx(frame.rank().corr().loc["score", "verdict"])


def test_spearman_from_a_table_matches_pandas_and_is_none_without_spread():
    cells = {(1, 0): 3, (2, 1): 5, (3, 2): 2, (5, 2): 7, (5, 0): 1, (4, 1): 2}
    rows = [(x, y) for (x, y), n in cells.items() for _ in range(n)]
    frame = pd.DataFrame(rows, columns=["x", "y"])
    assert stats.spearman(cells) == pytest.approx(frame.rank().corr().loc["x", "y"])
    assert stats.spearman({(3, 0): 4, (3, 2): 1}) is None
    assert stats.spearman({}) is None


def test_kendall_tau_b_from_a_table_matches_the_pairwise_definition():
    cells = {(1, 0): 3, (2, 1): 5, (3, 2): 2, (5, 2): 7, (5, 0): 1, (4, 1): 2}
    rows = [(x, y) for (x, y), n in cells.items() for _ in range(n)]
    # By definition, over every pair of rows: (concordant - discordant) / sqrt(pairs untied on x × untied on y).
    concordant = discordant = untied_x = untied_y = 0
    for i, (x1, y1) in enumerate(rows):
        for x2, y2 in rows[i + 1 :]:
            sign = (x1 - x2) * (y1 - y2)
            concordant += sign > 0
            discordant += sign < 0
            untied_x += x1 != x2
            untied_y += y1 != y2
    expected = (concordant - discordant) / (untied_x * untied_y) ** 0.5
    assert stats.kendall(cells) == pytest.approx(expected)
    assert 0 < stats.kendall(cells) < stats.spearman(cells)  # tau runs below rho on the same ranking
    assert stats.kendall({(3, 0): 4, (3, 2): 1}) is None
    assert stats.kendall({(1, 0): 2, (5, 2): 3}) == pytest.approx(1.0)
    assert stats.kendall({(1, 2): 2, (5, 0): 3}) == pytest.approx(-1.0)
