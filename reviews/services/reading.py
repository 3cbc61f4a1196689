"""Reading the review history: the texts that went to review and their diffs, the timeline of an example, statistics."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.utils.safestring import SafeString

from annotate.models import Example, Revision, Task

from ..diff import Budget, text_diff
from ..models import ReasonCode, Verdict

Decision = Verdict.Decision


REVIEWED_REASONS = (Revision.Reason.SUBMIT, Revision.Reason.REVIEWER_EDIT, Revision.Reason.IMPORT)


@dataclass
class RevisionStep:
    """One text that went to review (a submit, an import, a reviewer's edit) and the autosaves before it."""

    revision: Revision
    drafts: int = 0


def revision_history(example: Example) -> list[RevisionStep]:
    """The texts that went to review, oldest first, without loading any text (a single query)."""
    steps: list[RevisionStep] = []
    drafts = 0
    for revision in example.revisions.select_related("author").defer("text", "reasoning").order_by("id"):
        if revision.reason in REVIEWED_REASONS:
            steps.append(RevisionStep(revision, drafts))
            drafts = 0
        else:
            drafts += 1
    return steps


DIFFED_FIELDS = ("text", "reasoning")  # the revision fields a diff is shown of (an allow-list: it names a column)


def step_diffs(
    steps: list[RevisionStep], *, field: str = "text", budget: Budget | None = None
) -> dict[int, SafeString]:
    """Each reviewed text (or, with field="reasoning", each reasoning that changed) marked against the one before it,
    by revision id (one query for the texts). Pass the page's `budget` to share it between the calls of one page."""
    if field not in DIFFED_FIELDS:
        raise ValueError(f"no diff of {field!r}")
    if len(steps) < 2:
        return {}
    ids = [step.revision.pk for step in steps]
    texts = dict(Revision.objects.filter(pk__in=ids).values_list("id", field))
    # One budget for the page, newest diff first: however many long texts an example went through, the page does
    # a bounded amount of comparing, and the diffs a reviewer reads first get it.
    budget = budget if budget is not None else Budget()
    pairs = list(zip(ids, ids[1:], strict=False))
    return {
        new: text_diff(texts[old], texts[new], budget=budget)
        for old, new in reversed(pairs)
        if field == "text" or texts[old] != texts[new]  # a reasoning left as it was has nothing to show
    }


@dataclass
class TimelineEvent:
    at: datetime
    actor: object
    kind: str  # "revision", "verdict", "transition" or "imported"
    item: object
    order: int


def example_timeline(example: Example) -> list[TimelineEvent]:
    """Revisions, verdicts and transitions of the example, merged in time order (three queries, whatever the size),
    and its import, for an example imported as new."""
    events = [
        TimelineEvent(r.created_at, r.author, "revision", r, 0)
        for r in example.revisions.select_related("author").defer("text", "reasoning")
    ]
    events += [
        TimelineEvent(v.created_at, v.reviewer, "verdict", v, 1) for v in example.verdicts.select_related("reviewer")
    ]
    transitions = list(example.transitions.select_related("actor"))
    events += [TimelineEvent(t.created_at, t.actor, "transition", t, 2) for t in transitions]
    if example.source == Example.Source.IMPORTED and not any(t.note == Example.Source.IMPORTED for t in transitions):
        # Imported as new: no transition row (the status did not move); the example itself says when.
        events.append(TimelineEvent(example.created_at, None, "imported", example, -1))
    events.sort(key=lambda e: (e.at, e.order, e.item.pk))
    return events


def _decision_and_reason_counts() -> dict:
    counts = {f"n_{decision}": Count("id", filter=Q(decision=decision)) for decision in Decision.values}
    # Reason codes are a JSON list: `"code"` with its quotes is found in its text on SQLite and PostgreSQL alike.
    counts.update({f"r_{code}": Count("id", filter=Q(reasons__icontains=f'"{code}"')) for code in ReasonCode.values})
    return counts


def _stats_row(row: dict, user_key: str, name_key: str) -> dict:
    total = row["total"]
    return {
        "user_id": row[user_key],
        "username": row[name_key],
        "pairs": row["pairs"],
        "verdicts": total,
        "decisions": {d: row[f"n_{d}"] for d in Decision.values},
        "approval_rate": row["n_approve"] / total if total else None,
        "reasons": [(ReasonCode(c).label, row[f"r_{c}"]) for c in ReasonCode.values if row[f"r_{c}"]],
    }


def review_stats(*, task: Task) -> dict:
    """Per reviewer and per annotator: pairs reviewed, decisions, approval rate, reasons; and the agreement between
    reviewers on versions judged twice or more. Three grouped queries, whatever the number of examples. Decisions
    taken in triage are no reviews: they count neither as pairs reviewed nor for (dis)agreement."""
    verdicts = Verdict.objects.filter(example__task=task, in_triage=False).order_by()
    counts = _decision_and_reason_counts()
    reviewers = (
        verdicts.values("reviewer_id", "reviewer__username")
        .annotate(pairs=Count("example_id", distinct=True), total=Count("id"), **counts)
        .order_by("reviewer__username")
    )
    annotators = (
        verdicts.filter(example__author__isnull=False)
        .values("example__author_id", "example__author__username")
        .annotate(pairs=Count("example_id", distinct=True), total=Count("id"), **counts)
        .order_by("example__author__username")
    )
    versions = (
        verdicts.values("example_id", "example_version")
        .annotate(n=Count("id"), decisions=Count("decision", distinct=True))
        .filter(n__gte=2)
    )
    agreement = versions.aggregate(double=Count("example_id"), agree=Count("example_id", filter=Q(decisions=1)))
    reason_totals: dict[str, int] = dict.fromkeys(ReasonCode.values, 0)
    reviewer_rows = [_stats_row(row, "reviewer_id", "reviewer__username") for row in reviewers]
    for row in reviewers:
        for code in ReasonCode.values:
            reason_totals[code] += row[f"r_{code}"]
    double = agreement["double"] or 0
    return {
        "reviewers": reviewer_rows,
        "annotators": [_stats_row(row, "example__author_id", "example__author__username") for row in annotators],
        "reasons": [(code, ReasonCode(code).label, n) for code, n in reason_totals.items() if n],
        "verdicts": sum(row["verdicts"] for row in reviewer_rows),
        "double_reviewed": double,
        "agreeing": agreement["agree"] or 0,
        "agreement": (agreement["agree"] or 0) / double if double else None,
    }
