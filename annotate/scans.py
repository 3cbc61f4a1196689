"""Quality checks stored per example: on every save (the per-example checks) and over the whole task (a job).

The task-wide scan streams the task's examples through quality.TaskScan in chunks (a server-side cursor on
PostgreSQL), so memory follows the number of rows, not their text. It writes each example's warnings back only
where they changed, and keeps the figures the lead's dashboard plots in the scan's report.
"""

import io
import logging
from collections import Counter
from datetime import date

import numpy as np
import orjson
import pandas as pd
from celery import shared_task
from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from pairsmith.jobs import JOB_TYPES, LIVE_STATES, job_claim, job_fail, job_finish, job_heartbeat, job_send

from . import quality
from .models import Example, QualityOverride, QualityScan, Revision, Task, Transition
from .rendering import required_fields

logger = logging.getLogger(__name__)

CHUNK = 20_000
# How much each warning adds to an example's risk, for the "riskiest first" review order.
RISK = {
    "leak": 8, "format": 8, "missing_field": 8, "empty": 8, "contradiction": 6, "label_case": 5, "duplicate": 4,
    "near_duplicate": 3, "short": 3, "length_outlier": 2, "whitespace": 1, "inconsistent_prefix": 1,
    "inconsistent_signoff": 1, "judge_low": 6,
}  # fmt: skip
# Warnings that come from outside the checks (the model judge's low score, models_loop): a scan keeps them.
CARRIED = {"judge_low"}
EXAMPLE_SCOPE = {code for code, check in quality.CHECKS.items() if check.scope == "example"}
LENGTH_BINS = np.array([0, 1, 20, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 10**9])
SCAN_COLUMNS = [
    "id", "instruction", "context", "input", "messages", "completion", "kind", "status", "prompt_hash", "template_id",
]  # fmt: skip
# Group findings name one other example of the group (the evidence a reviewer opens): the scan gives its row id,
# stored as its UUID and external id.
GROUP_CODES = ("duplicate", "near_duplicate", "contradiction")


def warning_fields(warnings: list[dict]) -> dict:
    """The stored columns for a list of warnings: the list itself, the codes string for filters, the risk. A warning
    marked not a problem (overrides.MARK) stays in the list but is no open warning: neither a code nor a risk."""
    open_ = [w for w in warnings if "override" not in w]
    codes = sorted({w["code"] for w in open_})
    return {
        "warnings": warnings,
        "warning_codes": f",{','.join(codes)}," if codes else "",
        "risk": min(32_000, sum(RISK.get(w["code"], 1) for w in open_)),
    }


def findings_of(
    task,
    *,
    fields: dict[str, str],
    messages,
    completion: str,
    required: tuple[str, ...],
    unwritten: bool = False,
    folded: tuple[dict[str, bytes], bytes] | None = None,
    template=None,
) -> list[dict]:
    """The per-example checks of one text, as stored (dicts). `task` is a Task or its TaskRules; `unwritten` (a new
    example, no completion yet) drops the warnings that say nothing there; `folded`: the fields and the completion
    already folded (quality.fold), when the caller has them; `template`: the example's template version (a tools
    task's calls are checked against its tool set)."""
    if folded is None:
        found = quality.check_example(
            task, messages=messages, completion=completion, required=required, template=template, **fields
        )
    else:
        rules = quality.TaskRules.of(task, template=template)
        found = quality.check_folded(rules, fields, folded[0], messages, completion, folded[1], required)
    return [f.as_dict() for f in found if not (unwritten and f.code in UNWRITTEN_NOISE)]


def example_warnings(example: Example, *, completion: str | None = None) -> dict:
    """Per-example checks of `example` now, kept together with its task-wide warnings from the last scan."""
    found = findings_of(
        example.task,
        fields=example.prompt_fields(),
        messages=example.messages,
        completion=example.completion if completion is None else completion,
        required=required_fields(example.template.prompt_format),
        template=example.template,
    )
    kept = [w for w in example.warnings or [] if w.get("code") not in EXAMPLE_SCOPE]
    from .overrides import example_marked  # overrides imports this module

    return warning_fields(example_marked(example, found + kept, completion=completion))


# --- the task-wide scan -----------------------------------------------------------------------------------------


def scan_request(*, task: Task, user=None) -> QualityScan:
    """Queue a scan of the whole task, unless one is already queued or running (then that one is returned)."""
    with transaction.atomic():
        Task.objects.select_for_update().get(pk=task.pk)  # one live scan per task
        live = task.scans.filter(state__in=LIVE_STATES).first()
        if live is not None:
            return live
        scan = QualityScan.objects.create(task=task, created_by=user)
        job_send(scan_run_task, scan)
    return scan


# An unwritten example (new, or a draft) has no completion yet by nature: these warnings mean nothing there.
UNWRITTEN_NOISE = {"empty", "short", "whitespace"}


def _chunks(task: Task, scan: QualityScan, lengths: np.ndarray, unwritten: list):
    # The fields each template version requires, so that the scan finds the missing fields a save finds.
    required = {pk: required_fields(text) for pk, text in task.templates.values_list("pk", "prompt_format")}
    rows = Example.objects.filter(task=task).order_by("id").values_list(*SCAN_COLUMNS)
    done = 0
    batch: list = []
    for row in rows.iterator(chunk_size=CHUNK):  # a server-side cursor on PostgreSQL
        batch.append(row)
        if len(batch) == CHUNK:
            done += len(batch)
            yield _frame(batch, lengths, unwritten, required)
            batch = []
            if not job_heartbeat(scan, progress=done):
                raise _Cancelled
    if batch:
        done += len(batch)
        yield _frame(batch, lengths, unwritten, required)
        job_heartbeat(scan, progress=done)


def _frame(batch: list, lengths: np.ndarray, unwritten: list, required: dict) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(batch, columns=SCAN_COLUMNS)
    frame["required"] = frame["template_id"].map(lambda pk: required.get(pk, ("instruction",)))
    unwritten.append(frame["id"].to_numpy()[frame["status"].isin(["new", "draft"]).to_numpy()])
    sizes = frame["completion"].str.len().to_numpy()
    lengths += np.histogram(sizes[sizes > 0], bins=LENGTH_BINS)[0]
    return frame


class _Cancelled(Exception):
    pass


def scan_run(*, scan_id: int) -> None:
    """Run a queued scan: check every example, store the warnings that changed, keep the dashboard's figures."""
    scan = job_claim(QualityScan, scan_id)
    if scan is None:
        return
    task = scan.task
    try:
        total = Example.objects.filter(task=task).count()
        job_heartbeat(scan, progress=0, total=total)
        lengths = np.zeros(len(LENGTH_BINS) - 1, dtype=np.int64)
        unwritten: list[np.ndarray] = []
        report = quality.check_task(_chunks(task, scan, lengths, unwritten), task)
        ids = np.concatenate(unwritten) if unwritten else np.array([], dtype=np.int64)
        changed = _store_warnings(task, report, unwritten=ids)
        from .overrides import overruled_counts  # overrides imports this module

        figures = dashboard_figures(task)
        job_finish(
            scan,
            progress=total,
            report={
                "totals": report.totals,
                "task_findings": [f.as_dict() for f in report.task_findings],
                "counts": _counts(task),
                "overruled": overruled_counts(task),
                "timings": {k: round(v, 3) for k, v in report.timings.items()},
                "changed": changed,
                "lengths": {
                    "edges": LENGTH_BINS[:-1].tolist() + [int(LENGTH_BINS[-2]) * 2],
                    "counts": lengths.tolist(),
                },
                **figures,
            },
        )
    except _Cancelled:
        return
    except Exception as exc:
        logger.exception("Quality scan %s failed", scan_id)
        job_fail(scan, f"The scan stopped: {type(exc).__name__}: {exc}")


def _store_warnings(task: Task, report, *, unwritten: np.ndarray) -> int:
    """Write each example's warnings where they differ from what is stored; clear those that have none now."""
    new: dict[int, dict] = {}
    findings = report.findings
    if len(findings):
        noise = findings["code"].isin(list(UNWRITTEN_NOISE)).to_numpy() & np.isin(
            findings["example_id"].to_numpy(dtype=np.int64), unwritten
        )
        findings = findings[~noise]
    _name_others(findings)
    grouped: dict[int, list[dict]] = {}
    for row in findings.itertuples(index=False):
        grouped.setdefault(int(row.example_id), []).append(
            {"code": row.code, "message": row.message, "blocking": bool(row.blocking), "detail": row.detail}
        )
    from .overrides import apply_marks, task_marks  # overrides imports this module

    marks = task_marks(task)  # "not a problem" on the same text stays so after the rescan
    for example_id, warnings in grouped.items():
        new[example_id] = warning_fields(apply_marks(warnings, marks.get(example_id)))
    overridden = QualityOverride.objects.filter(task=task, undone_at__isnull=True).values("example_id")
    stored = (
        Example.objects.filter(task=task)
        .filter(~Q(warning_codes="") | Q(pk__in=overridden))  # with open warnings, or with marked ones only
        .values_list("id", "warnings")
    )
    changes: dict[int, dict] = {}
    for example_id, warnings in stored.iterator(chunk_size=CHUNK):
        fresh = new.pop(example_id, None) or warning_fields([])
        if carried := [w for w in warnings if w.get("code") in CARRIED]:
            fresh = warning_fields(fresh["warnings"] + apply_marks(carried, marks.get(example_id)))
        if fresh["warnings"] != warnings:
            changes[example_id] = fresh
    changes.update(new)  # examples that had no warnings before
    if not changes:
        return 0
    if connection.vendor == "postgresql":
        _store_postgres(changes)
    else:
        objects = [Example(pk=pk, **fields) for pk, fields in changes.items()]
        Example.objects.bulk_update(objects, ["warnings", "warning_codes", "risk"], batch_size=2000)
    return len(changes)


def _name_others(findings) -> None:
    """Replace each group finding's `other_id` (a row id) with the other example's `other_uuid` and
    `other_external_id`, reading those in batches of CHUNK ids."""
    details = [d for code, d in zip(findings["code"], findings["detail"], strict=True) if code in GROUP_CODES]
    ids = sorted({d["other_id"] for d in details if "other_id" in d})
    names: dict[int, tuple[str, str]] = {}
    for start in range(0, len(ids), CHUNK):
        batch = ids[start : start + CHUNK]
        names.update(
            (pk, (str(uuid), external_id))
            for pk, uuid, external_id in Example.objects.filter(pk__in=batch).values_list("pk", "uuid", "external_id")
        )
    for detail in details:
        other = names.get(detail.pop("other_id", None))
        if other is not None:
            detail["other_uuid"], detail["other_external_id"] = other


def _store_postgres(changes: dict[int, dict]) -> None:
    # COPY the new values into a temporary table and update from it in one statement: far faster than an
    # UPDATE per row when a scan touches hundreds of thousands of examples.
    with transaction.atomic(), connection.cursor() as cursor:
        # ON COMMIT DROP ends it with the transaction; inside an outer transaction it may still be there.
        cursor.execute("DROP TABLE IF EXISTS scan_warnings")
        cursor.execute(
            "CREATE TEMP TABLE scan_warnings (id bigint PRIMARY KEY, warnings jsonb, codes text, risk int) "
            "ON COMMIT DROP"
        )
        buffer = io.StringIO()
        for pk, fields in changes.items():
            warnings = orjson.dumps(fields["warnings"]).decode()
            escaped = warnings.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            buffer.write(f"{pk}\t{escaped}\t{fields['warning_codes']}\t{fields['risk']}\n")
        with cursor.cursor.copy("COPY scan_warnings (id, warnings, codes, risk) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cursor.execute(
            "UPDATE annotate_example e SET warnings = s.warnings, warning_codes = s.codes, risk = s.risk "
            "FROM scan_warnings s WHERE e.id = s.id"
        )


def _counts(task: Task) -> dict[str, int]:
    """Examples per warning code, as stored after the scan (so the dashboard's counts match its links)."""
    counts: Counter = Counter()
    for codes in Example.objects.filter(task=task).exclude(warning_codes="").values_list("warning_codes", flat=True):
        counts.update(code for code in codes.split(",") if code)
    return dict(counts)


@shared_task(name="annotate.scan_run", ignore_result=True)
def scan_run_task(*, job_id: int) -> None:
    scan_run(scan_id=job_id)


JOB_TYPES.append((QualityScan, scan_run_task))


# --- the dashboard's figures --------------------------------------------------------------------------------------


def dashboard_figures(task: Task) -> dict:
    """Throughput, verdicts and reasons over the task, from grouped queries (run in the scan, not per page view)."""
    from reviews.models import Verdict

    per_day: dict[str, Counter] = {}
    for row in (
        Transition.objects.filter(example__task=task)
        .annotate(day=TruncDate("created_at"))
        .values("day", "to_status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        per_day.setdefault(_day(row["day"]), Counter())[row["to_status"]] += row["n"]
    submissions = (
        Revision.objects.filter(example__task=task, reason=Revision.Reason.SUBMIT, author__isnull=False)
        .values("author__username")
        .annotate(n=Count("id"))
        .order_by("-n")[:25]
    )
    verdicts = Verdict.objects.filter(example__task=task)
    per_reviewer = verdicts.values("reviewer__username", "decision").annotate(n=Count("id")).order_by()
    reviewers: dict[str, Counter] = {}
    for row in per_reviewer:
        reviewers.setdefault(row["reviewer__username"], Counter())[row["decision"]] += row["n"]
    decisions = Counter(
        {row["decision"]: row["n"] for row in verdicts.values("decision").annotate(n=Count("id")).order_by()}
    )
    reasons: Counter = Counter()
    for reason_list in (
        verdicts.exclude(decision="approve").values_list("reasons", flat=True).iterator(chunk_size=CHUNK)
    ):
        reasons.update(reason_list or [])
    return {
        "per_day": {day: dict(counts) for day, counts in sorted(per_day.items())},
        "annotators": [{"user": r["author__username"], "submitted": r["n"]} for r in submissions],
        "reviewers": [
            {"user": user, **dict(c)} for user, c in sorted(reviewers.items(), key=lambda kv: -sum(kv[1].values()))
        ][:25],
        "decisions": dict(decisions),
        "reasons": dict(reasons.most_common()),
    }


def _day(value) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
