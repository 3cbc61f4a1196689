"""Evaluation runs: the answers of a model to the test split of one export, judged blind against the approved
completions by reviewers (better, same, worse, with reasons), and a failure made into a new example with one action.

The prompts are exactly the export's held-out test split (its manifest names the examples), so a model is judged on
what was kept out of its training. The answers come from the endpoint (a job: models_loop.evaluation_job) or from a
file a team produced elsewhere (JSONL of {"id" or "uuid", "output"}), read all or nothing.
"""

import random
from dataclasses import dataclass

import orjson
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate import limits
from annotate.audit import Action, audit_record
from annotate.models import Example, Task
from annotate.services import example_create
from exports.changes import manifest_entries
from exports.models import Export
from exports.storage import export_dir
from pairsmith.jobs import JobState, job_cancel, job_send

from .conf import ModelFeaturesOff, is_on
from .models import EvaluationItem, EvaluationRun
from .services import settings_for

MAX_NAME_CHARS = 100
MAX_OUTPUTS_BYTES = 200 * 1024**2  # an outputs file; past it the command says so and reads nothing
MAX_ITEMS = 100_000  # test examples one run takes
MAX_ERRORS_SHOWN = 20
CHUNK = 1_000
Result = EvaluationItem.Result

# What is wrong with the worse answer; the judging screen's keys 1-7 toggle them in this order.
REASONS = [
    ("inaccurate", "Inaccurate"),
    ("incomplete", "Incomplete"),
    ("unclear", "Unclear"),
    ("format", "Wrong format"),
    ("off_task", "Off task"),
    ("unsafe", "Unsafe"),
    ("other", "Other"),
]
REASON_CODES = {code for code, _ in REASONS}
CHOICES = {"a": "A is better", "same": "As good", "b": "B is better"}


def held_out_export(task: Task, version: int | None = None) -> Export:
    """The export whose test split a run takes: version `version`, or the latest succeeded one that has a test split.
    Raise ValidationError naming what is missing."""
    exports = Export.objects.available().filter(task=task).select_related("task")
    if version is not None:
        export = exports.filter(version=version).first()
        if export is None:
            raise ValidationError(f"{task.slug} has no export v{version} whose files can be read.")
        if not (export.files or {}).get("test.jsonl", {}).get("records"):
            raise ValidationError(f"Export v{version} of {task.slug} has no test split (its test ratio is 0).")
        return export
    for export in exports.filter(test_ratio__gt=0).order_by("-version")[:50]:
        if (export.files or {}).get("test.jsonl", {}).get("records"):
            return export
    raise ValidationError(
        f"{task.slug} has no succeeded export with a test split: export with a test ratio above 0 first "
        "(export_dataset --test-ratio), then evaluate on what it held out."
    )


def held_out_examples(export: Export) -> list[Example]:
    """The examples of the export's test split still in the database, in id order (from its manifest)."""
    path = export_dir(export) / "manifest.json"
    if not path.exists():
        raise ValidationError(f"The manifest of export v{export.version} is missing: export again.")
    ids = [pk for pk, _uuid, _hash, split in manifest_entries(path) if split == "test"]
    if len(ids) > MAX_ITEMS:
        raise ValidationError(f"The test split holds {len(ids):,} examples; a run takes at most {MAX_ITEMS:,}.")
    examples: list[Example] = []
    for start in range(0, len(ids), CHUNK):
        examples += Example.objects.filter(task=export.task, pk__in=ids[start : start + CHUNK]).order_by("id")
    if not examples:
        raise ValidationError(f"None of the test examples of export v{export.version} exists any more.")
    return examples


@dataclass
class _Line:
    number: int
    example: Example
    output: str


def outputs_read(data: bytes, examples: list[Example]) -> dict[int, str]:
    """{example id: output} from a JSONL of {"id" (external id) or "uuid", "output"} a line, covering every test
    example once. Raise ValidationError listing the lines and fields at fault (the first MAX_ERRORS_SHOWN)."""
    if len(data) > MAX_OUTPUTS_BYTES:
        raise ValidationError(f"The outputs file is {len(data):,} bytes; the limit is {MAX_OUTPUTS_BYTES:,}.")
    by_uuid = {str(e.uuid): e for e in examples}
    by_external = {e.external_id: e for e in examples if e.external_id}
    errors: list[str] = []
    seen: dict[int, int] = {}
    outputs: dict[int, str] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):  # JSONL: split on \n only
        if not raw.strip():
            continue
        problem = _line_problem(raw, number, by_uuid, by_external, seen)
        if isinstance(problem, str):
            errors.append(problem)
        else:
            seen[problem.example.pk] = number
            outputs[problem.example.pk] = problem.output
        if len(errors) > MAX_ERRORS_SHOWN:
            break
    missing = [e for e in examples if e.pk not in outputs]
    if missing and not errors:
        first = ", ".join(e.external_id or str(e.uuid) for e in missing[:5])
        errors.append(f"{len(missing):,} test example(s) have no output (first: {first}); a run needs all of them.")
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = " (and more; fix these first)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise ValidationError([*shown[:-1], shown[-1] + more])
    return outputs


def _line_problem(raw: bytes, number: int, by_uuid: dict, by_external: dict, seen: dict) -> "_Line | str":
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"Line {number}: not JSON ({exc})."
    if not isinstance(record, dict):
        return f"Line {number}: not a JSON object."
    unknown = sorted(set(record) - {"id", "uuid", "output"})
    if unknown:
        return f"Line {number}: unknown field(s) {', '.join(map(repr, unknown))[:200]}; use id or uuid, and output."
    if ("id" in record) == ("uuid" in record):
        given = "both" if "id" in record else "neither"
        return f'Line {number}: give either "id" (the external id) or "uuid", not {given}.'
    field = "id" if "id" in record else "uuid"
    key = record[field]
    if not isinstance(key, str):
        return f'Line {number}, field "{field}": a string, not {type(key).__name__}.'
    example = (by_external if field == "id" else by_uuid).get(key.strip().lower() if field == "uuid" else key)
    if example is None:
        return f'Line {number}, field "{field}": {key[:80]!r} is not an example of the test split.'
    if example.pk in seen:
        return f'Line {number}, field "{field}": {key[:80]!r} was given already on line {seen[example.pk]}.'
    output = record.get("output")
    if not isinstance(output, str):
        return f'Line {number}, field "output": a string, not {"missing" if output is None else type(output).__name__}.'
    if problem := limits.text_problem(output.replace("\r\n", "\n")):
        return f'Line {number}, field "output": {problem}.'
    return _Line(number, example, output.replace("\r\n", "\n"))


def evaluation_request(
    *, task: Task, name: str, user=None, version: int | None = None, outputs: bytes | None = None, model: str = ""
) -> EvaluationRun:
    """Make a run over the test split of export `version` (default: the latest with one): answers from `outputs`
    (JSONL bytes) or from the endpoint (a job). Raise ModelFeaturesOff without outputs and without an endpoint,
    ValidationError for a bad name, export or file: then nothing is stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the run (e.g. the model or checkpoint it evaluates)."})
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise ValidationError({"name": f"A run's name is printable text of at most {MAX_NAME_CHARS} characters."})
    if outputs is None and not is_on():
        raise ModelFeaturesOff
    row = settings_for(task)
    if outputs is None:
        model = model.strip() or row.effective_model()
        if not model:
            raise ValidationError("No model named: set LLM_MODEL, or a model name in the task's model settings.")
    judge_model = row.effective_model() if row.judge_enabled and is_on() else ""
    if task.evaluation_runs.filter(name=name).exists():
        raise ValidationError({"name": f"{task.slug} already has a run named {name!r}."})
    export = held_out_export(task, version)
    examples = held_out_examples(export)
    answers = outputs_read(outputs, examples) if outputs is not None else {}
    source = EvaluationRun.Source.FILE if outputs is not None else EvaluationRun.Source.ENDPOINT
    draw = random.SystemRandom()
    try:
        with transaction.atomic():
            run = EvaluationRun.objects.create(
                task=task, name=name, export=export, source=source, model=model, judge_model=judge_model,
                created_by=user, total=len(examples), size=len(examples),
            )  # fmt: skip
            EvaluationItem.objects.bulk_create(
                [
                    EvaluationItem(
                        run=run,
                        example=e,
                        kind=e.kind,
                        reference=e.completion,
                        output=answers.get(e.pk, ""),
                        answered=e.pk in answers,
                        model_first=draw.random() < 0.5,
                    )  # fmt: skip
                    for e in examples
                ],
                batch_size=CHUNK,
            )
            if source == EvaluationRun.Source.FILE and not judge_model:
                now = timezone.now()
                EvaluationRun.objects.filter(pk=run.pk).update(
                    state=JobState.SUCCEEDED, progress=len(examples), started_at=now, finished_at=now
                )
            else:
                from .evaluation_job import evaluation_run_task

                job_send(evaluation_run_task, run)
            audit_record(
                task=task, actor=user, action=Action.EVALUATION_STARTED, target=name,
                detail={"run": run.pk, "export": f"v{export.version}", "items": len(examples), "source": source,
                        "model": model, "judge": judge_model},
            )  # fmt: skip
    except IntegrityError:  # two requests for one name at once: the constraint decides
        raise ValidationError({"name": f"{task.slug} already has a run named {name!r}."}) from None
    run.refresh_from_db()
    return run


def evaluation_cancel(*, run: EvaluationRun, user) -> bool:
    """Stop a queued or running evaluation; the answers in so far stay. False when it was over already."""
    with transaction.atomic():
        if not job_cancel(run):
            return False
        audit_record(task=run.task, actor=user, action=Action.EVALUATION_ENDED, target=run.name,
                     detail={"run": run.pk, "state": "cancelled"})  # fmt: skip
    return True


@transaction.atomic
def item_verdict(*, item: EvaluationItem, user, choice: str, reasons: list[str], comment: str = "") -> EvaluationItem:
    """Record a person's blind verdict: `choice` "a", "b" (that side is better) or "same", mapped to the model's
    better / same / worse through the item's order. Raise ValidationError for a bad choice or reason, a missing
    reason, an answer not in yet, or an item judged already (the first verdict stays)."""
    if choice not in CHOICES:
        raise ValidationError({"choice": "Choose A is better, As good, or B is better."})
    unknown = [r for r in reasons if r not in REASON_CODES]
    if unknown:
        raise ValidationError({"reasons": f"Unknown reason(s): {', '.join(map(str, unknown))[:200]}."})
    comment = comment.replace("\r\n", "\n").strip()
    limits.check_text(comment, label="the comment", field="comment")
    if choice != "same" and not reasons and not comment:
        raise ValidationError({"reasons": "Say why: pick what is wrong with the worse answer, or write a comment."})
    if not item.answered:
        raise ValidationError("The model's answer to this prompt is not in yet.")
    model_side = "a" if item.model_first else "b"
    result = Result.SAME if choice == "same" else Result.BETTER if choice == model_side else Result.WORSE
    won = EvaluationItem.objects.filter(pk=item.pk, result="").update(
        result=result, reasons=sorted(set(reasons)), comment=comment, judged_by=user, judged_at=timezone.now()
    )
    if not won:
        raise ValidationError("Someone judged this answer already; their verdict stays.")
    item.refresh_from_db()
    audit_record(
        task=item.run.task, actor=user, action=Action.EVALUATION_VERDICT, target=str(item.example.uuid),
        detail={"run": item.run.name, "item": item.pk, "result": result, "reasons": item.reasons},
    )  # fmt: skip
    return item


@transaction.atomic
def item_new_example(*, item: EvaluationItem, user) -> Example:
    """A new example for annotators from an answer judged worse (by a person or the judge): the same prompt and kind,
    no completion, linked to the item. The example made before is returned when there is one. Raise
    ValidationError when nobody judged the answer worse."""
    item = EvaluationItem.objects.select_for_update().select_related("run__task", "example").get(pk=item.pk)
    if item.new_example_id is not None:
        return item.new_example
    if Result.WORSE not in (item.result, item.judge_result):
        raise ValidationError("Only an answer judged worse than the approved one becomes a new example.")
    source = item.example
    example = example_create(
        task=item.run.task, fields=source.prompt_fields(), messages=source.messages or None, kind=item.kind,
        source=Example.Source.WRITTEN, template=source.template,
    )  # fmt: skip
    item.new_example = example
    item.save(update_fields=["new_example"])
    audit_record(
        task=item.run.task, actor=user, action=Action.EVALUATION_EXAMPLE, target=str(example.uuid),
        detail={"run": item.run.name, "item": item.pk, "from": str(source.uuid)},
    )  # fmt: skip
    return example
