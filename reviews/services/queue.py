"""The review queue and its lease: which examples wait for a reviewer, in what order, and who holds which."""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from annotate.models import Example, Kind, Role, Task

from ..models import Verdict

Status = Example.Status
REVIEW_LEASE = timedelta(minutes=15)
ORDERINGS = {"oldest": "Oldest first", "risky": "Riskiest first"}


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


def annotators_of(task: Task) -> QuerySet:
    """The task's annotators, by name (filters and the reassign menu)."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(memberships__task=task, memberships__role=Role.ANNOTATOR)
        .order_by("username")
        .only("id", "username")
    )
