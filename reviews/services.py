"""Reviewing: the queue and its lease, verdicts, reviewer edits, triage, the timeline of an example, statistics.

Every write opens `transaction.atomic` and locks the example rows it changes (`select_for_update`), checks the
version the reviewer saw, and records who did what: a Verdict for a decision, a Transition for a change of status.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString

from annotate.audit import Action, audit_record
from annotate.limits import check_text
from annotate.models import Example, Kind, Membership, Revision, Role, Task, Transition
from annotate.scans import example_warnings

from .diff import Budget, text_diff
from .models import ReasonCode, Verdict

Status = Example.Status
Decision = Verdict.Decision
REVIEW_LEASE = timedelta(minutes=15)
ORDERINGS = {"oldest": "Oldest first", "risky": "Riskiest first"}


# --- the queue ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    """The reviewer's choice of what to review, already validated (forms.QueueFilterForm builds it)."""

    author_id: int | None = None
    kind: str = ""
    warning: str = ""  # a quality check code
    submitted_from: date | None = None
    submitted_to: date | None = None  # inclusive
    order: str = "oldest"

    def __post_init__(self) -> None:
        # Allow-lists: these values end up in SQL (as parameters) and in ORDER BY (as one of two fixed texts).
        if self.order not in ORDERINGS:
            raise ValueError(f"unknown order {self.order!r}")
        if self.kind and self.kind not in Kind.values:
            raise ValueError(f"unknown kind {self.kind!r}")
        if self.warning and not re.fullmatch(r"[a-z_]{1,40}", self.warning):
            raise ValueError(f"not a check code: {self.warning!r}")

    def _bounds(self) -> tuple[datetime | None, datetime | None]:
        """The date range as aware datetimes in the current time zone: [from 00:00, the day after `to` 00:00)."""
        tz = timezone.get_current_timezone()
        start = datetime.combine(self.submitted_from, datetime.min.time(), tz) if self.submitted_from else None
        end = None
        if self.submitted_to:
            end = datetime.combine(self.submitted_to + timedelta(days=1), datetime.min.time(), tz)
        return start, end

    def apply(self, queryset: QuerySet) -> QuerySet:
        """The ORM form of the filters (the queue page, and the claim on SQLite)."""
        if self.author_id:
            queryset = queryset.filter(author_id=self.author_id)
        if self.kind:
            queryset = queryset.filter(kind=self.kind)
        if self.warning:
            queryset = queryset.filter(warning_codes__contains=f",{self.warning},")
        start, end = self._bounds()
        if start:
            queryset = queryset.filter(submitted_at__gte=start)
        if end:
            queryset = queryset.filter(submitted_at__lt=end)
        return queryset

    def order_by(self) -> list:
        # Both orders match a partial index of Example (annotate_example_review, annotate_example_risky); NULLS LAST
        # is PostgreSQL's default for ASC, spelled out so SQLite orders a missing submitted_at alike.
        submitted = F("submitted_at").asc(nulls_last=True)
        return ["-risk", submitted, "id"] if self.order == "risky" else [submitted, "id"]

    def sql(self, params: dict) -> tuple[list[str], str]:
        """The SQL form of the filters for the claim on PostgreSQL: WHERE conditions (on `e`) and the ORDER BY."""
        conditions = []
        if self.author_id:
            conditions.append("e.author_id = %(author)s")
            params["author"] = self.author_id
        if self.kind:
            conditions.append("e.kind = %(kind)s")
            params["kind"] = self.kind
        if self.warning:  # the code is [a-z_]; escape "_" for LIKE
            conditions.append("e.warning_codes LIKE %(warning)s")
            params["warning"] = "%," + self.warning.replace("_", "\\_") + ",%"
        start, end = self._bounds()
        if start:
            conditions.append("e.submitted_at >= %(start)s")
            params["start"] = start
        if end:
            conditions.append("e.submitted_at < %(end)s")
            params["end"] = end
        order = "e.risk DESC, e.submitted_at, e.id" if self.order == "risky" else "e.submitted_at, e.id"
        return conditions, order

    def querystring(self) -> str:
        """The filters as a query string, rebuilt from the validated values (never the raw input)."""
        values = {
            "annotator": self.author_id or "",
            "kind": self.kind,
            "warning": self.warning,
            "submitted_from": self.submitted_from.isoformat() if self.submitted_from else "",
            "submitted_to": self.submitted_to.isoformat() if self.submitted_to else "",
            "order": "" if self.order == "oldest" else self.order,
        }
        return urlencode({key: value for key, value in values.items() if value})


def _waiting(task: Task) -> QuerySet:
    """Submitted examples of the task that are not in triage: what reviewers work through."""
    return Example.objects.filter(task=task, status=Status.SUBMITTED, triage=False)


def _judged_by(reviewer) -> Exists:
    """The reviewer already gave a verdict on the example's current version (2-approval tasks)."""
    return Exists(
        Verdict.objects.filter(example=OuterRef("pk"), example_version=OuterRef("version"), reviewer=reviewer)
    )


def review_queue(*, task: Task, reviewer, filters: QueueFilters = QueueFilters()) -> QuerySet:
    """The examples waiting for this reviewer, in queue order: not their own work, not judged by them yet."""
    queryset = filters.apply(_waiting(task)).exclude(_judged_by(reviewer))
    if not task.self_review_allowed:
        queryset = queryset.exclude(author=reviewer)
    return queryset.order_by(*filters.order_by())


def review_claim_next(
    *,
    task: Task,
    reviewer,
    filters: QueueFilters = QueueFilters(),
    skip: Example | None = None,
    lease: timedelta = REVIEW_LEASE,
) -> Example | None:
    """Hand the reviewer the next example as a lease: the one they hold first, then the first free one in the queue.

    `skip` (the example they pass on) is released and not handed out by this call. Raises nothing; None when the
    queue is empty. On PostgreSQL, one `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)` takes the row,
    so two reviewers asking at the same moment never get the same example, and neither waits for the other.
    """
    now = timezone.now()
    expires = now + lease
    if skip is not None:
        review_release(example=skip, reviewer=reviewer)
    if connection.vendor == "postgresql":
        params = {"task": task.pk, "user": reviewer.pk, "now": now, "expires": expires, "skip": skip.pk if skip else 0}
        extra, order = filters.sql(params)
        waiting = ["e.task_id = %(task)s", "e.status = 'submitted'", "NOT e.triage", "e.id <> %(skip)s", *extra]
        # A lease is only given on an example the reviewer may judge, and a verdict ends it: held needs no more.
        held = [*waiting, "e.claimed_by_id = %(user)s", "e.claim_expires_at > %(now)s"]
        free = [
            *waiting,
            "(e.claim_expires_at IS NULL OR e.claim_expires_at <= %(now)s)",
            # Served by the index reviews_verdict_version: (example, example_version, reviewer).
            "NOT EXISTS (SELECT 1 FROM reviews_verdict v WHERE v.example_id = e.id"
            " AND v.example_version = e.version AND v.reviewer_id = %(user)s)",
        ]
        if not task.self_review_allowed:
            free.append("e.author_id IS DISTINCT FROM %(user)s")
        # One round trip: the held example (its lease renewed), else the first free one; COALESCE evaluates the
        # second subquery only when the reviewer holds nothing. The held one is locked too: a verdict on it in
        # another tab, in flight, is waited for and its row re-checked, so a pair just decided is not handed back.
        # RETURNING * lets raw() build the Example.
        # The claim does not touch updated_at: that is the annotator's "last changed" (My work sorts by it).
        sql = f"""
            UPDATE annotate_example SET claimed_by_id = %(user)s, claim_expires_at = %(expires)s
            WHERE id = COALESCE(
                (SELECT e.id FROM annotate_example e WHERE {" AND ".join(held)} ORDER BY {order} LIMIT 1
                 FOR UPDATE),
                (SELECT e.id FROM annotate_example e WHERE {" AND ".join(free)} ORDER BY {order} LIMIT 1
                 FOR UPDATE SKIP LOCKED)
            )
            RETURNING *
        """  # noqa: S608 (the conditions and order are fixed texts; every value is a parameter)
        return next(iter(Example.objects.raw(sql, params)), None)
    with transaction.atomic():  # SQLite: one writer at a time, so a plain select-then-update is safe
        held = filters.apply(_waiting(task).filter(claimed_by=reviewer, claim_expires_at__gt=now))
        free = review_queue(task=task, reviewer=reviewer, filters=filters).filter(
            Q(claim_expires_at__isnull=True) | Q(claim_expires_at__lte=now)
        )
        if skip is not None:
            held, free = held.exclude(pk=skip.pk), free.exclude(pk=skip.pk)
        example = held.order_by(*filters.order_by()).first() or free.first()
        if example is None:
            return None
        Example.objects.filter(pk=example.pk).update(claimed_by=reviewer, claim_expires_at=expires)
        example.claimed_by, example.claim_expires_at = reviewer, expires
    return example


def review_take(*, example: Example, reviewer, lease: timedelta = REVIEW_LEASE) -> bool:
    """Take (or extend) the lease on one example the reviewer opened; False when another reviewer holds it."""
    now = timezone.now()
    if example.claimed_by_id == reviewer.pk and example.claim_expires_at and example.claim_expires_at > now + lease / 2:
        return True  # just handed out by review_claim_next: no write needed to open it
    taken = (
        Example.objects.filter(pk=example.pk, status=Status.SUBMITTED, triage=False)
        .filter(Q(claimed_by__isnull=True) | Q(claimed_by=reviewer) | Q(claim_expires_at__lte=now))
        .update(claimed_by=reviewer, claim_expires_at=now + lease)
    )
    if taken:
        example.claimed_by_id, example.claim_expires_at = reviewer.pk, now + lease
    return bool(taken)


def review_release(*, example: Example, reviewer) -> None:
    """Give back the lease the reviewer holds on this example (nothing happens when they do not hold it)."""
    Example.objects.filter(pk=example.pk, status=Status.SUBMITTED, claimed_by=reviewer).update(
        claimed_by=None, claim_expires_at=None
    )


# --- verdicts ----------------------------------------------------------------------------------------------------


class StaleReview(ValidationError):
    """The example changed since the reviewer opened it: nothing was written."""

    def __init__(self, current: Example) -> None:
        self.current = current
        super().__init__(
            f"The annotator changed this example since you opened it (now version {current.version}); "
            "reload to review the new text."
        )


def _clean_reasons(reasons: Iterable[str]) -> list[str]:
    """Distinct reason codes in the order of ReasonCode (so equal choices are stored alike)."""
    chosen = set(reasons)
    return [code for code in ReasonCode.values if code in chosen] + sorted(chosen - set(ReasonCode.values))


def _clean_edit(completion: str) -> str:
    """The reviewer's fix as stored (CRLF folded). Raise ValidationError when it is empty or over the limits of any
    example's text (annotate/limits.py)."""
    if not completion.strip():
        raise ValidationError("The edited completion is empty.")
    completion = completion.replace("\r\n", "\n")
    check_text(completion, label="the edited completion")
    return completion


def _clean_reasoning(reasoning: str, task: Task) -> str:
    """The reviewer's reasoning as stored (CRLF folded). Raise ValidationError when it is over the limits, or empty in
    a task that asks for it (as an annotator's submit is refused)."""
    reasoning = reasoning.replace("\r\n", "\n")
    if task.asks_reasoning and not reasoning.strip():
        raise ValidationError("The edited reasoning is empty; this task asks for it.")
    check_text(reasoning, label="the edited reasoning")
    return reasoning


def _latest_revision(example: Example) -> Revision:
    """The revision a verdict is on: the example's latest; one is recorded now for text loaded outside the app."""
    revision = Revision.objects.filter(example=example).current_line().defer("text").order_by("-id").first()
    if revision is None:
        revision = Revision.objects.create(
            example=example,
            text=example.completion,
            reasoning=example.reasoning,
            kind=example.kind,
            author=example.author,
            reason=Revision.Reason.IMPORT,
            example_version=example.version,
        )
    return revision


def _check_not_author(example: Example, user, task: Task) -> None:
    if example.author_id is not None and example.author_id == user.pk and not task.self_review_allowed:
        raise ValidationError("You wrote this example; another reviewer has to judge it.")


@transaction.atomic
def verdict_record(
    *,
    example: Example,
    reviewer,
    decision: str,
    version: int,
    reasons: Iterable[str] = (),
    comment: str = "",
    completion: str | None = None,
    kind: str | None = None,
    reasoning: str | None = None,
) -> Verdict:
    """Record the reviewer's decision on the example's current text and move the example on.

    `completion` (with an approval) is the reviewer's fix: it becomes a revision in their name (the version is
    bumped) and the approval is on that revision. `reasoning` (with it) is the fixed reasoning stored with that
    revision; None keeps the example's. With two approvals required, an approval keeps the example
    submitted until a second, distinct reviewer approves the same version; an approval and a flag or rejection of
    one version send it to triage. Raise StaleReview when `version` is not the example's, ValidationError when the
    example is not submitted (or in triage), is the reviewer's own work, is held by another reviewer, was already
    judged by this reviewer at this version, when a flag or rejection has no reason, or when the edited reasoning is
    empty in a task that asks for it (or either text is over the limits). Nothing is written then.
    """
    task = example.task
    current = Example.objects.select_for_update().get(pk=example.pk)
    if current.version != version:
        raise StaleReview(current)
    if current.status != Status.SUBMITTED:
        raise ValidationError(
            f"This example is {current.get_status_display().lower()}; only a submitted example can be reviewed."
        )
    if current.triage:
        raise ValidationError("Reviewers disagree on this example; it is decided in triage.")
    _check_not_author(current, reviewer, task)
    now = timezone.now()
    if current.claimed_by_id not in (None, reviewer.pk) and current.claim_expires_at and current.claim_expires_at > now:
        raise ValidationError("Another reviewer is reviewing this example right now; take the next one.")
    if decision not in Decision.values:
        raise ValidationError(f"Unknown decision {decision!r}.")
    prior = list(Verdict.objects.filter(example=current, example_version=current.version))
    if any(v.reviewer_id == reviewer.pk for v in prior):
        raise ValidationError("You already judged this version of the example.")
    reasons = _clean_reasons(reasons) if decision != Decision.APPROVE else []
    verdict = Verdict(example=current, reviewer=reviewer, decision=decision, reasons=reasons, comment=comment.strip())
    verdict.clean()  # flag and reject need a reason; only known codes
    edited = False
    if reasoning is not None and completion is None:
        raise ValidationError("The reasoning can only be edited with the completion.")
    if completion is not None:
        if decision != Decision.APPROVE:
            raise ValidationError("Only an approval can carry an edit.")
        completion = _clean_edit(completion)
        reasoning = current.reasoning if reasoning is None else _clean_reasoning(reasoning, task)
        kind = kind or current.kind
        if kind not in Kind.values:
            raise ValidationError(f"Unknown kind {kind!r}.")
        edited = completion != current.completion or kind != current.kind or reasoning != current.reasoning

    values: dict = {"claimed_by": None, "claim_expires_at": None, "updated_at": now}
    if edited:
        previous = _latest_revision(current)  # the text the annotator submitted, kept for the diff
        current.version += 1
        current.completion, current.kind, current.reasoning = completion, kind, reasoning
        values.update(completion=completion, kind=kind, reasoning=reasoning, version=current.version)
        values.update(example_warnings(current))  # the checks of the fixed text, as an annotator's save runs them
        verdict.revision = Revision.objects.create(
            example=current,
            text=completion,
            reasoning=reasoning,
            kind=kind,
            author=reviewer,
            reason=Revision.Reason.REVIEWER_EDIT,
            example_version=current.version,
        )
        verdict.comment = verdict.comment or f"Edited (revision {previous.pk} → {verdict.revision.pk}) and approved."
        prior = []  # earlier verdicts judged the text before the edit
    else:
        verdict.revision = _latest_revision(current)
    verdict.example_version = current.version

    approvers = {v.reviewer_id for v in prior if v.decision == Decision.APPROVE}
    to_status, note = Status.SUBMITTED, ""
    if decision == Decision.APPROVE:
        if len(approvers | {reviewer.pk}) >= task.approvals_required:
            to_status = Status.APPROVED
        else:
            note = f"approval 1 of {task.approvals_required}"
    elif approvers:  # one approved this version, this reviewer disagrees: a person decides in triage
        values["triage"] = True
        note = "reviewers disagree: sent to triage"
    else:
        to_status = Status.FLAGGED if decision == Decision.FLAG else Status.REJECTED
    values["status"] = to_status
    Example.objects.filter(pk=current.pk).update(**values)
    verdict.save()
    if to_status != Status.SUBMITTED or values.get("triage"):
        Transition.objects.create(
            example=current, from_status=Status.SUBMITTED, to_status=to_status, actor=reviewer, note=note
        )
    audit_record(
        task=task,
        actor=reviewer,
        action=Action.VERDICT,
        target=current.uuid,
        detail={
            "decision": decision,
            "reasons": reasons,
            "version": current.version,
            "edited": edited,
            "status": "triage" if values.get("triage") else to_status,
        },
    )
    for name, value in values.items():
        setattr(current, name, value)
    verdict.example = current
    return verdict


# --- triage ------------------------------------------------------------------------------------------------------


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


# --- reading: diffs, the timeline, statistics --------------------------------------------------------------------

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


def annotators_of(task: Task) -> QuerySet:
    """The task's annotators, by name (filters and the reassign menu)."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(memberships__task=task, memberships__role=Role.ANNOTATOR)
        .order_by("username")
        .only("id", "username")
    )
