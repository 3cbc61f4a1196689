"""Template versions: field labels that follow the prompt format the lead wrote, and moving a task's examples from
older template versions to the current one (previewed first, then one job, recorded in the audit log).

Examples keep the template version they were written under (a version that examples use is frozen), so a rewritten
template leaves them on the old one, with its old labels and rendering. Moving them is the lead's explicit choice:
it changes how their next export renders them, never their text.
"""

import re
from dataclasses import dataclass, field

from celery import shared_task
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count

from pairsmith.jobs import JOB_TYPES, LIVE_STATES, job_claim, job_fail, job_finish, job_heartbeat, job_send

from .audit import Action, audit_record
from .models import Example, PromptTemplate, Task, TemplateMove
from .rendering import PROMPT_FIELDS, TemplateError, TemplateSpec, render_prompt

# A heading right before a placeholder names the field: "### Question:\n{instruction}" or "Passage: {context}".
# Bounded: matched only at line starts, at most 8 marks and 60 characters before the colon, nothing nested.
_NAMES = "|".join(PROMPT_FIELDS)
_HEADING = re.compile(r"(?m)^[#*>\-\t \[\]]{0,8}([^\n#*{}\[\]:]{1,60}):[ \t]*\n?[ \t]*\[?\[?\{(" + _NAMES + r")\}")
BATCH = 5_000  # examples moved per statement: short row locks, progress on the job row between batches


def headings(prompt_format: str) -> dict[str, str]:
    """The heading the prompt format writes before each field's placeholder, where there is one."""
    found: dict[str, str] = {}
    for match in _HEADING.finditer(prompt_format):
        found.setdefault(match.group(2), match.group(1).strip())
    return found


def labels_following(*, old_format: str, new_format: str, old_fields: dict, posted_fields: dict) -> dict:
    """The fields' labels and help after a save: where the prompt format's heading of a field changed and the lead
    left its label as it was, the label follows the new heading (a template rewritten from "### Question:" to
    "### Customer message:" no longer shows "Question" to annotators). A label the lead edited is kept."""
    before, after = headings(old_format), headings(new_format)
    result = {}
    for name, meta in posted_fields.items():
        meta = dict(meta)
        old_label = (old_fields.get(name) or {}).get("label") or name.title()
        if name in after and after[name] != before.get(name) and meta.get("label") == old_label:
            meta["label"] = after[name]
        result[name] = meta
    return result


@dataclass
class VersionChange:
    """The examples on one older version, and what moving them changes."""

    template: PromptTemplate
    examples: int
    labels: list[tuple[str, str, str]] = field(default_factory=list)  # (field, old label, new label) that differ
    sample_before: str = ""
    sample_after: str = ""
    sample_error: str = ""


@dataclass
class MovePreview:
    current: PromptTemplate | None
    changes: list[VersionChange]

    @property
    def examples(self) -> int:
        return sum(change.examples for change in self.changes)


def template_move_preview(*, task: Task) -> MovePreview:
    """What moving every example of `task` to its current template version would change: per older version, how
    many examples, which labels differ and one example's prompt rendered both ways. One grouped count, then one
    example per older version."""
    current = task.current_template
    if current is None:
        return MovePreview(None, [])
    counts = dict(
        Example.objects.filter(task=task)
        .exclude(template=current)
        .order_by()
        .values_list("template")
        .annotate(n=Count("id"))
    )
    changes = []
    for template in PromptTemplate.objects.filter(pk__in=counts).order_by("version"):
        change = VersionChange(template=template, examples=counts[template.pk])
        for name in PROMPT_FIELDS:
            old, new = template.field_label(name), current.field_label(name)
            if old != new:
                change.labels.append((name, old, new))
        sample = Example.objects.filter(task=task, template=template).order_by("id").first()
        if sample is not None:
            fields = sample.prompt_fields()
            try:
                change.sample_before = render_prompt(TemplateSpec.of(template), fields=fields)
                change.sample_after = render_prompt(TemplateSpec.of(current), fields=fields)
            except TemplateError as exc:
                change.sample_error = str(exc)
        changes.append(change)
    return MovePreview(current, changes)


def template_move_request(*, task: Task, user, expected: int) -> TemplateMove:
    """Start moving every example of `task` on an older version to the current one. Raise ValidationError when
    nothing is to move, when the preview the lead saw is out of date (`expected` examples), or when a move is
    already running (that one is returned instead of a second)."""
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)  # one live move per task
        live = task.template_moves.filter(state__in=LIVE_STATES).first()
        if live is not None:
            return live
        current = task.current_template
        to_move = Example.objects.filter(task=task).exclude(template=current).count() if current else 0
        if not to_move:
            raise ValidationError("Every example already uses the current template version.")
        if to_move != expected:
            raise ValidationError(
                f"{to_move} examples use older versions now, not the {expected} of the preview: look at it again."
            )
        move = TemplateMove.objects.create(task=task, to_template=current, total=to_move, created_by=user)
        audit_record(
            task=task, actor=user, action=Action.TEMPLATE_MOVED, target=f"v{current.version}",
            detail={"examples": to_move, "job": move.pk},
        )  # fmt: skip
        job_send(template_move_run_task, move)
    return move


def template_move_run(*, job_id: int) -> None:
    """Move the examples in batches of BATCH (by id), reporting progress; stops when the job is cancelled."""
    move = job_claim(TemplateMove, job_id)
    if move is None:
        return
    try:
        moved = 0
        last_id = 0
        while True:
            ids = list(
                Example.objects.filter(task_id=move.task_id, id__gt=last_id)
                .exclude(template_id=move.to_template_id)
                .order_by("id")
                .values_list("id", flat=True)[:BATCH]
            )
            if not ids:
                break
            moved += (
                Example.objects.filter(id__in=ids)
                .exclude(template_id=move.to_template_id)
                .update(template_id=move.to_template_id)
            )
            last_id = ids[-1]
            if not job_heartbeat(move, progress=moved):
                return  # cancelled: what moved stays moved (each batch is whole), the rest stays as it was
        job_finish(move, progress=moved, total=max(moved, move.total))
    except Exception as exc:
        job_fail(move, f"Moving the examples stopped: {exc}")
        raise


@shared_task(name="annotate.template_move_run", ignore_result=True)
def template_move_run_task(*, job_id: int) -> None:
    template_move_run(job_id=job_id)


JOB_TYPES.append((TemplateMove, template_move_run_task))
