"""A lead sets aside the draft of a draft or flagged example: broken work (a text nobody can fix in the editor, an
annotator gone) must not block the example for ever.

Nothing is deleted and the move can be undone: every revision stays, the discard is a transition (who, when, the
lead's note) and an event of the audit log. The example goes back to the last text worth keeping:

- an example with an approved text (the latest a reviewer approved) or an imported one goes back to the pool, new
  and nobody's, with that text (or none, imported without a completion) as a revision "restored by a lead": the next
  annotator starts from it, and it is reviewed again before any export;
- an example written from scratch and never approved has nothing to go back to: it is rejected (kept, never
  exported), where triage can send it back to an annotator.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotate.audit import Action, audit_record
from annotate.models import Example, Revision, Transition
from annotate.scans import example_warnings

from .models import Verdict

Status = Example.Status
DISCARDABLE = (Status.DRAFT, Status.FLAGGED)
NOTE_MAX = 150  # the transition's note holds "discarded by a lead: " and this


def last_good_revision(example: Example) -> Revision | None:
    """The latest revision a reviewer approved, else the imported text; None when there is neither."""
    approved = Verdict.objects.filter(example=example, decision=Verdict.Decision.APPROVE).order_by("-id").first()
    if approved is not None:
        return approved.revision
    return example.revisions.filter(reason=Revision.Reason.IMPORT).order_by("-id").first()


def discard_outcome(example: Example, good: Revision | None) -> str:
    """What a discard does to `example`, whose last good revision is `good`, in the lead's words (the confirmation
    and the message after it)."""
    if good is None and example.source == Example.Source.WRITTEN:
        return (
            "Written from scratch and never approved, it is rejected: kept, never exported (triage can send it back)."
        )
    if good is None:
        what = "no completion, as it was imported"
    else:
        what = "its imported text" if good.reason == Revision.Reason.IMPORT else "the last text a reviewer approved"
    return f"It goes back to the pool, new and nobody's, with {what}; the next annotator starts from there."


@transaction.atomic
def example_discard(*, example: Example, actor, expected_version: int, note: str = "") -> Example:
    """Set aside the draft of a draft or flagged example (see the module). Raise ValidationError when the example is
    neither, or changed since the lead saw `expected_version`; nothing is written then."""
    current = Example.objects.select_for_update().get(pk=example.pk)
    if current.version != expected_version:
        raise ValidationError(
            f"This example changed since you opened it (now version {current.version}); look at it again first."
        )
    if current.status not in DISCARDABLE:
        raise ValidationError(
            f"Only a draft or a flagged example can be discarded; this one is {current.get_status_display().lower()}."
        )
    note = " ".join(note.split())[:NOTE_MAX]
    good = last_good_revision(current)
    from_status, author = current.status, current.author
    now = timezone.now()
    values: dict = {
        "claimed_by": None,
        "claim_expires_at": None,
        "triage": False,
        "version": current.version + 1,
        "updated_at": now,
    }
    if good is None and current.source == Example.Source.WRITTEN:
        values["status"] = Status.REJECTED
    else:
        text, kind = (good.text, good.kind) if good is not None else ("", current.kind)
        reasoning = good.reasoning if good is not None else ""
        values.update(
            status=Status.NEW, author=None, submitted_at=None, completion=text, kind=kind, reasoning=reasoning
        )
        Revision.objects.create(
            example=current, text=text, reasoning=reasoning, kind=kind, author=actor, reason=Revision.Reason.RESTORE,
            example_version=values["version"],
        )  # fmt: skip
        current.completion, current.kind = text, kind
        values.update(example_warnings(current))  # the checks of the text it holds now
    Example.objects.filter(pk=current.pk).update(**values)
    for name, value in values.items():
        setattr(current, name, value)
    Transition.objects.create(
        example=current,
        from_status=from_status,
        to_status=values["status"],
        actor=actor,
        note=f"discarded by a lead{': ' + note if note else ''}",
    )
    audit_record(
        task=current.task,
        actor=actor,
        action=Action.EXAMPLE_DISCARDED,
        target=current.uuid,
        detail={
            "from": from_status,
            "to": values["status"],
            "author": author.username if author else None,
            "restored_revision": good.pk if good is not None else None,
            "note": note,
        },
    )
    return current
