"""Verdicts: a reviewer's decision on the current text of an example, with an edit (completion, kind, reasoning)
when they fix and approve; the version they saw is checked, the row locked, and who did what recorded.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotate.audit import Action, audit_record
from annotate.limits import check_text
from annotate.models import Example, Kind, Revision, Task, Transition
from annotate.scans import example_warnings

from ..models import ReasonCode, Verdict

Status = Example.Status
Decision = Verdict.Decision


class StaleReview(ValidationError):
    """The example changed since the reviewer opened it: nothing was written."""

    def __init__(self, current: Example, *, by: str = "") -> None:
        self.current = current
        who = by or "Someone"
        super().__init__(
            f"{who} changed this example since you opened it (now version {current.version}); "
            "reload to review the new text."
        )


def _changed_by(current: Example) -> str:
    """Who saved the example's latest text (the annotator, or another reviewer with an edit), or "" when nobody did
    (an import). Only on the refusal path: one query."""
    revisions = Revision.objects.filter(example=current).current_line().select_related("author")
    latest = revisions.defer("text", "reasoning").order_by("-id").first()
    if latest is None or latest.author is None:
        return ""
    return latest.author.username


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
        raise StaleReview(current, by=_changed_by(current))
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
