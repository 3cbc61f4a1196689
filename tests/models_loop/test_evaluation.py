"""Evaluation runs: a model's answers to the test split of an export, from the endpoint (the fake OpenAI-compatible
server of tests/fake_llm.py: the model provider is a boundary Pairsmith does not own) or from a file, judged blind by
reviewers, with the model judge's verdicts beside theirs, and a failure made into a new example."""

import json
import uuid

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from annotate.models import AuditEvent, Example
from exports.changes import manifest_entries
from exports.storage import export_dir
from models_loop import evaluation
from models_loop.conf import ModelFeaturesOff
from models_loop.evaluation_job import parse_comparison
from models_loop.evaluation_stats import runs_compare, wilson
from models_loop.models import EvaluationItem, EvaluationRun, TaskModelSettings
from tests.exports.conftest import approve, build
from tests.fake_llm import Step

Result = EvaluationItem.Result
committed = pytest.mark.django_db(transaction=True)  # the job is sent after commit, as in production


def approve_fixed(task, n: int) -> list[Example]:
    """`n` approved examples with fixed UUIDs, so that the (seeded, deterministic) split puts the same ones in test
    on every run of the suite, and with external ids ext-0, ext-1, ..."""
    examples = approve(task, n)
    for i, example in enumerate(examples):
        example.uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"pairsmith-evaluation-test-{i}")
        example.external_id = f"ext-{i}"
    Example.objects.bulk_update(examples, ["uuid", "external_id"])
    return examples


@pytest.fixture
def held_out(task, lead):
    """40 approved examples (with external ids) and a v1 export holding about a quarter of them out as test."""
    approve_fixed(task, 40)
    export = build(task, user=lead, test_ratio=0.25)
    assert export.state == "succeeded", export.error
    return export


def _test_ids(export) -> list[int]:
    return [pk for pk, _u, _h, split in manifest_entries(export_dir(export) / "manifest.json") if split == "test"]


def _outputs(export, text=lambda e: f"Answer to {e.external_id}.") -> bytes:
    examples = Example.objects.filter(pk__in=_test_ids(export)).order_by("id")
    return b"\n".join(orjson.dumps({"id": e.external_id, "output": text(e)}) for e in examples) + b"\n"


def test_a_run_from_a_file_takes_exactly_the_test_split_and_is_complete(task, lead, held_out, llm_off):
    ids = _test_ids(held_out)
    assert 3 < len(ids) < 20
    run = evaluation.evaluation_request(task=task, name="ft-v1", user=lead, outputs=_outputs(held_out))
    assert (run.state, run.source, run.size, run.export_id) == ("succeeded", "file", len(ids), held_out.pk)
    items = list(run.items.select_related("example"))
    assert sorted(i.example_id for i in items) == sorted(ids)
    first = items[0]
    assert first.output == f"Answer to {first.example.external_id}." and first.answered
    assert first.reference == first.example.completion  # compared with the approved completion
    event = AuditEvent.objects.get(action="evaluation_started")
    assert event.detail["items"] == len(ids) and event.detail["source"] == "file" and event.actor == lead


def test_the_sides_are_drawn_at_random_per_item_and_kept(task, lead, task_with_many_test_examples):
    run = evaluation.evaluation_request(task=task, name="r", user=lead, outputs=task_with_many_test_examples)
    firsts = list(run.items.values_list("model_first", flat=True))
    assert 0.3 < sum(firsts) / len(firsts) < 0.7  # about half: 120 draws
    item = run.items.first()
    assert item.sides == ((item.output, item.reference) if item.model_first else (item.reference, item.output))


@pytest.fixture
def task_with_many_test_examples(task, lead, llm_off):
    approve(task, 300)
    export = build(task, user=lead, test_ratio=0.4)
    return b"\n".join(
        orjson.dumps({"uuid": str(e.uuid), "output": "x"}) for e in Example.objects.filter(pk__in=_test_ids(export))
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "Line 2: not JSON"),
        (b"[1, 2]", "Line 2: not a JSON object."),
        (b'{"id": "ext-x", "output": "a"}', "Line 2, field \"id\": 'ext-x' is not an example of the test split."),
        (b'{"output": "a"}', 'Line 2: give either "id" (the external id) or "uuid", not neither.'),
        (b'{"id": "a", "uuid": "b", "output": "a"}', "not both"),
        (b'{"id": 3, "output": "a"}', 'Line 2, field "id": a string, not int.'),
        (b'{"id": "ext-0", "output": "a", "score": 1}', "Line 2: unknown field(s) 'score'"),
    ],
)
def test_a_bad_outputs_file_is_refused_naming_line_and_field_and_nothing_is_stored(
    task, lead, held_out, llm_off, line, message
):
    good = _outputs(held_out).split(b"\n")
    data = b"\n".join([good[0], line, *good[1:]])
    with pytest.raises(ValidationError) as caught:
        evaluation.evaluation_request(task=task, name="bad", user=lead, outputs=data)
    assert any(message in m for m in caught.value.messages), caught.value.messages
    assert not EvaluationRun.objects.exists() and not EvaluationItem.objects.exists()
    assert not AuditEvent.objects.filter(action="evaluation_started").exists()


def test_an_outputs_file_must_cover_every_test_example_once(task, lead, held_out, llm_off):
    lines = _outputs(held_out).strip().split(b"\n")
    with pytest.raises(ValidationError, match="have no output"):
        evaluation.evaluation_request(task=task, name="short", outputs=b"\n".join(lines[1:]))
    with pytest.raises(ValidationError, match="was given already on line 1"):
        evaluation.evaluation_request(task=task, name="twice", outputs=b"\n".join([lines[0], *lines]))
    bad_output = lines[0].replace(b'"output":"', b'"output":1,"x":"')
    with pytest.raises(ValidationError):
        evaluation.evaluation_request(task=task, name="num", outputs=b"\n".join([bad_output, *lines[1:]]))
    assert not EvaluationRun.objects.exists()


def test_no_test_split_no_run(task, lead, llm_off):
    approve(task, 10)
    build(task, user=lead)  # test ratio 0
    with pytest.raises(ValidationError, match="no succeeded export with a test split"):
        evaluation.evaluation_request(task=task, name="r", outputs=b"")
    with pytest.raises(ValidationError, match="v1 of support has no test split"):
        evaluation.evaluation_request(task=task, name="r", version=1, outputs=b"")
    with pytest.raises(ValidationError, match="no export v9"):
        evaluation.evaluation_request(task=task, name="r", version=9, outputs=b"")


@committed
def test_a_run_from_the_endpoint_asks_the_model_with_the_prompt_as_trained(task, lead, held_out, llm, inline):
    run = evaluation.evaluation_request(task=task, name="from-endpoint", user=lead, model="ft-model")
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert run.counts == {"answered": run.size}
    asked = [r for r in llm.requests if r["model"] == "ft-model"]
    assert len(asked) == run.size
    assert "response_format" not in asked[0]
    item = run.items.select_related("example").first()
    assert (
        item.output
        == "Draft: "
        + " ".join(
            next(m["content"] for m in reversed(_request_for(llm, item)["messages"]) if m["role"] == "user").split()
        )[:200]
    )
    assert run.tokens_in > 0 and TaskModelSettings.objects.get(task=task).tokens_in == run.tokens_in
    assert AuditEvent.objects.filter(action="evaluation_ended", target="from-endpoint").exists()


def _request_for(llm, item):
    return next(r for r in llm.requests if item.example.instruction in json.dumps(r))


@committed
def test_with_the_judge_on_every_answer_gets_the_judges_verdict_in_the_order_shown(
    task, lead, held_out, model_on, llm, inline
):
    def rule(body):
        if body.get("response_format", {}).get("json_schema", {}).get("name") == "comparison":
            a = body["messages"][1]["content"].split("Answer A:\n")[1].split("\n\nAnswer B:")[0]
            better = "A" if a.startswith("Draft:") else "B"  # the model's answer always wins here
            return Step(content=json.dumps({"better": better, "reason": "More direct."}))
        return None

    llm.rule = rule
    run = evaluation.evaluation_request(task=task, name="judged", user=lead)
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert run.judge_model == "fake-model" and run.counts["judged"] == run.size
    assert set(run.items.values_list("judge_result", flat=True)) == {Result.BETTER}
    assert set(run.items.values_list("judge_reason", flat=True)) == {"More direct."}


@committed
def test_a_wrong_key_fails_the_run_clearly_and_writes_no_answer(task, lead, held_out, llm, inline, settings):
    settings.LLM_API_KEY = "sk-wrong"
    run = evaluation.evaluation_request(task=task, name="bad-key", user=lead)
    run.refresh_from_db()
    assert run.state == "failed"
    assert "refused the key" in run.error and "LLM_API_KEY" in run.error and "sk-wrong" not in run.error
    assert not run.items.filter(answered=True).exists()


@committed
def test_429_and_500_are_retried_and_the_answers_arrive(task, lead, held_out, llm, inline):
    llm.then(Step(status=429, headers={"Retry-After": "0"}), Step(status=500))
    run = evaluation.evaluation_request(task=task, name="retried", user=lead)
    run.refresh_from_db()
    assert run.state == "succeeded" and run.items.filter(answered=True).count() == run.size
    assert len(llm.requests) == run.size + 2


@committed
def test_a_timeout_fails_the_run_naming_the_cause(task, lead, held_out, llm, inline, settings):
    settings.LLM_TIMEOUT = 0.2
    settings.LLM_MAX_RETRIES = 0
    llm.delay = 1.0
    run = evaluation.evaluation_request(task=task, name="slow", user=lead)
    run.refresh_from_db()
    assert run.state == "failed" and "did not answer within 0.2 s (LLM_TIMEOUT)" in run.error
    assert not run.items.filter(answered=True).exists()


def test_features_off_the_command_says_so_unless_a_file_is_given(task, held_out, llm_off, tmp_path, capsys):
    with pytest.raises(CommandError, match="The model features are off"):
        call_command("evaluate", task.slug, "--run", "r1")
    with pytest.raises(ModelFeaturesOff):
        evaluation.evaluation_request(task=task, name="r1")
    path = tmp_path / "outputs.jsonl"
    path.write_bytes(_outputs(held_out))
    call_command("evaluate", task.slug, "--run", "r1", "--outputs", str(path), "--json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["run"] == "r1" and printed["export"] == "v1" and printed["state"] == "succeeded"
    assert printed["items"] == len(_test_ids(held_out)) and printed["judge"] is None


def test_the_command_refuses_bad_input_naming_it(task, held_out, llm_off, tmp_path):
    path = tmp_path / "outputs.jsonl"
    path.write_bytes(b'{"id": "nope", "output": "a"}\n')
    with pytest.raises(CommandError, match='Line 1, field "id"'):
        call_command("evaluate", task.slug, "--run", "r", "--outputs", str(path))
    with pytest.raises(CommandError, match="--export takes a version"):
        call_command("evaluate", task.slug, "--run", "r", "--export", "latest", "--outputs", str(path))
    with pytest.raises(CommandError, match="no file at"):
        call_command("evaluate", task.slug, "--run", "r", "--outputs", str(tmp_path / "missing.jsonl"))
    with pytest.raises(CommandError, match="No task with slug"):
        call_command("evaluate", "nope", "--run", "r", "--outputs", str(path))
    assert not EvaluationRun.objects.exists()


@committed
def test_the_command_waits_for_an_endpoint_run_and_prints_json(task, held_out, llm, inline, capsys):
    call_command("evaluate", task.slug, "--run", "cmd", "--export", "v1", "--wait", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["state"] == "succeeded" and printed["answered"] == printed["items"] > 0
    with pytest.raises(CommandError, match="already has a run named 'cmd'"):
        call_command("evaluate", task.slug, "--run", "cmd")


def test_a_blind_verdict_maps_to_the_models_side_and_is_audited(task, lead, reviewer, held_out, llm_off):
    run = evaluation.evaluation_request(task=task, name="v", outputs=_outputs(held_out))
    item = run.items.first()
    model_side = "a" if item.model_first else "b"
    other = "b" if model_side == "a" else "a"
    evaluation.item_verdict(item=item, user=reviewer, choice=other, reasons=["inaccurate"], comment="Wrong date.")
    item.refresh_from_db()
    assert (item.result, item.reasons, item.comment) == ("worse", ["inaccurate"], "Wrong date.")
    assert item.judged_by == reviewer
    with pytest.raises(ValidationError, match="judged this answer already"):
        evaluation.item_verdict(item=item, user=lead, choice="same", reasons=[])
    second = run.items.exclude(pk=item.pk).first()
    evaluation.item_verdict(item=second, user=reviewer, choice="a" if second.model_first else "b", reasons=["other"])
    assert run.items.get(pk=second.pk).result == "better"
    event = AuditEvent.objects.filter(action="evaluation_verdict").first()
    assert event.actor == reviewer and event.detail["result"] in ("better", "worse")


@pytest.mark.parametrize(
    ("choice", "reasons", "comment", "field"),
    [("x", [], "", "choice"), ("a", [], "", "reasons"), ("a", ["made-up"], "", "reasons")],
)
def test_a_bad_verdict_is_refused_and_changes_nothing(
    task, reviewer, held_out, llm_off, choice, reasons, comment, field
):
    run = evaluation.evaluation_request(task=task, name="v", outputs=_outputs(held_out))
    item = run.items.first()
    with pytest.raises(ValidationError) as caught:
        evaluation.item_verdict(item=item, user=reviewer, choice=choice, reasons=reasons, comment=comment)
    assert field in caught.value.message_dict
    assert run.items.get(pk=item.pk).result == ""


def test_an_answer_judged_worse_becomes_a_new_example_once(task, lead, reviewer, held_out, llm_off):
    run = evaluation.evaluation_request(task=task, name="v", outputs=_outputs(held_out))
    item, fine = run.items.select_related("example")[:2]
    with pytest.raises(ValidationError, match="Only an answer judged worse"):
        evaluation.item_new_example(item=item, user=reviewer)
    evaluation.item_verdict(item=item, user=reviewer, choice="b" if item.model_first else "a", reasons=["incomplete"])
    new = evaluation.item_new_example(item=item, user=reviewer)
    assert (new.status, new.completion, new.kind, new.instruction) == ("new", "", item.kind, item.example.instruction)
    assert new.context == item.example.context and new.pk != item.example.pk
    assert evaluation.item_new_example(item=item, user=reviewer) == new  # one action, one example
    assert run.items.get(pk=item.pk).new_example == new
    event = AuditEvent.objects.get(action="evaluation_example")
    assert event.target == str(new.uuid) and event.detail["from"] == str(item.example.uuid)
    assert fine.new_example is None


def test_wilson_interval_matches_the_formula_and_stays_in_range():
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    assert wilson(0, 0) is None


def test_two_runs_compare_item_by_item(task, reviewer, held_out, llm_off):
    first = evaluation.evaluation_request(task=task, name="old", outputs=_outputs(held_out))
    second = evaluation.evaluation_request(task=task, name="new", outputs=_outputs(held_out))
    outcomes = ["worse", "worse", "same", "better"]
    for run, results in ((first, outcomes), (second, ["better", "worse", "same", "worse"])):
        for item, result in zip(run.items.order_by("example_id"), results, strict=False):
            model = "a" if item.model_first else "b"
            choice = {"better": model, "worse": "b" if model == "a" else "a", "same": "same"}[result]
            evaluation.item_verdict(item=item, user=reviewer, choice=choice, reasons=["other"])
    compared = runs_compare(first, second)
    assert compared["shared"] == 4
    assert compared["moved"] == {"improved": 1, "unchanged": 2, "regressed": 1}
    assert [c["n"] for c in compared["second"]["cells"]] == [1, 1, 2]
    assert [(c["before"], c["after"]) for c in compared["changed"]] == [("Model worse", "Model better"),
                                                                         ("Model better", "Model worse")]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "model_first", "expected"),
    [
        ('{"better": "A", "reason": "ok"}', True, ("better", "ok")),
        ('{"better": "A", "reason": "ok"}', False, ("worse", "ok")),
        ('```json\n{"better": "same", "reason": "tie"}\n```', True, ("same", "tie")),
        ("no idea", True, None),
    ],
)
def test_the_judges_comparison_is_read_by_side(content, model_first, expected):
    assert parse_comparison(content, model_first=model_first) == expected
