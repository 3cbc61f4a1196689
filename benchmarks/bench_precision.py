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
length); for the summary checks (coverage, label balance, tool coverage, no-call share: findings about a task, scored
per label, per coverage target, per function of a tool set and per tools task), no false alarm. Then it lists every
false alarm and every miss.

`--kind KIND` (repeatable) measures only those kinds; `--no-list` leaves out the lists.
"""

import argparse
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .quality_eval_set import (  # noqa: F401  (EvalSetError, FORMATS: the set's names, read from here too)
    EVAL_DIR,
    FORMATS,
    EvalSetError,
    EvalTask,
    Item,
    load_eval_set,
    load_task,
    unit_of,
)

# Which output formats a check can fire on, by its own rules (annotate/quality): its share of clean examples flagged
# counts the clean examples of those tasks only. A code missing here reads every format.
APPLIES = {
    "format": frozenset({"json", "label", "chat", "tools"}),
    "label_case": frozenset({"label"}),
    "short": frozenset({"text"}),
    "inconsistent_prefix": frozenset({"text", "chat"}),
    "inconsistent_signoff": frozenset({"text", "chat"}),
    "length_outlier": frozenset({"text", "json", "chat"}),
    "label_balance": frozenset({"label"}),
    **{code: frozenset({"tools"}) for code in ("unknown_tool", "tool_arguments", "tool_coverage", "no_call_share")},
}
STYLE_CHECKS = frozenset({"inconsistent_prefix", "inconsistent_signoff", "length_outlier"})
# Issue 14's targets: the share of clean examples (or, for summary checks, of clean task units) a check may flag.
CLEAN_LIMIT = {"example": 0.01, "style": 0.03, "summary": 0.0}
MESSAGE_CHARS = 150  # of a finding's message, in the lists


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


# --- measuring ----------------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    items: list[Item]
    flags: list[Flag]
    lost_by_scan: list[Flag]  # per-example warnings the import stored and the task-wide scan then dropped
    scopes: dict[str, str]


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
            task = load_task(eval_task, Path(workdir))
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
                flags.append(Flag(eval_task.kind, unit_of(finding), finding["code"], finding["message"]))
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
        f"problems), {len(measurement.items) - len(examples)} task-level units (labels, coverage targets, "
        "functions, no-call shares)",
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
