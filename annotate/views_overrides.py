"""“Not a problem” on a quality warning: a reviewer or lead marks one, or undoes it (annotate.overrides)."""

from uuid import UUID

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from pairsmith.ratelimit import rate_limited

from . import overrides, quality_display
from .access import task_role
from .models import Example, QualityOverride, Role, Task

REVIEWERS = (Role.REVIEWER, Role.LEAD)
BACK = {"review": "reviews:review", "example": "reviews:example"}  # the pages that show the warnings' buttons


def _example(task: Task, uuid: UUID) -> Example:
    """The example of this task (Http404 for another task's)."""
    return get_object_or_404(Example.objects.select_related("template", "task"), task=task, uuid=uuid)


def _respond(request: HtmxHttpRequest, task: Task, example: Example, error: str = "") -> HttpResponse:
    back = request.POST.get("from") if request.POST.get("from") in BACK else "example"
    if not request.htmx:  # a plain POST: back to the page, which shows the warnings as they are now
        return redirect(BACK[back], task.slug, example.uuid)
    context = quality_display.panel(user=request.user, roles=request.task_roles, task=task, example=example)
    context.update(actions=True, back=back, overrule_error=error)
    return render(request, "annotate/_warnings.html", context)


@task_role(*REVIEWERS)
@require_POST
@rate_limited("write")
def overrule(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Mark the example's warning of one check as not a problem, for the text shown (`version`)."""
    example = _example(task, uuid)
    error = ""
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        version = -1
    try:
        overrides.override_record(
            example=example,
            user=request.user,
            roles=request.task_roles,
            code=request.POST.get("code", ""),
            version=version,
            note=request.POST.get("note", ""),
        )
    except ValidationError as exc:  # htmx 2 swaps no 4xx: the panel again, saying why
        error = " ".join(exc.messages)
    example.refresh_from_db()
    return _respond(request, task, example, error)


@task_role(*REVIEWERS)
@require_POST
@rate_limited("write")
def overrule_undo(request: HtmxHttpRequest, uuid: UUID, pk: int, *, task: Task) -> HttpResponse:
    """Undo an override: the warning is open again."""
    example = _example(task, uuid)
    override = get_object_or_404(QualityOverride.objects.select_related("created_by"), pk=pk, example=example)
    error = ""
    try:
        overrides.override_undo(override=override, user=request.user, roles=request.task_roles)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    example.refresh_from_db()
    return _respond(request, task, example, error)
