"""Writes that span rows, state changes and their side effects, for tasks, templates, members and examples."""

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max

from .models import Example, Membership, OutputFormat, PromptTemplate, Revision, Role, Task, Transition
from .rendering import PRESETS, PROMPT_FIELDS

User = get_user_model()

TEMPLATE_EDITABLE = (
    "instruction_text",
    "fields",
    "prompt_format",
    "chat_user_format",
    "alpaca_input_format",
    "system_message",
    "preset",
)

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise_prompt(text: str) -> str:
    """Case, whitespace and punctuation folded, so trivially different prompts compare equal."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def prompt_hash(fields: dict[str, str], messages: Iterable[dict] = ()) -> str:
    parts = [normalise_prompt(fields.get(name, "") or "") for name in PROMPT_FIELDS]
    parts += [f"{m.get('role')}:{normalise_prompt(str(m.get('content', '')))}" for m in messages]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def preset_values(preset: str) -> dict:
    """The template values of a preset. Raise ValidationError for an unknown preset."""
    if not preset:
        return {}
    if preset not in PRESETS:
        raise ValidationError({"preset": f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}."})
    values = {k: v for k, v in PRESETS[preset].items() if k != "title"}
    return {**values, "preset": preset}


@transaction.atomic
def task_create(
    *,
    slug: str,
    name: str,
    output_format: str = OutputFormat.TEXT,
    labels: list[str] | None = None,
    system_prompt: str = "",
    preset: str = "",
    created_by=None,
    **settings,
) -> Task:
    """Create a task with its first template (from `preset`); the creator becomes its lead. Raise ValidationError."""
    if Task.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A task with slug {slug!r} already exists."})
    task = Task(
        slug=slug,
        name=name,
        output_format=output_format,
        labels=labels or [],
        system_prompt=system_prompt,
        created_by=created_by,
        **settings,
    )
    task.full_clean()
    task.save()
    template = PromptTemplate(task=task, version=1, created_by=created_by, **preset_values(preset))
    template.full_clean()
    template.save()
    if created_by is not None:
        Membership.objects.create(task=task, user=created_by, role=Role.LEAD)
    return task


@transaction.atomic
def template_save(*, task: Task, values: dict, user=None) -> PromptTemplate:
    """Save the task's template: in place while no example uses it, else as the next version. Raise ValidationError."""
    Task.objects.select_for_update().get(pk=task.pk)  # serialise version numbering per task
    current = task.current_template
    unknown = set(values) - set(TEMPLATE_EDITABLE)
    if unknown:
        raise ValidationError(f"Not template fields: {', '.join(sorted(unknown))}.")
    if current is not None and not current.is_frozen:
        template = current
    else:
        version = (task.templates.aggregate(v=Max("version"))["v"] or 0) + 1
        template = PromptTemplate(task=task, version=version, created_by=user)
        if current is not None:
            for name in TEMPLATE_EDITABLE:
                setattr(template, name, getattr(current, name))
    for name, value in values.items():
        setattr(template, name, value)
    template.full_clean()
    template.save()
    return template


def user_get_or_create(*, username: str, password: str | None = None) -> tuple["User", bool]:
    """The user named `username`, created (with `password`, validated) when missing. Raise ValidationError."""
    user = User.objects.filter(username=username).first()
    if user is not None:
        if password:
            validate_password(password, user)
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, False
    user = User(username=username)
    user.full_clean(exclude=["password"])
    if password:
        validate_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return user, True


def membership_add(*, task: Task, user, role: str) -> tuple[Membership, bool]:
    """Give `user` the `role` on `task` (nothing changes if they hold it). Raise ValidationError for a bad role."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; use one of {', '.join(Role.values)}."})
    return Membership.objects.get_or_create(task=task, user=user, role=role)


@transaction.atomic
def membership_remove(*, task: Task, user, role: str) -> None:
    """Take `role` on `task` away from `user`. Raise ValidationError when it would leave the task without a lead."""
    if role == Role.LEAD:
        leads = Membership.objects.select_for_update().filter(task=task, role=Role.LEAD)
        if not leads.exclude(user=user).exists():
            raise ValidationError("A task needs at least one lead; add another lead first.")
    Membership.objects.filter(task=task, user=user, role=role).delete()


def status_counts(task_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Examples per status for each task, in one grouped query."""
    counts: dict[int, dict[str, int]] = {task_id: dict.fromkeys(Example.Status.values, 0) for task_id in task_ids}
    rows = Example.objects.filter(task_id__in=list(counts)).values("task_id", "status").annotate(n=Count("id"))
    for row in rows.order_by():
        counts[row["task_id"]][row["status"]] = row["n"]
    return counts


def example_create(
    *,
    task: Task,
    fields: dict[str, str],
    completion: str = "",
    kind: str = "happy",
    source: str = Example.Source.IMPORTED,
    status: str = Example.Status.NEW,
    messages: list[dict] | None = None,
    external_id: str = "",
    author=None,
    template: PromptTemplate | None = None,
) -> Example:
    """One example with its first revision (when it has a completion) and its first transition."""
    example = Example(
        task=task,
        template=template or task.current_template,
        kind=kind,
        source=source,
        status=status,
        completion=completion,
        messages=messages or [],
        external_id=external_id,
        author=author,
        prompt_hash=prompt_hash(fields, messages or ()),
        **{name: fields.get(name, "") or "" for name in PROMPT_FIELDS},
    )
    example.save()
    if completion:
        reason = Revision.Reason.IMPORT if source == Example.Source.IMPORTED else Revision.Reason.SAVE
        Revision.objects.create(
            example=example, text=completion, kind=kind, author=author, reason=reason, example_version=1
        )
    Transition.objects.create(
        example=example, from_status=Example.Status.NEW, to_status=status, actor=author, note=source
    )
    return example
