"""Model settings of a task, starting model runs, and what a submit does when a model drafted or judges."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from annotate.audit import Action, audit_record
from annotate.models import Example, Revision, Task

from . import change
from .conf import ModelFeaturesOff, is_on
from .models import DraftEdit, ModelRun, TaskModelSettings
from .prompts import MAX_PROMPT_CHARS

logger = logging.getLogger(__name__)

EDITABLE = ("drafts_enabled", "judge_enabled", "model_name", "draft_prompt", "judge_prompt")
MAX_MODEL_NAME_CHARS = 200
JUDGE_STALE_CODES = {"judge_low"}


def settings_for(task: Task) -> TaskModelSettings:
    """The task's model settings row (made, with everything off, the first time it is asked for)."""
    row, _ = TaskModelSettings.objects.get_or_create(task=task)
    return row


def _clean(values: dict) -> dict:
    errors = {}
    name = values.get("model_name", "")
    if len(name) > MAX_MODEL_NAME_CHARS:
        errors["model_name"] = f"The model name is {len(name)} characters; the limit is {MAX_MODEL_NAME_CHARS}."
    elif name and (not name.isprintable() or name != name.strip()):
        errors["model_name"] = "The model name may not hold control characters or start or end with a space."
    for field in ("draft_prompt", "judge_prompt"):
        if field not in values:
            continue
        text = (values[field] or "").replace("\r\n", "\n")
        values[field] = text
        if len(text) > MAX_PROMPT_CHARS:
            errors[field] = f"The prompt is {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,}."
        elif "\x00" in text:
            errors[field] = "The prompt contains a NUL character."
    if errors:
        raise ValidationError(errors)
    return values


@transaction.atomic
def model_settings_save(*, task: Task, user, values: dict, hidden_from=None) -> TaskModelSettings:
    """Store the lead's choices (`values`: some of the EDITABLE fields; `hidden_from`: users, all annotators of the
    task, or None to leave them). Raise ValidationError naming the field; nothing changes then."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValidationError(f"Not model settings: {', '.join(sorted(unknown))}.")
    values = _clean(dict(values))
    hidden = None if hidden_from is None else list(hidden_from)
    if hidden is not None:
        annotators = set(task.memberships.filter(role="annotator").values_list("user_id", flat=True))
        strangers = [user.username for user in hidden if user.pk not in annotators]
        if strangers:
            raise ValidationError({"drafts_hidden_from": f"Not annotators of this task: {', '.join(strangers)}."})
    row = TaskModelSettings.objects.select_for_update().get(pk=settings_for(task).pk)
    changed = sorted(name for name, value in values.items() if getattr(row, name) != value)
    for name, value in values.items():
        setattr(row, name, value)
    row.save()
    if hidden is not None and set(row.drafts_hidden_from.values_list("pk", flat=True)) != {u.pk for u in hidden}:
        row.drafts_hidden_from.set(hidden)
        changed.append("drafts_hidden_from")
    if changed:
        detail = {"fields": changed, **{k: getattr(row, k) for k in ("drafts_enabled", "judge_enabled", "model_name")}}
        if "drafts_hidden_from" in changed:
            detail["drafts_hidden_from"] = sorted(user.username for user in hidden)
        audit_record(task=task, actor=user, action=Action.MODEL_SETTINGS, target=task.slug, detail=detail)
    return row


def run_request(
    *, task: Task, kind: str, user=None, limit: int | None = None, example: Example | None = None
) -> ModelRun:
    """Queue a run of drafts or judgements (of `example` only, when given). A whole-task run already queued or running
    of the same kind is returned instead of a second one. Raise ModelFeaturesOff without an endpoint,
    ValidationError when the task has the feature off, names no model, or `limit` is below 1."""
    from .runs import model_run_task

    if not is_on():
        raise ModelFeaturesOff
    if kind not in ModelRun.Kind.values:
        raise ValidationError(f"Unknown model run kind {kind!r}; use one of {', '.join(ModelRun.Kind.values)}.")
    if limit is not None and limit < 1:
        raise ValidationError(f"The limit must be at least 1, not {limit}.")
    with transaction.atomic():
        if example is None:  # one live whole-task run per kind (a judge on submit needs no lock on the task)
            Task.objects.select_for_update().get(pk=task.pk)
        row = settings_for(task)
        enabled = row.drafts_enabled if kind == ModelRun.Kind.DRAFT else row.judge_enabled
        if not enabled:
            what, them = ("Drafts are", "them") if kind == ModelRun.Kind.DRAFT else ("Judging is", "it")
            raise ValidationError(f"{what} off for {task.slug}: a lead turns {them} on in the task's model settings.")
        model = row.effective_model()
        if not model:
            raise ValidationError("No model named: set LLM_MODEL, or a model name in the task's model settings.")
        if example is None:
            live = task.model_runs.filter(kind=kind, example__isnull=True, state__in=["queued", "running"]).first()
            if live is not None:
                return live
        run = ModelRun.objects.create(task=task, kind=kind, model=model, limit=limit, example=example, created_by=user)
        if example is None:
            audit_record(
                task=task, actor=user, action=Action.MODEL_RUN_REQUESTED, target=f"{kind} run {run.pk}",
                detail={"kind": kind, "model": model, "limit": limit},
            )  # fmt: skip
        from pairsmith.jobs import job_send

        job_send(model_run_task, run)
    return run


def run_cancel(*, run: ModelRun, user) -> bool:
    """Cancel a queued or running model run (audited); its worker stops before its next write. False when it was
    over already."""
    from pairsmith.jobs import job_cancel

    with transaction.atomic():
        if not job_cancel(run):
            return False
        audit_record(
            task=run.task, actor=user, action=Action.MODEL_RUN_CANCELLED, target=f"{run.kind} run {run.pk}",
            detail={"kind": run.kind, "model": run.model, "progress": run.progress},
        )  # fmt: skip
    return True


# --- at submit ---------------------------------------------------------------------------------------------------


def revision_saved(sender, instance: Revision, created: bool, raw: bool = False, **kwargs) -> None:
    """post_save of Revision: a submit's revision is measured against the model's draft and queued for the judge."""
    if created and not raw and instance.reason == Revision.Reason.SUBMIT:
        submission_noted(revision=instance)


def submission_noted(*, revision: Revision) -> None:
    """In the submit's transaction: store how much the annotator changed the model's draft (once per draft), and drop
    the judge's warning about an earlier text. After commit (never delaying or failing the submit): queue the judge
    when the task has it on."""
    example = revision.example
    draft = (
        Revision.objects.filter(example_id=example.pk, reason=Revision.Reason.MODEL_DRAFT, id__lt=revision.pk)
        .order_by("-id")
        .only("id", "text")
        .first()
    )
    if draft is not None and not DraftEdit.objects.filter(draft=draft).exists():
        hidden = TaskModelSettings.objects.filter(task_id=example.task_id, drafts_hidden_from=revision.author_id)
        score, category = change.categorise(draft.text, revision.text)
        DraftEdit.objects.create(
            draft=draft, submitted=revision, task_id=example.task_id, example=example, annotator_id=revision.author_id,
            kind=revision.kind, shown=not hidden.exists(), similarity=score, change=category,
        )  # fmt: skip
    if any(w.get("code") in JUDGE_STALE_CODES for w in example.warnings or ()):
        _drop_judge_warning(example)
    if is_on():
        task_id, example_id = example.task_id, example.pk
        transaction.on_commit(lambda: _judge_after_submit(task_id, example_id), robust=True)


def _drop_judge_warning(example: Example) -> None:
    from annotate.scans import warning_fields

    kept = [w for w in example.warnings or () if w.get("code") not in JUDGE_STALE_CODES]
    fields = warning_fields(kept)
    Example.objects.filter(pk=example.pk).update(**fields)
    for name, value in fields.items():
        setattr(example, name, value)


def _judge_after_submit(task_id: int, example_id: int) -> None:
    row = TaskModelSettings.objects.filter(task_id=task_id, judge_enabled=True).select_related("task").first()
    if row is None:
        return
    example = Example.objects.filter(pk=example_id, status=Example.Status.SUBMITTED).first()
    if example is None:
        return
    try:
        run_request(task=row.task, kind=ModelRun.Kind.JUDGE, example=example)
    except (ValidationError, ModelFeaturesOff) as exc:
        logger.info("No judge for example %s: %s", example_id, exc)
