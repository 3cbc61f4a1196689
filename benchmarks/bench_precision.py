"""Precision and recall of every quality check, on the project's labelled evaluation set (benchmarks/quality_eval/).

`make bench BENCH_ARGS=precision` loads each task kind of the set into the database as the product does (the task
with its preset, template and settings through `services.task_create`; the examples through the JSONL import,
`importing.examples_import`, one import per status), runs the task-wide scan (`scans.scan_run`, which runs the
per-example checks again and the task-wide ones, and stores every example's warnings), and compares the stored
warnings (and the scan's task-level findings) with each example's labels. Everything happens in one transaction that
is rolled back, so the database is left as it was and every run starts from the same state: the figures are
deterministic. It runs on PostgreSQL or SQLite (the import and the scan have a path for each).

Per check it prints: the planted problems, how many were found (recall), the flags on examples not labelled with the
check (false alarms), the share of the clean examples flagged (over the clean examples of the tasks the check can
fire on: `short` only reads text tasks, `label_case` only label tasks, ...), precision, and whether it meets the
targets of issue 14: recall 100%; at most 1% of clean examples flagged by a per-example check (and by the group
checks duplicate, near_duplicate and contradiction), at most 3% by a task-wide style check (opening, sign-off,
length); for the summary checks (coverage, label balance: findings about a task, scored per label and per coverage
target), no false alarm. Then it lists every false alarm and every miss.

`--kind KIND` (repeatable) measures only those kinds; `--no-list` leaves out the lists.
"""

import argparse
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

EVAL_DIR = Path(__file__).resolve().parent / "quality_eval"
FORMATS = frozenset({"text", "json", "label", "chat"})
STATUSES = ("approved", "submitted", "new")  # what an import can set; imported in this order
EXAMPLE_KEYS = frozenset(
    {"id", "instruction", "context", "input", "messages", "completion", "kind", "status", "problems", "note"}
)
# Which output formats a check can fire on, by its own rules (annotate/quality): its share of clean examples flagged
# counts the clean examples of those tasks only. A code missing here reads every format.
APPLIES = {
    "format": frozenset({"json", "label", "chat"}),
    "label_case": frozenset({"label"}),
    "short": frozenset({"text"}),
    "inconsistent_prefix": frozenset({"text", "chat"}),
    "inconsistent_signoff": frozenset({"text", "chat"}),
    "length_outlier": frozenset({"text", "json", "chat"}),
    "label_balance": frozenset({"label"}),
}
STYLE_CHECKS = frozenset({"inconsistent_prefix", "inconsistent_signoff", "length_outlier"})
# Issue 14's targets: the share of clean examples (or, for summary checks, of clean task units) a check may flag.
CLEAN_LIMIT = {"example": 0.01, "style": 0.03, "summary": 0.0}
MESSAGE_CHARS = 150  # of a finding's message, in the lists


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
        """The task-level units the summary checks judge: each label of a label task, each coverage target."""
        expected = self.definition.get("expected_task_findings", [])
        planted = {
            (f["code"], f"label:{f['label']}" if "label" in f else f"coverage:{f.get('kind')}") for f in expected
        }
        spec = self.definition["task"]
        units = [("label_balance", f"label:{label}") for label in spec.get("labels", [])]
        units += [("coverage", f"coverage:{kind}") for kind in sorted(spec.get("coverage_targets") or {})]
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


@dataclass(frozen=True)
class Flag:
    """A check's warning on an item."""

    kind: str
    id: str
    code: str
    message: str = ""


@dataclass
class CheckScore:
    code: str
    scope: str  # example, style or summary: which clean-share limit applies
    planted: int = 0
    found: int = 0
    clean_total: int = 0
    clean_flagged: int = 0
    missed: list[Item] = field(default_factory=list)
    false_alarms: list[Flag] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.found / self.planted if self.planted else None

    @property
    def precision(self) -> float | None:
        flagged = self.found + len(self.false_alarms)
        return self.found / flagged if flagged else None

    @property
    def clean_share(self) -> float:
        return self.clean_flagged / self.clean_total if self.clean_total else 0.0

    @property
    def limit(self) -> float:
        return CLEAN_LIMIT[self.scope]

    @property
    def meets(self) -> bool:
        return self.recall == 1.0 and self.clean_share <= self.limit


def scope_of(code: str, registry_scope: str) -> str:
    if registry_scope == "summary":
        return "summary"
    return "style" if code in STYLE_CHECKS else "example"


def score(items: Iterable[Item], flags: Iterable[Flag], scopes: dict[str, str]) -> dict[str, CheckScore]:
    """Per check (code -> its registry scope): planted, found, misses, false alarms and the clean examples flagged.

    A flag counts once per item and check. A flag on an item not labelled with its check is a false alarm (also on an
    item labelled with other problems, or on no known item); only flags on clean items (no problems at all) count
    toward the clean share, whose denominator is the clean items of the check's level in the formats it reads.
    """
    items = list(items)
    by_key = {(item.kind, item.id): item for item in items}
    flagged: dict[tuple[str, str, str], Flag] = {}
    for flag in flags:
        flagged.setdefault((flag.kind, flag.id, flag.code), flag)
    scores = {}
    for code, registry_scope in scopes.items():
        result = scores[code] = CheckScore(code, scope_of(code, registry_scope))
        level = code if result.scope == "summary" else "example"
        formats = APPLIES.get(code, FORMATS)
        for item in items:
            hit = (item.kind, item.id, code) in flagged
            if code in item.problems:
                result.planted += 1
                result.found += hit
                if not hit:
                    result.missed.append(item)
            elif not item.problems and item.level == level and item.output_format in formats:
                result.clean_total += 1
                result.clean_flagged += hit
    for (kind, item_id, code), flag in flagged.items():
        item = by_key.get((kind, item_id))
        if code in scores and (item is None or code not in item.problems):
            scores[code].false_alarms.append(flag)
    return scores


# --- the evaluation set -------------------------------------------------------------------------------------------


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
            examples.append(example)
        ids = [e["id"] for e in examples]
        if len(set(ids)) != len(ids):
            raise _problem(examples_path, None, "example ids repeat")
        tasks.append(EvalTask(kind, definition, examples))
    missing = wanted - {t.kind for t in tasks}
    if missing:
        raise EvalSetError(f"no such kind in {directory}: {', '.join(sorted(missing))}")
    return tasks


def _import_record(example: dict) -> dict:
    """The example as the import reads it: the set's own keys (status, problems, note) left out."""
    record = {"id": example["id"], "kind": example.get("kind", "happy")}
    completion = example.get("completion", "")
    if "messages" in example:
        turns = list(example["messages"])
        if completion:
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


# --- measuring ----------------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    items: list[Item]
    flags: list[Flag]
    lost_by_scan: list[Flag]  # per-example warnings the import stored and the task-wide scan then dropped
    scopes: dict[str, str]


def _load_task(eval_task: EvalTask, workdir: Path):
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
        **settings,
    )
    if template := eval_task.definition.get("template"):
        services.template_save(task=task, values=template)
    for status in STATUSES:
        records = [_import_record(e) for e in eval_task.examples if e.get("status", "approved") == status]
        if not records:
            continue
        path = workdir / f"{eval_task.kind}-{status}.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
        importing.examples_import(task=task, path=path, file_format="jsonl", status=status)
    return task


def measure(tasks: list[EvalTask]) -> Measurement:
    """Load every task kind, scan it, and read back the stored warnings; all rolled back at the end."""
    from django.db import transaction

    from annotate import quality
    from annotate.models import QualityScan
    from annotate.scans import EXAMPLE_SCOPE, scan_run

    items: list[Item] = []
    flags: list[Flag] = []
    lost: list[Flag] = []
    with tempfile.TemporaryDirectory(prefix="quality-eval-") as workdir, transaction.atomic():
        for eval_task in tasks:
            task = _load_task(eval_task, Path(workdir))
            at_import = dict(task.examples.values_list("external_id", "warnings"))
            scan = QualityScan.objects.create(task=task)
            scan_run(scan_id=scan.pk)
            scan.refresh_from_db()
            if scan.state != "succeeded":
                raise RuntimeError(f"the scan of {eval_task.kind} ended {scan.state}: {scan.error}")
            for external_id, warnings in task.examples.order_by("id").values_list("external_id", "warnings"):
                stored = {w["code"] for w in warnings}
                flags += [Flag(eval_task.kind, external_id, w["code"], w["message"]) for w in warnings]
                lost += [
                    Flag(eval_task.kind, external_id, w["code"], w["message"])
                    for w in at_import.get(external_id) or []
                    if w["code"] in EXAMPLE_SCOPE and w["code"] not in stored
                ]
            for finding in scan.report.get("task_findings", []):
                detail = finding.get("detail", {})
                unit = f"label:{detail.get('label')}" if finding["code"] == "label_balance" else None
                unit = f"coverage:{detail.get('kind')}" if finding["code"] == "coverage" else unit
                flags.append(Flag(eval_task.kind, unit or finding["code"], finding["code"], finding["message"]))
            items += eval_task.items()
        transaction.set_rollback(True)
    scopes = {code: check.scope for code, check in quality.CHECKS.items()}
    return Measurement(items, flags, lost, scopes)


# --- the report ---------------------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _shorten(text: str, limit: int = MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report(measurement: Measurement, scores: dict[str, CheckScore], *, lists: bool = True) -> list[str]:
    """The printed lines: the table, then (with `lists`) every false alarm, every miss and what the scan lost."""
    examples = [i for i in measurement.items if i.level == "example"]
    clean = sum(1 for i in examples if not i.problems)
    kinds = len({i.kind for i in examples})
    lines = [
        f"   {len(examples)} examples in {kinds} task kinds ({clean} clean, {len(examples) - clean} with planted "
        f"problems), {len(measurement.items) - len(examples)} task-level units (labels, coverage targets)",
        f"   {'check':<21}{'scope':<9}{'planted':>8}{'found':>7}{'recall':>9}{'false alarms':>14}"
        f"{'clean flagged':>22}{'precision':>11}  target",
    ]
    for code, s in scores.items():
        flagged = f"{s.clean_flagged}/{s.clean_total} ({_percent(s.clean_share)})"
        verdict = "meets" if s.meets else "MISSES"
        lines.append(
            f"   {code:<21}{s.scope:<9}{s.planted:>8}{s.found:>7}{_percent(s.recall):>9}{len(s.false_alarms):>14}"
            f"{flagged:>22}{_percent(s.precision):>11}  {verdict} (recall 100%, clean ≤ {s.limit:.0%})"
        )
    met = sum(s.meets for s in scores.values())
    lines.append(f"   {met} of {len(scores)} checks meet their targets")
    if not lists:
        return lines
    for code, s in scores.items():
        if s.false_alarms:
            lines.append(f"   false alarms of {code} ({len(s.false_alarms)}):")
            lines += [f"     {f.kind}/{f.id}: {_shorten(f.message)}" for f in s.false_alarms]
    for code, s in scores.items():
        if s.missed:
            lines.append(f"   misses of {code} ({len(s.missed)}):")
            lines += [f"     {i.kind}/{i.id}" + (f": {_shorten(i.note)}" if i.note else "") for i in s.missed]
    if measurement.lost_by_scan:
        lost = measurement.lost_by_scan
        lines.append(f"   per-example warnings the import stored and the task-wide scan then dropped ({len(lost)}):")
        lines += [f"     {f.kind}/{f.id} {f.code}: {_shorten(f.message)}" for f in lost]
    return lines


def run(argv: list[str] | None = None) -> None:
    from .common import setup_django

    parser = argparse.ArgumentParser(prog="bench precision")
    parser.add_argument("--kind", action="append", default=[], help="measure only this task kind (repeatable)")
    parser.add_argument("--no-list", action="store_true", help="print the table only")
    args = parser.parse_args(argv or [])
    setup_django()
    from django.db import connection

    tasks = load_eval_set(kinds=args.kind)
    measurement = measure(tasks)
    scores = score(measurement.items, measurement.flags, measurement.scopes)
    print(f"   database: {connection.vendor}; evaluation set: {EVAL_DIR.relative_to(EVAL_DIR.parent.parent)}")
    for line in report(measurement, scores, lists=not args.no_list):
        print(line)
