"""Drafts: `draft_completions` and the run behind it, against the fake endpoint (a boundary Pairsmith does not own:
tests/fake_llm.py). A draft becomes the text of a new example that has none, as a revision marked with the model's
name; a person's text is never replaced; failures stop the run with the reason and leave no half-written example."""

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotate import services as annotate_services
from annotate.models import AuditEvent, Example, Revision
from models_loop import runs, services
from models_loop.conf import OFF_MESSAGE, ModelFeaturesOff
from models_loop.models import ModelRun, TaskModelSettings
from tests.fake_llm import Step

from .conftest import new_examples

committed = pytest.mark.django_db(transaction=True)  # the run is sent after commit, as in production


def draft(*args) -> str:
    out = StringIO()
    call_command("draft_completions", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def untouched(example: Example) -> bool:
    fresh = Example.objects.get(pk=example.pk)
    return (fresh.completion, fresh.version, fresh.revisions.count()) == (example.completion, example.version, 0)


@committed
def test_drafts_every_new_example_as_a_revision_marked_with_the_model(model_on, llm, inline):
    examples = new_examples(model_on, 3)
    out = draft(model_on.slug, "--wait")
    assert "Drafts of support with fake-model (every example due): run" in out
    assert "succeeded: 3 drafted, 0 taken, 0 unusable" in out
    for example in examples:
        fresh = Example.objects.get(pk=example.pk)
        assert fresh.completion == f"Draft: {example.instruction}"
        assert fresh.status == Example.Status.NEW and fresh.version == 2
        revision = fresh.revisions.get()
        assert (revision.reason, revision.model_name, revision.author, revision.text) == (
            "model_draft",
            "fake-model",
            None,
            fresh.completion,
        )
        assert revision.example_version == 2
    # The requests went out on several threads: find the first example's by its text.
    request = next(r for r in llm.requests if r["messages"][-1]["content"] == examples[0].instruction)
    assert request["model"] == "fake-model" and request["max_tokens"] == 2048
    assert (
        request["messages"][0]["role"] == "system"
        and "Answer briefly and politely." in request["messages"][0]["content"]
    )
    assert request["messages"][1] == {"role": "user", "content": examples[0].instruction}
    run = ModelRun.objects.get()
    assert (run.state, run.progress, run.total, run.counts) == (
        "succeeded",
        3,
        3,
        {"drafted": 3, "taken": 0, "unusable": 0},
    )
    assert run.tokens_in > 0 and run.tokens_out == 3 * 7  # "Draft:" and six words of each question
    spend = TaskModelSettings.objects.get(task=model_on)
    assert (spend.requests, spend.tokens_in, spend.tokens_out) == (3, run.tokens_in, run.tokens_out)
    events = list(AuditEvent.objects.filter(task=model_on, action__startswith="model_run").order_by("id"))
    assert [e.action for e in events] == ["model_run_requested", "model_run_finished"]
    assert events[1].detail["counts"] == {"drafted": 3, "taken": 0, "unusable": 0}
    assert events[1].detail["tokens_out"] == run.tokens_out and events[1].actor is None


@committed
def test_limit_and_a_second_run_goes_on_with_the_rest(model_on, llm, inline):
    new_examples(model_on, 5)
    assert "succeeded: 2 drafted" in draft(model_on.slug, "--limit", "2", "--wait")
    assert Revision.objects.filter(reason="model_draft").count() == 2
    assert "succeeded: 3 drafted" in draft(model_on.slug, "--wait")
    assert "succeeded: nothing to do; 0 tokens in, 0 out." in draft(model_on.slug, "--wait")
    assert len(llm.requests) == 5


@committed
def test_never_replaces_a_persons_or_an_imports_text(model_on, llm, inline, annotator):
    fresh, imported, held, written = new_examples(model_on, 4)
    Example.objects.filter(pk=imported.pk).update(completion="Imported answer.")
    annotate_services.example_claim_next(task=model_on, user=annotator)  # takes `fresh`, the oldest
    held.refresh_from_db()
    Example.objects.filter(pk=held.pk).update(
        claimed_by=annotator, claim_expires_at=timezone.now() + timedelta(hours=1)
    )
    Example.objects.filter(pk=written.pk).update(status="draft", author=annotator)  # a person's draft, still empty
    expired = new_examples(model_on, 1, start=10)[0]
    Example.objects.filter(pk=expired.pk).update(claimed_by=annotator, claim_expires_at=timezone.now() - timedelta(1))
    draft(model_on.slug, "--wait")
    drafted = set(Revision.objects.filter(reason="model_draft").values_list("example_id", flat=True))
    assert drafted == {expired.pk}  # a lease that ran out is no hold
    assert Example.objects.get(pk=imported.pk).completion == "Imported answer."
    assert Example.objects.get(pk=fresh.pk).completion == "" and Example.objects.get(pk=held.pk).completion == ""
    assert Example.objects.get(pk=written.pk).status == "draft"


@committed
def test_a_person_who_takes_the_example_while_the_model_writes_keeps_it(model_on, llm, inline, annotator):
    example = new_examples(model_on, 1)[0]

    def claim_meanwhile(body):  # the annotator's claim lands while the request is out (the server's thread)
        Example.objects.filter(pk=example.pk).update(
            claimed_by=annotator, claim_expires_at=timezone.now() + timedelta(1)
        )

    llm.rule = claim_meanwhile
    assert "succeeded: 0 drafted, 1 taken, 0 unusable" in draft(model_on.slug, "--wait")
    assert Example.objects.get(pk=example.pk).completion == "" and not Revision.objects.exists()


@committed
def test_429_and_500_are_retried_and_the_drafts_arrive(model_on, llm, inline):
    new_examples(model_on, 2)
    llm.then(Step(status=429, headers={"Retry-After": "0"}), Step(status=500), Step(status=502))
    assert "succeeded: 2 drafted" in draft(model_on.slug, "--wait")
    assert len(llm.requests) == 5
    assert TaskModelSettings.objects.get(task=model_on).requests == 2  # answered requests are counted


@committed
def test_a_timeout_fails_the_run_with_the_reason_and_nothing_half_written(model_on, llm, inline, settings):
    settings.LLM_TIMEOUT, settings.LLM_MAX_RETRIES = 0.3, 1
    first, slow, last = new_examples(model_on, 3)
    llm.rule = lambda body: Step(delay=2) if "parcel 1?" in body["messages"][-1]["content"] else None
    with pytest.raises(CommandError) as caught:
        draft(model_on.slug, "--wait")
    message = str(caught.value)
    assert message.startswith(f"Run {ModelRun.objects.get().pk} failed: Stopped at example {slow.uuid}: ")
    assert "The model endpoint did not answer within 0.3 s (LLM_TIMEOUT) (2 attempts)." in message
    assert "Nothing was written for it; the answers that came before were kept. Run again to continue" in message
    assert untouched(slow)
    assert {e.completion for e in Example.objects.filter(pk__in=[first.pk, last.pk])} == {
        f"Draft: {first.instruction}",
        f"Draft: {last.instruction}",
    }
    event = AuditEvent.objects.get(action="model_run_failed")
    assert event.detail["counts"] == {"drafted": 2, "taken": 0, "unusable": 0} and "0.3 s" in event.detail["error"]


@committed
def test_a_wrong_key_fails_clearly_and_writes_nothing(model_on, llm, inline, settings):
    settings.LLM_API_KEY = "sk-revoked"
    examples = new_examples(model_on, 3)
    with pytest.raises(CommandError) as caught:
        draft(model_on.slug, "--wait")
    assert "The model endpoint refused the key (HTTP 401: Incorrect API key provided.): check LLM_API_KEY." in str(
        caught.value
    )
    assert "sk-revoked" not in str(caught.value)
    assert all(untouched(e) for e in examples)
    spend = TaskModelSettings.objects.get(task=model_on)
    assert (spend.requests, spend.tokens_in, spend.tokens_out) == (0, 0, 0)
    assert ModelRun.objects.get().state == "failed"


@committed
def test_unusable_answers_are_counted_and_skipped(model_on, llm, inline, settings):
    settings.LLM_CONCURRENCY = 1  # one request at a time: the scripted answers go to the examples in order
    new_examples(model_on, 3)
    llm.then(Step(content="   "), Step(content="ok\x00"))
    out = draft(model_on.slug, "--wait")
    assert "succeeded: 1 drafted, 0 taken, 2 unusable" in out
    assert "The model's draft is empty." in out
    assert Revision.objects.filter(reason="model_draft").count() == 1


def test_features_off_the_commands_exit_non_zero_saying_so(model_on, llm_off):
    new_examples(model_on, 1)
    for command in ("draft_completions", "judge"):
        with pytest.raises(CommandError) as caught:
            call_command(command, model_on.slug, "--wait", stdout=StringIO())
        assert str(caught.value) == OFF_MESSAGE
    assert not ModelRun.objects.exists()
    with pytest.raises(ModelFeaturesOff):
        services.run_request(task=model_on, kind="draft")


def test_a_task_with_drafts_off_or_no_model_is_refused(task, lead, llm, settings):
    with pytest.raises(CommandError, match="Drafts are off for support: a lead turns them on in the task's model"):
        call_command("draft_completions", task.slug, stdout=StringIO())
    with pytest.raises(CommandError, match="Judging is off for support"):
        call_command("judge", task.slug, stdout=StringIO())
    services.model_settings_save(task=task, user=lead, values={"drafts_enabled": True})
    settings.LLM_MODEL = ""
    with pytest.raises(CommandError, match="No model named: set LLM_MODEL, or a model name in the task's model"):
        call_command("draft_completions", task.slug, stdout=StringIO())
    with pytest.raises(CommandError, match="--limit must be at least 1, not 0"):
        call_command("draft_completions", task.slug, "--limit", "0", stdout=StringIO())
    with pytest.raises(CommandError, match="No task with slug 'nope'"):
        call_command("draft_completions", "nope", stdout=StringIO())
    assert not ModelRun.objects.exists()


def test_a_live_run_is_returned_instead_of_a_second(model_on, llm):
    first = services.run_request(task=model_on, kind="draft")
    assert services.run_request(task=model_on, kind="draft") == first
    assert ModelRun.objects.count() == 1


@committed
def test_drafts_in_the_lead_model_name_and_prompt(model_on, lead, llm, inline):
    services.model_settings_save(
        task=model_on, user=lead, values={"drafts_enabled": True, "model_name": "tuned-7b", "draft_prompt": "Be terse."}
    )
    new_examples(model_on, 1)
    draft(model_on.slug, "--wait")
    assert llm.requests[0]["model"] == "tuned-7b"
    assert llm.requests[0]["messages"][0] == {"role": "system", "content": "Be terse."}
    assert Revision.objects.get().model_name == "tuned-7b"


@committed
def test_the_lease_is_renewed_while_a_slow_model_answers(model_on, llm, inline, monkeypatch):
    """A slow model must not let the lease run out (the sweep would hand the run to a second worker)."""
    monkeypatch.setattr(runs, "BEAT", 0.05)
    new_examples(model_on, 1)
    leases = []

    def slow(body):  # the server's thread reads the run's lease before and after answering slowly
        leases.append(ModelRun.objects.get().lease_expires_at)
        time.sleep(0.5)
        leases.append(ModelRun.objects.get().lease_expires_at)

    llm.rule = slow
    assert "succeeded: 1 drafted" in draft(model_on.slug, "--wait")
    assert leases[1] > leases[0]
