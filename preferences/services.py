"""Comparisons and pairs: the next comparison for a person, judgements (blind order recorded), decisions (agreement,
or a lead's in triage), marking imported pairs reviewed, agreement figures, and the pair checks as a job."""

import logging
from collections.abc import Iterable
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotate.limits import MAX_FIELD_CHARS
from annotate.models import Task

from .models import Choice, Comparison, Judgement, PreferencePair, Reason, Source

logger = logging.getLogger(__name__)

SIDES = ("left", "right", "both_bad")  # what a person picks on the screen; stored in candidates' terms
MAX_BULK = 200  # pairs marked reviewed in one request


def comparison_next(*, task: Task, user) -> Comparison | None:
    """The oldest open comparison of `task` that `user` has not judged yet."""
    judged = Judgement.objects.filter(comparison=OuterRef("pk"), judge=user)
    return (
        Comparison.objects.filter(task=task, state=Comparison.State.OPEN).exclude(Exists(judged)).order_by("id").first()
    )


def comparisons_waiting(*, task: Task, user) -> int:
    judged = Judgement.objects.filter(comparison=OuterRef("pk"), judge=user)
    return Comparison.objects.filter(task=task, state=Comparison.State.OPEN).exclude(Exists(judged)).count()


def _clean(*, pick: str, better: str, reasons: Iterable[str], comment: str) -> tuple[list[str], str, str]:
    if pick not in SIDES:
        raise ValidationError(f"Unknown choice {pick!r}: pick A, B or both bad.")
    reasons = sorted(set(reasons))
    unknown = [r for r in reasons if r not in Reason.values]
    if unknown:
        raise ValidationError(f"Unknown reason {unknown[0]!r}.")
    better = better.strip()
    if pick == "both_bad" and not better:
        raise ValidationError("Both bad: write the better completion (it becomes the chosen side).")
    if len(better) > MAX_FIELD_CHARS:
        size = f"{len(better):,} characters, over the limit of {MAX_FIELD_CHARS:,}"
        raise ValidationError(f"The better completion is {size}.")
    if "\x00" in better or "\x00" in comment:
        raise ValidationError("The text holds a NUL character, which cannot be stored.")
    if len(comment) > 1000:
        raise ValidationError("The comment is over 1,000 characters.")
    return reasons, better if pick == "both_bad" else "", comment.strip()


@transaction.atomic
def judgement_record(
    *,
    comparison: Comparison,
    judge,
    left: str,
    pick: str,
    reasons: Iterable[str] = (),
    comment: str = "",
    better: str = "",
) -> Judgement:
    """Record one person's judgement. `left` is the candidate ("a" or "b") the screen showed on the left (the blind
    order), `pick` what they chose on the screen (left, right, both_bad). When the task's approvals required are
    reached: agreeing judgements decide the comparison (and make its pairs), disagreeing ones send it to triage.
    Raise ValidationError for a bad choice or order, a comparison already decided, or a second judgement."""
    if left not in ("a", "b"):
        raise ValidationError("Unknown order of the candidates.")
    reasons, better, comment = _clean(pick=pick, better=better, reasons=reasons, comment=comment)
    current = Comparison.objects.select_for_update().get(pk=comparison.pk)  # one decision, whatever the race
    if current.state != Comparison.State.OPEN:
        raise ValidationError("This comparison is already decided (or in triage); take the next one.")
    if current.judgements.filter(judge=judge).exists():
        raise ValidationError("You already judged this comparison.")
    right = "b" if left == "a" else "a"
    choice = {"left": left, "right": right, "both_bad": Choice.BOTH_BAD}[pick]
    judgement = Judgement.objects.create(
        comparison=current, judge=judge, left=left, choice=choice, reasons=reasons, comment=comment, better=better
    )
    judgements = list(current.judgements.order_by("id"))
    if len(judgements) >= max(1, current.task.approvals_required):
        if len({j.choice for j in judgements}) == 1:
            _decide(current, choice, better=judgements[0].better, by=judge, lead=None)
        else:
            Comparison.objects.filter(pk=current.pk).update(state=Comparison.State.SPLIT)
    comparison.refresh_from_db()
    return judgement


def _decide(comparison: Comparison, choice: str, *, better: str, by, lead) -> None:
    """Mark the comparison decided and make its pairs: the chosen candidate against the other; both bad, the
    better text against each candidate."""
    now = timezone.now()
    if choice == Choice.BOTH_BAD:
        sides = [(better, comparison.candidate_a), (better, comparison.candidate_b)]
    else:
        other = "b" if choice == "a" else "a"
        sides = [(comparison.candidate(choice), comparison.candidate(other))]
    PreferencePair.objects.bulk_create(
        PreferencePair(
            task=comparison.task,
            template_id=comparison.template_id,
            instruction=comparison.instruction,
            context=comparison.context,
            input=comparison.input,
            messages=comparison.messages,
            prompt_hash=comparison.prompt_hash,
            chosen=chosen,
            rejected=rejected,
            source=Source.COMPARISON,
            reviewed=True,
            reviewed_by=by,
            reviewed_at=now,
            created_by=by,
            comparison=comparison,
        )
        for chosen, rejected in sides
    )
    Comparison.objects.filter(pk=comparison.pk).update(
        state=Comparison.State.DECIDED, outcome=choice, decided_at=now, decided_by=lead
    )
    pair_checks_request(task=comparison.task)


@transaction.atomic
def triage_decide(*, comparison: Comparison, lead, choice: str, better: str = "") -> None:
    """A lead decides a split comparison: a, b, or both bad with the better text. Raise ValidationError when it is
    not in triage, or for a bad choice."""
    current = Comparison.objects.select_for_update().get(pk=comparison.pk)
    if current.state != Comparison.State.SPLIT:
        raise ValidationError("This comparison is not in triage (anymore).")
    if choice not in Choice.values:
        raise ValidationError(f"Unknown choice {choice!r}.")
    _, better, _ = _clean(pick="both_bad" if choice == Choice.BOTH_BAD else "left", better=better, reasons=(),
                          comment="")  # fmt: skip
    _decide(current, choice, better=better, by=lead, lead=lead)


def pairs_mark_reviewed(*, task: Task, uuids: Iterable[UUID], reviewer) -> int:
    """Mark the task's unreviewed pairs among `uuids` reviewed (at most MAX_BULK). Return how many changed."""
    uuids = list(uuids)
    if len(uuids) > MAX_BULK:
        raise ValidationError(f"Select at most {MAX_BULK} pairs at a time.")
    changed = PreferencePair.objects.filter(task=task, uuid__in=uuids, reviewed=False).update(
        reviewed=True, reviewed_by=reviewer, reviewed_at=timezone.now()
    )
    return changed


def agreement_stats(*, task: Task) -> dict:
    """Per judge: judgements, those on comparisons someone else judged too, and how many of those agree with every
    other judgement; overall: comparisons judged twice or more and the share where all agree. Two grouped
    queries, whatever the number of comparisons."""
    judgements = Judgement.objects.filter(comparison__task=task).order_by()
    others = Judgement.objects.filter(comparison=OuterRef("comparison"), judge__isnull=False).exclude(
        judge=OuterRef("judge")
    )
    rows = (
        judgements.annotate(
            shared=Exists(others),
            differs=Exists(others.exclude(choice=OuterRef("choice"))),
        )
        .values("judge_id", "judge__username")
        .annotate(
            total=Count("id"),
            both_bad=Count("id", filter=Q(choice=Choice.BOTH_BAD)),
            double=Count("id", filter=Q(shared=True)),
            agree=Count("id", filter=Q(shared=True, differs=False)),
        )
        .order_by("judge__username")
    )
    judges = [
        {
            "username": row["judge__username"],
            "judgements": row["total"],
            "both_bad": row["both_bad"],
            "double": row["double"],
            "agree": row["agree"],
            "agreement": row["agree"] / row["double"] if row["double"] else None,
        }
        for row in rows
    ]
    per_comparison = (
        judgements.values("comparison_id")
        .annotate(n=Count("id"), choices=Count("choice", distinct=True))
        .filter(n__gte=2)
    )
    overall = per_comparison.aggregate(double=Count("comparison_id"), agree=Count("comparison_id", filter=Q(choices=1)))
    double = overall["double"] or 0
    return {
        "judges": judges,
        "double": double,
        "agreeing": overall["agree"] or 0,
        "agreement": (overall["agree"] or 0) / double if double else None,
    }


def triage_queryset(task: Task) -> QuerySet:
    return Comparison.objects.filter(task=task, state=Comparison.State.SPLIT).order_by("id")


def pair_checks_request(*, task: Task) -> None:
    """Run the pair checks of `task` on a worker once this transaction commits (inline without a broker). The checks
    are advice: when the broker is down the lead is told on the pairs page and may run them again."""
    from .tasks import pair_checks_task

    def send() -> None:
        try:
            pair_checks_task.apply_async(kwargs={"task_id": task.pk}, retry=False)
        except Exception as exc:  # broker down: the stored checks stay as they were
            from django.conf import settings

            if settings.CELERY_TASK_ALWAYS_EAGER and not isinstance(exc, OSError | ConnectionError):
                raise
            logger.warning("Could not send the pair checks of %s: %s", task.slug, exc)

    transaction.on_commit(send)
