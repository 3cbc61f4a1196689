"""Triage: flagged, rejected and split examples decided in bulk (send back, reject, approve a split, reassign)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone

from annotate.audit import Action, audit_record
from annotate.models import Example, Membership, Revision, Role, Task, Transition

from ..models import Verdict
from .verdicts import _clean_reasons, _latest_revision

Status = Example.Status
Decision = Verdict.Decision


def triage_queryset(task: Task) -> QuerySet:
    """Examples a person has to look at again: flagged, rejected, and split decisions (submitted, in triage)."""
    # The task in each arm lets PostgreSQL answer each from its own index (a BitmapOr): (task, status, id) for
    # flagged and rejected, the partial index on triage for the few split ones among many submitted.
    return Example.objects.filter(
        Q(task=task, status__in=[Status.FLAGGED, Status.REJECTED]) | Q(task=task, status=Status.SUBMITTED, triage=True)
    )


@dataclass
class TriageResult:
    """What a bulk action did: the examples it changed, those it left alone (with why), the ids it did not find."""

    done: list[Example] = field(default_factory=list)
    left: list[tuple[Example, str]] = field(default_factory=list)
    missing: list[UUID] = field(default_factory=list)
    pooled: int = 0  # sent back with no annotator to send them to (imported): they wait first in the pool

    def summary(self, verb: str) -> str:
        parts = [f"{len(self.done)} example{'s' if len(self.done) != 1 else ''} {verb}."]
        if self.pooled:
            parts.append(
                f"{self.pooled} had no annotator (imported): {'they wait' if self.pooled != 1 else 'it waits'} "
                "first in the pool, and the next annotator who asks for work gets them with the reasons."
            )
        if self.left:
            reasons = sorted({why for _, why in self.left})
            parts.append(f"{len(self.left)} left alone ({'; '.join(reasons)}).")
        if self.missing:
            parts.append(f"{len(self.missing)} not found in this task's triage and ignored.")
        return " ".join(parts)


def _lock_triage(task: Task, uuids: Iterable[UUID]) -> tuple[list[Example], list[UUID]]:
    """The task's triage examples among `uuids`, locked in id order (no deadlock between two bulk actions)."""
    wanted = list(dict.fromkeys(uuids))
    rows = list(triage_queryset(task).filter(uuid__in=wanted).select_for_update().order_by("id"))
    found = {example.uuid for example in rows}
    return rows, [uuid for uuid in wanted if uuid not in found]


def _revisions_for(examples: list[Example]) -> dict[int, Revision]:
    latest = dict(
        Revision.objects.filter(example__in=examples)
        .current_line()
        .values("example_id")
        .annotate(last=Max("id"))
        .values_list("example_id", "last")
    )
    by_id = Revision.objects.in_bulk(latest.values())
    return {example.pk: by_id.get(latest.get(example.pk)) for example in examples}


def _triage_audit(task: Task, actor, action: str, result: TriageResult, **detail) -> None:
    """One event per bulk action that changed something, naming the examples it changed."""
    if result.done:
        count = len(result.done)
        detail = {**detail, "examples": [example.uuid for example in result.done], "left_alone": len(result.left)}
        audit_record(
            task=task, actor=actor, action=action, target=f"{count} example{'s' if count != 1 else ''}", detail=detail
        )


def _triage_decide(
    *,
    task: Task,
    uuids: Iterable[UUID],
    actor,
    decision: str,
    to_status: str,
    reasons,
    comment: str,
    note: str,
    action: str,
) -> TriageResult:
    reasons = _clean_reasons(reasons) if decision != Decision.APPROVE else []
    Verdict(decision=decision, reasons=reasons).clean()  # refuse before anything is written
    rows, missing = _lock_triage(task, uuids)
    result = TriageResult(missing=missing)
    judged = set(
        Verdict.objects.filter(
            example__in=[e.pk for e in rows if e.triage], reviewer=actor, example_version=F("example__version")
        ).values_list("example_id", flat=True)
    )
    todo = []
    for example in rows:
        if example.status == to_status:
            result.left.append((example, f"already {to_status}"))
        elif decision == Decision.APPROVE and example.status != Status.SUBMITTED:
            result.left.append((example, "only a split decision can be approved in triage"))
        elif example.author_id == actor.pk and not task.self_review_allowed:
            result.left.append((example, "your own work"))
        elif example.triage and example.pk in judged:
            # A split is settled by a third person: one of the two reviewers alone would make their own view win.
            result.left.append((example, "you judged this version yourself; another reviewer or a lead decides"))
        else:
            todo.append(example)
    revisions = _revisions_for(todo)
    now = timezone.now()
    if to_status == Status.FLAGGED:
        result.pooled = sum(1 for example in todo if example.author_id is None)
    for example in todo:
        revision = revisions[example.pk] or _latest_revision(example)
        Verdict(
            example=example,
            revision=revision,
            example_version=example.version,
            reviewer=actor,
            decision=decision,
            reasons=reasons,
            comment=comment.strip(),
            in_triage=True,
        ).save()
        Transition.objects.create(
            example=example, from_status=example.status, to_status=to_status, actor=actor, note=note[:200]
        )
        example.status, example.triage = to_status, False
    Example.objects.filter(pk__in=[e.pk for e in todo]).update(
        status=to_status, triage=False, claimed_by=None, claim_expires_at=None, updated_at=now
    )
    result.done = todo
    _triage_audit(task, actor, action, result, reasons=reasons)
    return result


@transaction.atomic
def triage_send_back(
    *, task: Task, uuids: Iterable[UUID], actor, reasons: Iterable[str], comment: str = ""
) -> TriageResult:
    """Send the examples back to their annotators (flagged), with a flag verdict. Raise ValidationError without reasons.

    Ids outside the task's triage are ignored (reported in the result), as are examples already flagged.
    """
    return _triage_decide(
        task=task, uuids=uuids, actor=actor, decision=Decision.FLAG, to_status=Status.FLAGGED,
        reasons=reasons, comment=comment, note="triage: sent back to the annotator", action=Action.TRIAGE_SEND_BACK,
    )  # fmt: skip


@transaction.atomic
def triage_reject(
    *, task: Task, uuids: Iterable[UUID], actor, reasons: Iterable[str], comment: str = ""
) -> TriageResult:
    """Reject the examples (kept, never exported), with a reject verdict. Raise ValidationError without reasons."""
    return _triage_decide(
        task=task, uuids=uuids, actor=actor, decision=Decision.REJECT, to_status=Status.REJECTED,
        reasons=reasons, comment=comment, note="triage: rejected", action=Action.TRIAGE_REJECT,
    )  # fmt: skip


@transaction.atomic
def triage_approve(*, task: Task, uuids: Iterable[UUID], actor, comment: str = "") -> TriageResult:
    """Settle split decisions as approved, with an approve verdict. Flagged and rejected examples are left alone."""
    return _triage_decide(
        task=task, uuids=uuids, actor=actor, decision=Decision.APPROVE, to_status=Status.APPROVED,
        reasons=(), comment=comment, note="triage: approved", action=Action.TRIAGE_APPROVE,
    )  # fmt: skip


@transaction.atomic
def triage_reassign(
    *, task: Task, uuids: Iterable[UUID], actor, annotator, reasons: Iterable[str] = (), comment: str = ""
) -> TriageResult:
    """Give the examples to another annotator of the task, flagged for them (the author changes).

    With reasons, a flag verdict tells the new annotator why. Raise ValidationError when `annotator` is not an
    annotator of the task or a reason is unknown.
    """
    if not Membership.objects.filter(task=task, user=annotator, role=Role.ANNOTATOR).exists():
        raise ValidationError(f"{annotator} is not an annotator of this task.")
    reasons = _clean_reasons(reasons)
    if reasons:
        Verdict(decision=Decision.FLAG, reasons=reasons).clean()
    rows, missing = _lock_triage(task, uuids)
    result = TriageResult(missing=missing)
    todo = []
    for example in rows:
        if example.author_id == annotator.pk:
            result.left.append((example, f"already {annotator}'s"))
        else:
            todo.append(example)
    authors = {e.pk: e.author for e in Example.objects.filter(pk__in=[e.pk for e in todo]).select_related("author")}
    revisions = _revisions_for(todo) if reasons else {}
    now = timezone.now()
    for example in todo:
        before = authors[example.pk]
        if reasons:
            Verdict(
                example=example,
                revision=revisions[example.pk] or _latest_revision(example),
                example_version=example.version,
                reviewer=actor,
                decision=Decision.FLAG,
                reasons=reasons,
                comment=comment.strip(),
                in_triage=True,
            ).save()
        note = f"triage: reassigned from {before or 'nobody'} to {annotator}"
        Transition.objects.create(
            example=example, from_status=example.status, to_status=Status.FLAGGED, actor=actor, note=note[:200]
        )
        example.status, example.triage, example.author = Status.FLAGGED, False, annotator
    Example.objects.filter(pk__in=[e.pk for e in todo]).update(
        status=Status.FLAGGED, triage=False, author=annotator, claimed_by=None, claim_expires_at=None, updated_at=now
    )
    result.done = todo
    _triage_audit(task, actor, Action.TRIAGE_REASSIGN, result, reasons=reasons, annotator=annotator.username)
    return result
