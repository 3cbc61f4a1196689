"""Writes that span rows, state changes and their side effects, for tasks, templates, members and examples."""

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Max, Q, QuerySet, Value, When
from django.utils import timezone

from . import limits, revisions
from .audit import Action, audit_record
from .models import Example, Kind, Membership, OutputFormat, PromptTemplate, Revision, Role, Skip, Task, Transition
from .quality.leaks import PRESET_INPUT_REUSE
from .quality.prompt_signature import prompt_signature
from .rendering import PRESETS, PROMPT_FIELDS, TEMPLATE_TEXTS, template_limits_error
from .revisions import Standing
from .tools import tools_text, toolset_problems

User = get_user_model()

TEMPLATE_EDITABLE = (
    "instruction_text",
    "fields",
    "prompt_format",
    "chat_user_format",
    "alpaca_input_format",
    "system_message",
    "preset",
    "tools",
    "parallel_tool_calls",
)

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")
_APOSTROPHE = re.compile("['\u2019\u02bc]")


def normalise_prompt(text: str) -> str:
    """Case, whitespace and punctuation folded (apostrophes dropped: "What's" is "whats"), so trivially different
    prompts compare equal."""
    text = _APOSTROPHE.sub("", unicodedata.normalize("NFKC", text).casefold())
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


def task_slug_check(*, slug: str) -> None:
    """Raise ValidationError when a task's slug equals `slug` ignoring case.

    A slug names the task's export folder, and "Support" and "support" would be one folder on a case-insensitive
    filesystem; the constraint annotate_task_slug_ci refuses them too, this says so with the slug taken.
    """
    taken = Task.objects.filter(slug__iexact=slug).values_list("slug", flat=True).first()
    if taken is not None:
        case = "" if taken == slug else " (slugs that differ only in case name the same export folder)"
        raise ValidationError(f"A task with slug {taken!r} already exists{case}.", code="unique")


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
    tools: list | None = None,
    **settings,
) -> Task:
    """Create a task with its first template (from `preset`); the creator becomes its lead. A tools task takes its
    tool set (`tools`, OpenAI function definitions; none yet when omitted). Raise ValidationError, naming the function
    and field of a bad definition, before anything is saved."""
    try:
        task_slug_check(slug=slug)
    except ValidationError as exc:
        raise ValidationError({"slug": exc.messages}) from exc
    if not settings.get("input_reuse"):
        # a preset knows how its completions use the prompt (quality.leaks.PRESET_INPUT_REUSE); else automatic
        settings["input_reuse"] = PRESET_INPUT_REUSE.get(preset, "")
    if output_format == OutputFormat.TOOLS:
        tools = [] if tools is None else tools
        if problems := toolset_problems(tools):
            raise ValidationError({"tools": problems})
    elif tools is not None:
        raise ValidationError({"tools": "Only a task of output format tools has a tool set."})
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
    try:
        with transaction.atomic():  # a savepoint: a concurrent create of the same slug is refused like any other
            task.save()
    except IntegrityError as exc:
        raise ValidationError({"slug": f"A task with slug {slug!r} was just created by someone else."}) from exc
    stored = tools_text(tools) if tools is not None else None
    template = PromptTemplate(task=task, version=1, created_by=created_by, tools=stored, **preset_values(preset))
    template.full_clean()
    template.save()
    audit_record(
        task=task,
        actor=created_by,
        action=Action.TASK_CREATED,
        target=task.slug,
        detail={"name": task.name, "output_format": task.output_format, "preset": preset},
    )
    if created_by is not None:
        membership_add(task=task, user=created_by, role=Role.LEAD, actor=created_by)
    return task


@transaction.atomic
def template_save(*, task: Task, values: dict, user=None) -> PromptTemplate:
    """Save the task's template: in place while no example uses it, else as the next version. Raise ValidationError,
    also for a text over MAX_TEMPLATE_CHARS or MAX_TEMPLATE_PLACEHOLDERS (naming the field and the limit)."""
    Task.objects.select_for_update().get(pk=task.pk)  # serialise version numbering per task
    current = task.current_template
    unknown = set(values) - set(TEMPLATE_EDITABLE)
    if unknown:
        raise ValidationError(f"Not template fields: {', '.join(sorted(unknown))}.")
    in_place = current is not None and not current.is_frozen
    if in_place:
        template = current
    else:
        version = (task.templates.aggregate(v=Max("version"))["v"] or 0) + 1
        template = PromptTemplate(task=task, version=version, created_by=user)
        if current is not None:
            for name in TEMPLATE_EDITABLE:
                setattr(template, name, getattr(current, name))
    for name, value in values.items():
        setattr(template, name, value)
    too_long = {name: template_limits_error(name, getattr(template, name)) for name in TEMPLATE_TEXTS}
    if any(too_long.values()):
        raise ValidationError({name: message for name, message in too_long.items() if message})
    template.full_clean()
    template.save()
    audit_record(
        task=task,
        actor=user,
        action=Action.TEMPLATE_SAVED,
        target=f"v{template.version}",
        detail={"version": template.version, "new_version": not in_place, "fields": sorted(values)},
    )
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


@transaction.atomic
def membership_add(*, task: Task, user, role: str, actor=None) -> tuple[Membership, bool]:
    """Give `user` the `role` on `task` (nothing changes if they hold it); `actor` did it (None: a command).
    Raise ValidationError for a bad role."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; use one of {', '.join(Role.values)}."})
    membership, created = Membership.objects.get_or_create(task=task, user=user, role=role)
    if created:
        audit_record(task=task, actor=actor, action=Action.ROLE_ADDED, target=user.username, detail={"role": role})
    return membership, created


@transaction.atomic
def membership_remove(*, task: Task, user, role: str, actor=None) -> None:
    """Take `role` on `task` away from `user`; `actor` did it (None: a command). Raise ValidationError when it would
    leave the task without a lead."""
    if role == Role.LEAD:
        leads = Membership.objects.select_for_update().filter(task=task, role=Role.LEAD)
        if not leads.exclude(user=user).exists():
            raise ValidationError("A task needs at least one lead; add another lead first.")
    deleted, _ = Membership.objects.filter(task=task, user=user, role=role).delete()
    if deleted:
        audit_record(task=task, actor=actor, action=Action.ROLE_REMOVED, target=user.username, detail={"role": role})


def status_counts(task_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Examples per status for each task, in one grouped query."""
    counts: dict[int, dict[str, int]] = {task_id: dict.fromkeys(Example.Status.values, 0) for task_id in task_ids}
    rows = Example.objects.filter(task_id__in=list(counts)).values("task_id", "status").annotate(n=Count("id"))
    for row in rows.order_by():
        counts[row["task_id"]][row["status"]] = row["n"]
    return counts


def status_counts_for(queryset) -> dict[str, int]:
    """Examples per status of any example queryset, in one grouped query."""
    return {row["status"]: row["n"] for row in queryset.order_by().values("status").annotate(n=Count("id"))}


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
        prompt_signature=prompt_signature(fields, messages or ()),
        submitted_at=timezone.now() if status == Example.Status.SUBMITTED else None,
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


# --- claiming and writing ----------------------------------------------------------------------------------------

CLAIM_LEASE = timedelta(minutes=30)
MAX_COMPLETION_CHARS = limits.MAX_FIELD_CHARS
Status = Example.Status
# Statuses in which the example's annotator may change the completion; approved goes back to draft (re-review).
EDITABLE = {Status.NEW, Status.DRAFT, Status.FLAGGED, Status.APPROVED}


class StaleVersion(ValidationError):
    """A save against a version someone else changed since: the current text (written by `by`) stays, the user's text
    is kept aside as a conflict copy (`copy`; None when it was exactly the current text)."""

    def __init__(self, current: Example, copy: Revision | None = None, by=None) -> None:
        self.current = current
        self.copy = copy
        self.by = by  # who wrote the stored text (None: unknown)
        kept = "; your text is kept as a conflict copy" if copy is not None else ""
        super().__init__(
            f"This example was changed (now version {current.version}) since you loaded it; nothing was overwritten"
            f"{kept}."
        )


def example_held(*, task: Task, user, now: datetime | None = None) -> Example | None:
    """The unwritten example `user` holds a live claim on (the one "Annotate" reopens), or None. Reads only."""
    now = now or timezone.now()
    held = Example.objects.filter(
        task=task,
        claimed_by=user,
        claim_expires_at__gt=now,
        author__isnull=True,
        status__in=[Status.NEW, Status.FLAGGED],
    )
    return held.order_by("id").first()


def examples_claimable(*, task: Task, user, now: datetime | None = None, status: str | None = None) -> QuerySet:
    """The unowned examples nobody holds that `user` has not skipped: new ones, and flagged ones with no annotator to
    go back to (imported, sent back in triage); of one `status` when given. What example_claim_next hands out after the
    user's own flagged work. Reads only."""
    now = now or timezone.now()
    free = Example.objects.filter(task=task, status__in=[status] if status else [Status.NEW, Status.FLAGGED])
    free = free.filter(author__isnull=True)
    return free.filter(Q(claim_expires_at__isnull=True) | Q(claim_expires_at__lte=now)).exclude(skips__user=user)


def example_flagged_back(*, task: Task, user) -> QuerySet:
    """The user's own examples that a reviewer flagged back, oldest first: handed out before anything else."""
    return Example.objects.filter(task=task, author=user, status=Status.FLAGGED).order_by("updated_at", "id")


class KeptAside(ValidationError):
    """A save refused because the example cannot be edited now, whose text is kept as a revision (`copy`) that is not
    current."""

    def __init__(self, problem: str, copy: Revision) -> None:
        self.copy = copy
        super().__init__(f"{problem} Your text is kept as a revision that is not current.")


def example_claim_next(
    *, task: Task, user, lease: timedelta = CLAIM_LEASE, passing: Example | None = None
) -> Example | None:
    """Hand `user` the next example: flagged work first, then an example nobody else holds, as a lease.

    In order: the user's own flagged examples (sent back to them by a reviewer), the example they already hold, a
    flagged example without an annotator (an imported one sent back in triage: the pool's first), the oldest new
    one. Drafts are not handed out again here: they wait in the annotator's "My work".

    On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets concurrent requests pass over each other's candidate rows, so
    two annotators asking at the same moment never get the same example. `passing`: the example the annotator is
    moving on from ("Next →"), never handed straight back.
    """
    now = timezone.now()
    passing_id = passing.pk if passing is not None else 0
    # The user's own flagged work and the example they hold, in one query (each side on its partial user index).
    flagged_back = Q(author=user, status=Status.FLAGGED)
    held = Q(claimed_by=user, claim_expires_at__gt=now, author__isnull=True, status__in=[Status.NEW, Status.FLAGGED])
    theirs = (
        Example.objects.filter(flagged_back | held, task=task)
        .exclude(pk=passing_id)
        .annotate(rank=Case(When(flagged_back, then=Value(0)), default=Value(1)))  # flagged back first
        .order_by("rank", "updated_at", "id")
        .first()
    )
    if theirs is not None:
        return theirs
    if connection.vendor != "postgresql":  # one writer at a time: both pools in one select, flagged first
        return _claim_from_pool(task, user, None, now=now, expires=now + lease, passing_id=passing_id)
    for status in (Status.FLAGGED, Status.NEW):  # the flagged pool is small and read first; then the new pool
        example = _claim_from_pool(task, user, status, now=now, expires=now + lease, passing_id=passing_id)
        if example is not None:
            return example
    return None


def _claim_from_pool(task: Task, user, status: str | None, *, now, expires, passing_id: int = 0) -> Example | None:
    """Lease the oldest unowned example of `status` (None: flagged or new, flagged first) that nobody holds and `user`
    did not skip."""
    if connection.vendor == "postgresql":
        # One statement: take the oldest free row nobody else is taking right now (SKIP LOCKED), mark it ours. For
        # new rows the partial index annotate_example_pool serves it; flagged ones use (task, status, id).
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE annotate_example
                SET claimed_by_id = %(user)s, claim_expires_at = %(expires)s, updated_at = %(now)s
                WHERE id = (
                    SELECT e.id FROM annotate_example e
                    WHERE e.task_id = %(task)s AND e.status = %(status)s AND e.author_id IS NULL
                      AND (e.claim_expires_at IS NULL OR e.claim_expires_at <= %(now)s)
                      AND e.id <> %(passing)s
                      AND NOT EXISTS (SELECT 1 FROM annotate_skip s WHERE s.example_id = e.id AND s.user_id = %(user)s)
                    ORDER BY e.id LIMIT 1
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING id
                """,
                {
                    "user": user.pk,
                    "expires": expires,
                    "now": now,
                    "task": task.pk,
                    "status": status,
                    "passing": passing_id,
                },
            )
            row = cursor.fetchone()
        return Example.objects.get(pk=row[0]) if row else None
    with transaction.atomic():  # SQLite: one writer at a time, so a plain select-then-update is safe
        claimable = examples_claimable(task=task, user=user, now=now, status=status).exclude(pk=passing_id)
        flagged_first = Case(When(status=Status.FLAGGED, then=Value(0)), default=Value(1))
        example = claimable.order_by(flagged_first, "id").first()
        if example is None:
            return None
        example.claimed_by = user
        example.claim_expires_at = expires
        example.save(update_fields=["claimed_by", "claim_expires_at", "updated_at"])
    return example


def _edit_problem(example: Example, user) -> str | None:
    """Why `user` may not change the example's text now (None: they may)."""
    if example.status not in EDITABLE:
        return f"This example is {example.get_status_display().lower()} and cannot be edited now."
    now = timezone.now()
    holds_claim = example.claimed_by_id == user.pk and (example.claim_expires_at or now) >= now
    if example.author_id not in (None, user.pk):
        return "This example is another annotator's work."
    if example.author_id is None and not holds_claim:
        return "Your hold on this example expired and it went back to the pool. Take the next one."
    return None


def clean_completion(completion: str) -> str:
    """The completion as stored: CRLF folded; raise ValidationError over the size limit or with a NUL."""
    completion = completion.replace("\r\n", "\n")
    limits.check_text(completion, label="the completion")
    return completion


def example_save(
    *,
    example: Example,
    user,
    completion: str,
    kind: str,
    expected_version: int,
    reason: str = Revision.Reason.SAVE,
    fields: dict[str, str] | None = None,
    messages: list[dict] | None = None,
    lease: timedelta = CLAIM_LEASE,
    force_revision: bool = False,
    client: str = "",
    seq: int | None = None,
    reasoning: str | None = None,
) -> Example:
    """Store the completion as the example's current text; the example becomes a draft of `user`. `reasoning`: the
    reasoning written apart from the completion (tasks that ask for it); None keeps the stored one.

    `expected_version` is the version the editor last saw, `client` and `seq` its editor id and save number (see
    annotate.revisions: the editor's own earlier saves are no conflict; its older saves landing late are kept aside).
    Raise StaleVersion when someone else wrote since `expected_version`, ValidationError when the user may not edit
    it now or the input is bad. The current text does not change then, but the author's own text is kept aside as a
    revision that is not current, committed whatever the caller does with the error: nothing typed is lost.
    """
    if kind not in Kind.values:
        raise ValidationError(f"Unknown kind {kind!r}; use one of {', '.join(Kind.values)}.")
    completion = clean_completion(completion)
    if reasoning is not None:
        reasoning = reasoning.replace("\r\n", "\n")
        limits.check_text(reasoning, label="the reasoning")
    limits.check_prompt(fields=fields, messages=messages, turns_held=len(example.messages))
    with transaction.atomic():
        current = Example.objects.select_for_update().get(pk=example.pk)
        if reasoning is None:
            reasoning = current.reasoning
        if current.author_id not in (None, user.pk):  # before the version: a conflict panel would show another's text
            raise ValidationError("This example is another annotator's work.")
        standing = revisions.save_standing(
            current,
            user=user,
            base=expected_version,
            client=client,
            seq=seq,
            already_stored=_already_stored(current, user, completion, kind, fields, messages)
            and reasoning == current.reasoning,
        )
        problem = _edit_problem(current, user)
        refused = standing in (Standing.CONFLICT, Standing.SUPERSEDED)
        now = timezone.now()
        if not refused and not problem:
            return _store(
                current,
                user=user,
                completion=completion,
                kind=kind,
                reason=reason,
                fields=fields,
                messages=messages,
                lease=lease,
                force_revision=force_revision,
                client=client,
                seq=seq,
                now=now,
                reasoning=reasoning,
            )
        copy = None
        if current.author_id == user.pk:  # only the author's own text is kept; a stranger's save stores nothing
            copy = revisions.copy_keep(
                current,
                user=user,
                text=completion,
                kind=kind,
                reason=reason,
                aside=Revision.Reason.LATE if standing is Standing.SUPERSEDED else Revision.Reason.CONFLICT,
                base=expected_version,
                client=client,
                seq=seq,
                now=now,
                reasoning=reasoning,
            )
        if standing is Standing.SUPERSEDED and not problem and not force_revision:
            return current  # a later save of this same editor is current already: nothing to report
    # Raised once the copy is committed (or, inside a caller's transaction, part of it). An example that cannot be
    # edited now says so rather than offer a choice between texts.
    if problem:
        raise KeptAside(problem, copy) if copy is not None else ValidationError(problem)
    latest = Revision.objects.filter(example=current).current_line().select_related("author").order_by("-id")
    raise StaleVersion(current, copy, by=getattr(latest.first(), "author", None))


def _store(
    current: Example,
    *,
    user,
    completion: str,
    kind: str,
    reason: str,
    fields: dict[str, str] | None,
    messages: list[dict] | None,
    lease: timedelta,
    force_revision: bool,
    client: str,
    seq: int | None,
    now,
    reasoning: str,
) -> Example:
    """example_save's write, on the locked example: the new current text and its revision."""
    unchanged = (
        not force_revision
        and completion == current.completion
        and reasoning == current.reasoning
        and kind == current.kind
        and not fields
        and messages is None
        and current.status == Status.DRAFT
    )
    if unchanged:  # nothing new to keep: only extend the hold
        Example.objects.filter(pk=current.pk).update(claim_expires_at=now + lease)
        current.claim_expires_at = now + lease
        return current
    values = {
        "completion": completion,
        "reasoning": reasoning,
        "kind": kind,
        "status": Status.DRAFT,
        "author": user,
        "claimed_by": user,
        "claim_expires_at": now + lease,
        "version": current.version + 1,
        "updated_at": now,
    }
    if fields:
        values.update({name: fields[name] for name in ("instruction", "context", "input") if name in fields})
    if messages is not None:
        values["messages"] = messages
    if fields or messages is not None:
        merged = {name: values.get(name, getattr(current, name)) for name in ("instruction", "context", "input")}
        values["prompt_hash"] = prompt_hash(merged, values.get("messages", current.messages))
        values["prompt_signature"] = prompt_signature(merged, values.get("messages", current.messages))
    from .scans import example_warnings  # the checks import services' siblings; imported here to avoid a cycle

    previous_status = current.status
    for name, value in values.items():
        setattr(current, name, value)
    values.update(example_warnings(current))
    Example.objects.filter(pk=current.pk).update(**values)
    revisions.revision_write(
        current,
        user=user,
        text=completion,
        kind=kind,
        reason=reason,
        client=client,
        seq=seq,
        now=now,
        reasoning=reasoning,
    )
    if previous_status != Status.DRAFT:
        Transition.objects.create(example=current, from_status=previous_status, to_status=Status.DRAFT, actor=user)
    for name in ("warnings", "warning_codes", "risk"):
        setattr(current, name, values[name])
    return current


def _already_stored(current: Example, user, completion: str, kind: str, fields: dict | None, messages) -> bool:
    """The user's own draft already holds exactly this text: saving it again overwrites nothing, so an old version
    number is no conflict, whoever's tab sends it."""
    return (
        current.author_id == user.pk
        and current.status == Status.DRAFT
        and completion == current.completion
        and kind == current.kind
        and not fields
        and (messages is None or messages == current.messages)
    )


def example_submit(*, example: Example, user, completion: str, kind: str, expected_version: int, **extra) -> Example:
    """Save and submit for review (`extra`: example_save's fields, messages, client, seq, reasoning). Raise
    ValidationError for an empty completion, an empty reasoning in a task that asks for it, or a warning of a check the
    task makes blocking (nothing is saved then), StaleVersion and ValidationError as example_save (the text kept aside
    then)."""
    if not completion.strip():
        raise ValidationError("The completion is empty; write the ideal answer before submitting.")
    with transaction.atomic():
        try:
            saved = example_save(
                example=example,
                user=user,
                completion=completion,
                kind=kind,
                expected_version=expected_version,
                reason=Revision.Reason.SUBMIT,
                force_revision=True,  # the submitted text is always its own revision, the one reviewers judge
                **extra,
            )
        except ValidationError as exc:
            refusal = exc  # raised after this block, so that the text it kept aside commits
        else:
            # The save stored the warnings of this very text (and kept the last scan's task-wide ones): those of
            # checks the lead made blocking refuse the submit, and the transaction takes the save back with it.
            if saved.task.asks_reasoning and not saved.reasoning.strip():
                raise ValidationError("The reasoning is empty; this task asks for it: write it before submitting.")
            blocking = set(saved.task.blocking_checks or ())
            # A warning a reviewer marked not a problem on this very text blocks nothing (annotate.overrides).
            blockers = [w["message"] for w in saved.warnings or () if w.get("code") in blocking and "override" not in w]
            if blockers:
                raise ValidationError("Fix these before submitting: " + " ".join(blockers))
            now = timezone.now()
            Example.objects.filter(pk=saved.pk).update(
                status=Status.SUBMITTED,
                version=F("version") + 1,
                claimed_by=None,
                claim_expires_at=None,
                submitted_at=now,
                triage=False,
                updated_at=now,
            )
            Transition.objects.create(example=saved, from_status=Status.DRAFT, to_status=Status.SUBMITTED, actor=user)
            saved.refresh_from_db()
            return saved
    raise refusal


@transaction.atomic
def example_skip(*, example: Example, user, reason: str, comment: str = "") -> None:
    """Pass on a claimed example: it returns to the pool and is not offered to `user` again. Raise ValidationError."""
    if reason not in Skip.Reason.values:
        raise ValidationError(f"Unknown skip reason {reason!r}; use one of {', '.join(Skip.Reason.values)}.")
    current = Example.objects.select_for_update().get(pk=example.pk)
    if current.status != Status.NEW or current.claimed_by_id != user.pk:
        raise ValidationError("Only an example you hold and have not written yet can be skipped.")
    Skip.objects.get_or_create(example=current, user=user, defaults={"reason": reason, "comment": comment[:500]})
    Example.objects.filter(pk=current.pk).update(claimed_by=None, claim_expires_at=None)


def example_release(*, example: Example, user) -> None:
    """Give back a held example that nobody has written in yet (new, or flagged with no annotator), so others can
    take it."""
    unwritten = Q(status=Status.NEW) | Q(status=Status.FLAGGED, author__isnull=True)
    Example.objects.filter(unwritten, pk=example.pk, claimed_by=user).update(claimed_by=None, claim_expires_at=None)


@transaction.atomic
def example_write_new(*, task: Task, user, fields: dict[str, str], completion: str, kind: str) -> Example:
    """A new example written from scratch by an annotator (edge cases, negatives), a draft with the warnings of the
    per-example checks, as a save stores them. Raise ValidationError for a task that takes none, an empty
    instruction, an unknown kind, a field or completion over the limits (annotate/limits.py): nothing is stored."""
    if not task.allow_new_examples:
        raise ValidationError("This task does not take new examples from annotators.")
    unknown = set(fields) - set(PROMPT_FIELDS)
    if unknown:
        raise ValidationError(f"Not prompt fields: {', '.join(sorted(unknown))}.")
    limits.check_prompt(fields=fields)
    if not (fields.get("instruction") or "").strip():
        raise ValidationError({"instruction": "The instruction is empty."})
    if kind not in Kind.values:
        raise ValidationError({"kind": f"Unknown kind {kind!r}."})
    example = example_create(
        task=task,
        fields=fields,
        completion=clean_completion(completion),
        kind=kind,
        source=Example.Source.WRITTEN,
        status=Status.DRAFT,
        author=user,
    )
    from .scans import example_warnings  # imported here to avoid a cycle, as in example_save

    values = {"claimed_by": user, "claim_expires_at": timezone.now() + CLAIM_LEASE, **example_warnings(example)}
    Example.objects.filter(pk=example.pk).update(**values)
    example.refresh_from_db()
    return example
