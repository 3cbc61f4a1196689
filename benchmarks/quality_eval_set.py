"""The quality checks' labelled evaluation set (benchmarks/quality_eval/, its README says how it is written): read
and checked (`load_eval_set`), and loaded into the database as the product loads data (`load_task`): the task through
`services.task_create` (a tools task with its tool set), the examples through the JSONL import, and the examples the
import refuses (a call to an undefined function, arguments that break the schema) typed in the editor: imported
without their final turn, claimed, and submitted by an annotator through `services.example_submit`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

EVAL_DIR = Path(__file__).resolve().parent / "quality_eval"
FORMATS = frozenset({"text", "json", "label", "chat", "tools"})
STATUSES = ("approved", "submitted", "new")  # what an import can set; imported in this order
EXAMPLE_KEYS = frozenset(
    {"id", "instruction", "context", "input", "messages", "completion", "kind", "status", "problems", "note", "via"}
)
# How an example reaches the database: the import (default), or the editor, for what the import refuses (a tools
# example's call to an undefined function or with arguments its schema refuses; an annotator may type those, and
# the checks warn): imported without its final turn, then written and submitted by an annotator.
VIA = ("import", "editor")


class EvalSetError(ValueError):
    """The evaluation set is malformed: the message names the file, the line and the field."""


@dataclass(frozen=True)
class EvalTask:
    """One task kind of the set: its definition (`<kind>.task.json`) and its examples (`<kind>.jsonl`)."""

    kind: str
    definition: dict
    examples: list[dict]

    @property
    def output_format(self) -> str:
        return self.definition["task"]["output_format"]

    def units(self) -> list["Item"]:
        """The task-level units the summary checks judge: each label of a label task, each coverage target, and in a
        tools task each function of its tool set (tool_coverage) and the task's share of examples that call nothing
        (no_call_share)."""
        planted = {(f["code"], unit_of(f)) for f in self.definition.get("expected_task_findings", [])}
        spec = self.definition["task"]
        units = [("label_balance", f"label:{label}") for label in spec.get("labels", [])]
        units += [("coverage", f"coverage:{kind}") for kind in sorted(spec.get("coverage_targets") or {})]
        if self.output_format == "tools":
            units += [("tool_coverage", f"function:{t['function']['name']}") for t in spec.get("tools") or ()]
            units.append(("no_call_share", "no_call_share"))
        return [
            Item(self.kind, unit, self.output_format, frozenset({code} if (code, unit) in planted else ()), level=code)
            for code, unit in units
        ]

    def items(self) -> list["Item"]:
        examples = [
            Item(self.kind, e["id"], self.output_format, frozenset(e.get("problems", ())), note=e.get("note", ""))
            for e in self.examples
        ]
        return examples + self.units()


def unit_of(finding: dict) -> str:
    """The task-level unit a summary finding (an expected one, or the scan's `code` with its `detail`) is about."""
    detail = finding.get("detail", finding)
    return {
        "label_balance": f"label:{detail.get('label')}",
        "coverage": f"coverage:{detail.get('kind')}",
        "tool_coverage": f"function:{detail.get('function')}",
    }.get(finding["code"], finding["code"])


@dataclass(frozen=True)
class Item:
    """What is scored, with its true problems: an example (level "example"), or a unit of a task that a summary check
    judges (level: that check's code; a label for label_balance, a coverage target for coverage)."""

    kind: str
    id: str
    output_format: str
    problems: frozenset[str]
    level: str = "example"
    note: str = ""


# --- reading the set ----------------------------------------------------------------------------------------------


def _problem(path: Path, line: int | None, what: str) -> EvalSetError:
    where = f"{path.name}, line {line}" if line else path.name
    return EvalSetError(f"{where}: {what}")


def load_eval_set(directory: Path = EVAL_DIR, *, kinds: Iterable[str] = ()) -> list[EvalTask]:
    """Every task kind of the set, in name order (or those named). Raise EvalSetError naming what is malformed."""
    wanted = set(kinds)
    tasks = []
    for definition_path in sorted(directory.glob("*.task.json")):
        kind = definition_path.name.removesuffix(".task.json")
        if wanted and kind not in wanted:
            continue
        try:
            definition = orjson.loads(definition_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise _problem(definition_path, None, f"not valid JSON: {exc}") from exc
        if definition.get("task", {}).get("output_format") not in FORMATS:
            raise _problem(definition_path, None, f"task.output_format must be one of {', '.join(sorted(FORMATS))}")
        examples_path = definition_path.with_name(f"{kind}.jsonl")
        if not examples_path.exists():
            raise _problem(definition_path, None, f"no examples beside it ({examples_path.name})")
        examples = []
        for number, line in enumerate(examples_path.read_bytes().split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                example = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise _problem(examples_path, number, f"not valid JSON: {exc}") from exc
            if type(example) is not dict or not isinstance(example.get("id"), str):
                raise _problem(examples_path, number, 'expected an object with a string "id"')
            if unknown := set(example) - EXAMPLE_KEYS:
                raise _problem(examples_path, number, f"unknown keys {', '.join(sorted(unknown))}")
            if example.get("status", "approved") not in STATUSES:
                raise _problem(examples_path, number, f"status must be one of {', '.join(STATUSES)}")
            if example.get("status", "approved") != "new" and not example.get("completion"):
                raise _problem(examples_path, number, "an approved or submitted example needs a completion")
            if example.get("via", "import") not in VIA:
                raise _problem(examples_path, number, f"via must be one of {', '.join(VIA)}")
            if example.get("via") == "editor" and example.get("status") != "submitted":
                raise _problem(examples_path, number, "an example typed in the editor is submitted (status)")
            examples.append(example)
        ids = [e["id"] for e in examples]
        if len(set(ids)) != len(ids):
            raise _problem(examples_path, None, "example ids repeat")
        tasks.append(EvalTask(kind, definition, examples))
    missing = wanted - {t.kind for t in tasks}
    if missing:
        raise EvalSetError(f"no such kind in {directory}: {', '.join(sorted(missing))}")
    return tasks


def _import_record(example: dict, *, final_turn: bool = True) -> dict:
    """The example as the import reads it: the set's own keys (status, problems, note, via) left out; without its
    completion unless `final_turn`. A tools example's completion is its final assistant message ({content,
    tool_calls} in OpenAI's shape)."""
    record = {"id": example["id"], "kind": example.get("kind", "happy")}
    completion = example.get("completion", "") if final_turn else ""
    if "messages" in example:
        turns = list(example["messages"])
        if isinstance(completion, dict):
            turns.append({"role": "assistant", **completion})
        elif completion:
            turns.append({"role": "assistant", "content": completion})
        record["messages"] = turns
        if example.get("context"):
            record["context"] = example["context"]
        return record
    for name in ("instruction", "context", "input"):
        if example.get(name):
            record[name] = example[name]
    if completion:
        record["completion"] = completion
    return record


def _editor_text(completion) -> str:
    """What the editor posts as the completion: the text, or a tools example's final turn in the stored shape."""
    if not isinstance(completion, dict):
        return completion
    from annotate.tools import completion_text

    calls = [
        {"id": c.get("id", ""), "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
        for c in completion.get("tool_calls") or ()
    ]
    return completion_text(completion.get("content") or "", calls)


def _type_in_editor(task, examples: list[dict]) -> None:
    """Each example (imported as new, without its final turn) claimed by an annotator, who writes the final turn and
    submits it, as the editor does (services.example_submit stores the checks' warnings, refusing nothing)."""
    from django.utils import timezone

    from annotate import services
    from annotate.models import Example, Role

    user, _ = services.user_get_or_create(username="quality-eval-annotator")
    services.membership_add(task=task, user=user, role=Role.ANNOTATOR)
    for record in examples:
        example = task.examples.get(external_id=record["id"])
        # the claim example_claim_next would give (it takes the pool's next example, not a chosen one)
        expires = timezone.now() + services.CLAIM_LEASE
        Example.objects.filter(pk=example.pk).update(claimed_by=user, claim_expires_at=expires)
        example.refresh_from_db()
        services.example_submit(
            example=example,
            user=user,
            completion=_editor_text(record["completion"]),
            kind=record.get("kind", "happy"),
            expected_version=example.version,
        )


def load_task(eval_task: EvalTask, workdir: Path):
    """The task kind in the database, its examples imported (and typed in the editor where the import refuses
    them)."""
    from annotate import importing, services

    spec = eval_task.definition["task"]
    settings = {
        key: spec[key] for key in ("json_schema", "coverage_targets", "system_prompt", "input_reuse") if spec.get(key)
    }
    task = services.task_create(
        slug=f"quality-eval-{eval_task.kind}".replace("_", "-"),
        name=spec.get("name", eval_task.kind),
        output_format=spec["output_format"],
        labels=spec.get("labels") or [],
        preset=spec.get("preset", ""),
        tools=spec.get("tools") if spec["output_format"] == "tools" else None,
        **settings,
    )
    if template := eval_task.definition.get("template"):
        services.template_save(task=task, values=template)
    typed = [e for e in eval_task.examples if e.get("via") == "editor"]
    for status in STATUSES:
        records = [
            _import_record(e)
            for e in eval_task.examples
            if e.get("status", "approved") == status and e.get("via") != "editor"
        ]
        records += [_import_record(e, final_turn=False) for e in typed if status == "new"]
        if not records:
            continue
        path = workdir / f"{eval_task.kind}-{status}.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
        importing.examples_import(task=task, path=path, file_format="jsonl", status=status)
    _type_in_editor(task, typed)
    return task
