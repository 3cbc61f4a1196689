"""“Not a problem”: a reviewer or lead overrules one check's warning about one text of an example.

An override is kept (QualityOverride, never deleted) and audited. It applies to the text it was given on: while the
example holds that text, its warnings of that check carry a mark (`"override": {"id", "by", "at"}` in the stored
warning) and scans.warning_fields leaves them out of `warning_codes` and the risk, so they are not open warnings, do not
block a submit and do not filter or sort anything; every path that recomputes an example's warnings (a save, a
reviewer's edit, a task-wide rescan) puts the marks back through `apply_marks`, so a rescan of the same text keeps
them, and a changed text gets its warnings back open.
"""

import hashlib

import orjson
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from . import quality
from .audit import audit_record
from .models import AuditEvent, Example, QualityOverride, Role, Task
from .scans import warning_fields  # scans imports this module inside its functions, not at the top

MARK = "override"
NOTE_MAX = QualityOverride._meta.get_field("note").max_length
MESSAGE_MAX = QualityOverride._meta.get_field("message").max_length
# Warnings that come from elsewhere than the checks: the model judge's low score, a text over the size limit.
OTHER_TITLES = {"judge_low": "Low score from the model judge", "limit": "Too long to save"}
OVERRULABLE = {code for code, check in quality.CHECKS.items() if check.scope != "summary"}


def check_title(code: str) -> str:
    """The human name of a check ("Unusual sign-off"), never its code, unless the code is unknown."""
    check = quality.CHECKS.get(code)
    if check is not None:
        return check.title
    return OTHER_TITLES.get(code) or code.replace("_", " ").capitalize()


def text_hash(*, instruction: str, context: str, input: str, messages, completion: str) -> str:
    """The identity of an example's text: its prompt fields, prior turns and completion, exactly as stored."""
    payload = orjson.dumps([instruction or "", context or "", input or "", messages or [], completion or ""])
    return hashlib.sha256(payload).hexdigest()


def example_text_hash(example: Example, *, completion: str | None = None) -> str:
    return text_hash(
        **example.prompt_fields(),
        messages=example.messages,
        completion=example.completion if completion is None else completion,
    )


def mark_of(override: QualityOverride) -> dict:
    by = override.created_by.username if override.created_by_id and override.created_by else ""
    return {"id": override.pk, "by": by, "at": override.created_at.isoformat(timespec="seconds")}


def apply_marks(warnings: list[dict], marks: dict[str, dict] | None) -> list[dict]:
    """The warnings with the marks of the overrides standing on this text (code -> mark), and no others."""
    out = []
    for warning in warnings:
        mark = (marks or {}).get(warning.get("code"))
        if mark is None and MARK not in warning:
            out.append(warning)
            continue
        warning = {key: value for key, value in warning.items() if key != MARK}
        if mark is not None:
            warning[MARK] = mark
        out.append(warning)
    return out


def standing(example: Example) -> list[QualityOverride]:
    """The example's overrides not undone, newest first (those of earlier texts too)."""
    if example.pk is None:
        return []
    return list(
        QualityOverride.objects.filter(example=example, undone_at__isnull=True)
        .select_related("created_by")
        .order_by("-id")
    )


def marks_for(example: Example, overrides: list[QualityOverride], *, completion: str | None = None) -> dict:
    """code -> mark, for the overrides given on the example's current text (or on it with `completion`)."""
    if not overrides:
        return {}
    current = example_text_hash(example, completion=completion)
    return {o.code: mark_of(o) for o in reversed(overrides) if o.text_hash == current}


def example_marked(example: Example, warnings: list[dict], *, completion: str | None = None) -> list[dict]:
    """`warnings` of the example's text now (or with `completion`), marked where an override stands on that text.
    No warnings, nothing to mark: no query (most saves and every keystroke's feedback of a clean text)."""
    if not warnings:
        return warnings
    return apply_marks(warnings, marks_for(example, standing(example), completion=completion))


def task_marks(task: Task) -> dict[int, dict[str, dict]]:
    """example id -> {code: mark} for every override of the task standing on its example's current text (one pass
    over the overridden examples only: people click these, so there are few)."""
    rows = (
        QualityOverride.objects.filter(task=task, undone_at__isnull=True)
        .select_related("created_by")
        .order_by("example_id", "id")
    )
    by_example: dict[int, list[QualityOverride]] = {}
    for override in rows.iterator(chunk_size=2000):
        by_example.setdefault(override.example_id, []).append(override)
    marks: dict[int, dict[str, dict]] = {}
    texts = Example.objects.filter(pk__in=list(by_example)).only(
        "id", "instruction", "context", "input", "messages", "completion"
    )
    for example in texts.iterator(chunk_size=2000):
        current = example_text_hash(example)
        found = {o.code: mark_of(o) for o in by_example[example.pk] if o.text_hash == current}
        if found:
            marks[example.pk] = found
    return marks


def may_overrule(user, roles: set[str], task: Task, example: Example) -> str:
    """Why the user may not mark this example's warnings ("" when they may): reviewers and leads of the task, and
    not on their own text unless the task allows self-review."""
    if not roles.intersection({Role.REVIEWER, Role.LEAD}):
        return "Only the task's reviewers and leads may mark a warning as not a problem."
    if example.author_id == user.pk and not task.self_review_allowed:
        return "You wrote this example; another reviewer judges its warnings."
    return ""


def _store(example: Example, warnings: list[dict]) -> None:
    fields = warning_fields(warnings)
    Example.objects.filter(pk=example.pk).update(**fields)
    for name, value in fields.items():
        setattr(example, name, value)


def override_record(
    *, example: Example, user, roles: set[str], code: str, version: int, note: str = ""
) -> QualityOverride:
    """Mark the example's open warning of check `code` as not a problem, for its text now. Raise PermissionDenied for
    a user who may not (may_overrule), ValidationError for an unknown check, a warning the example does not have, a
    text changed since the page was shown (`version`), or a note that is too long."""
    if code not in OVERRULABLE:
        raise ValidationError("That is not one of the quality checks.")
    note = " ".join((note or "").split())
    if len(note) > NOTE_MAX:
        raise ValidationError(f"The note is {len(note)} characters long; at most {NOTE_MAX} are kept.")
    with transaction.atomic():
        # The row lock serialises overrides, undos and saves of this example: the text hashed is the text marked.
        current = Example.objects.select_for_update(of=("self",)).select_related("task").get(pk=example.pk)
        if problem := may_overrule(user, roles, current.task, current):
            raise PermissionDenied(problem)
        if current.version != version:
            raise ValidationError("The example changed since this page was shown: reload it to see its warnings now.")
        warnings = [w for w in current.warnings or [] if isinstance(w, dict)]
        matching = [w for w in warnings if w.get("code") == code]
        if not matching:
            raise ValidationError(f"This example has no “{quality.CHECKS[code].title}” warning now.")
        digest = example_text_hash(current)
        override = QualityOverride.objects.filter(
            example=current, code=code, text_hash=digest, undone_at__isnull=True
        ).first()
        if override is None:  # else a second click: the first one stands
            override = QualityOverride.objects.create(
                task=current.task,
                example=current,
                code=code,
                text_hash=digest,
                example_version=current.version,
                message=str(matching[0].get("message", ""))[:MESSAGE_MAX],
                note=note,
                created_by=user,
            )
            audit_record(
                task=current.task,
                actor=user,
                action=AuditEvent.Action.WARNING_OVERRULED,
                target=current.uuid,
                detail={"check": check_title(code), "version": current.version, "note": note},
            )
        marks = {o.code: mark_of(o) for o in _standing_on(current, digest)}
        _store(current, apply_marks(warnings, marks))
    example.warnings, example.warning_codes, example.risk = current.warnings, current.warning_codes, current.risk
    return override


def _standing_on(example: Example, digest: str) -> list[QualityOverride]:
    return list(
        QualityOverride.objects.filter(example=example, text_hash=digest, undone_at__isnull=True)
        .select_related("created_by")
        .order_by("id")
    )


def override_undo(*, override: QualityOverride, user, roles: set[str]) -> QualityOverride:
    """Undo an override: its warning is open again (on the same text). Raise PermissionDenied unless the user made it
    or leads the task, ValidationError when it was undone already."""
    if Role.LEAD not in roles and override.created_by_id != user.pk:
        raise PermissionDenied("Only the reviewer who marked it, or a lead, may undo it.")
    with transaction.atomic():
        current = Example.objects.select_for_update(of=("self",)).select_related("task").get(pk=override.example_id)
        updated = QualityOverride.objects.filter(pk=override.pk, undone_at__isnull=True).update(
            undone_by=user, undone_at=timezone.now()
        )
        if not updated:
            raise ValidationError("This was undone already.")
        audit_record(
            task=current.task,
            actor=user,
            action=AuditEvent.Action.OVERRULE_UNDONE,
            target=current.uuid,
            detail={"check": check_title(override.code), "marked_by": getattr(override.created_by, "username", "")},
        )
        digest = example_text_hash(current)
        marks = {o.code: mark_of(o) for o in _standing_on(current, digest)}
        _store(current, apply_marks([w for w in current.warnings or [] if isinstance(w, dict)], marks))
    override.refresh_from_db()
    return override


def overruled_counts(task: Task) -> dict[str, int]:
    """Examples per check whose warning of that check is marked not a problem now (read from the stored marks of
    the overridden examples only)."""
    counts: dict[str, int] = {}
    overridden = QualityOverride.objects.filter(task=task, undone_at__isnull=True).values("example_id")
    rows = Example.objects.filter(task=task, pk__in=overridden).values_list("warnings", flat=True)
    for warnings in rows.iterator(chunk_size=2000):
        for code in {w.get("code") for w in warnings or [] if isinstance(w, dict) and MARK in w}:
            counts[code] = counts.get(code, 0) + 1
    return counts
