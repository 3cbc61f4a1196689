"""A lead's model settings (with a preview of the requests), and the task page's "Draft with the model" button."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest
from django_htmx.http import HttpResponseStopPolling

from annotate.access import task_role
from annotate.models import Example, Role, Task
from annotate.rendering import TemplateSpec

from . import conf, prompts, services
from .forms import ModelSettingsForm
from .models import ModelRun

LEAD = Role.LEAD
PREVIEW_SAMPLE = {"instruction": "Where is my parcel?", "context": "", "input": "Order 1042, shipped Monday."}


def _preview(task: Task, data: dict) -> dict:
    """The draft and judge requests as they would be sent for the task's first example (or a sample)."""
    example = Example.objects.filter(task=task).select_related("template").order_by("id").first()
    if example is None:
        example = Example(task=task, template=task.current_template, **PREVIEW_SAMPLE)
    spec = TemplateSpec.of(example.template)
    # Cut at the limit: the preview of an over-long prompt stays bounded (saving it is refused, naming the limit).
    draft_prompt = (data.get("draft_prompt") or "")[: prompts.MAX_PROMPT_CHARS].strip()
    judge_prompt = (data.get("judge_prompt") or "")[: prompts.MAX_PROMPT_CHARS].strip()
    draft_prompt = draft_prompt or prompts.default_draft_prompt(task)
    judge_prompt = judge_prompt or prompts.default_judge_prompt(task)
    completion = example.completion or "(the annotator's completion)"
    return {
        "sample": example,
        "draft_request": prompts.draft_messages(prompt=draft_prompt, example=example, spec=spec),
        "judge_request": prompts.judge_messages(prompt=judge_prompt, example=example, spec=spec, completion=completion),
    }


def _context(task: Task, form: ModelSettingsForm, row) -> dict:
    data = form.data if form.is_bound else {"draft_prompt": row.draft_prompt, "judge_prompt": row.judge_prompt}
    return {
        "task": task,
        "form": form,
        "row": row,
        "on": conf.is_on(),
        "off_message": conf.OFF_MESSAGE,
        "default_model": settings.LLM_MODEL,
        "default_draft_prompt": prompts.default_draft_prompt(task),
        "default_judge_prompt": prompts.default_judge_prompt(task),
        **_preview(task, data),
    }


@task_role(LEAD)
@require_http_methods(["GET", "POST"])
def model_settings(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    row = services.settings_for(task)
    form = ModelSettingsForm(request.POST or None, instance=row, task=task)
    if request.method == "POST" and form.is_valid():
        try:
            services.model_settings_save(
                task=task, user=request.user, values=form.values(), hidden_from=form.cleaned_data["drafts_hidden_from"]
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Model settings saved.")
            return redirect("models_loop:settings", task.slug)
        row.refresh_from_db()
    return render(request, "models_loop/settings.html", _context(task, form, row))


def _add_errors(form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@task_role(LEAD)
@require_POST
def model_preview(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    context = {"task": task, **_preview(task, request.POST)}
    return render(request, "models_loop/settings.html#preview", context)


KINDS = {"draft": ModelRun.Kind.DRAFT, "judge": ModelRun.Kind.JUDGE}


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise Http404("No such kind of model run.")
    return KINDS[kind]


def _latest_run(task: Task, kind: str) -> ModelRun | None:
    return task.model_runs.filter(kind=kind, example__isnull=True).order_by("-id").first()


def _run_response(request, task: Task, run: ModelRun | None, kind: str, *, status_poll: bool = False, error=""):
    context = {"task": task, "run": run, "kind": kind, "on": conf.is_on(), "off_message": conf.OFF_MESSAGE,
               "error": error}  # fmt: skip
    response = render(request, "models_loop/_model_run.html", context)
    if status_poll and (run is None or not run.is_live):
        return HttpResponseStopPolling(response.content)
    return response


@task_role(LEAD)
@require_POST
def run_start(request: HtmxHttpRequest, *, task: Task, kind: str) -> HttpResponse:
    """Queue drafts of the task's new examples, or judgements of its submitted ones ("judge now"); the button becomes
    a progress bar (htmx) or the page says so."""
    kind = _kind(kind)
    try:
        run = services.run_request(task=task, kind=kind, user=request.user)
    except (conf.ModelFeaturesOff, ValidationError) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        if request.htmx:
            return _run_response(request, task, None, kind, error=text)
        messages.error(request, text)
        return redirect(task)
    run.refresh_from_db()
    if not request.htmx:
        what = "Drafting" if kind == ModelRun.Kind.DRAFT else "Judging"
        messages.success(request, f"{what} with {run.model}: {run.get_state_display().lower()}.")
        return redirect(task)
    return _run_response(request, task, run, kind)


@task_role(LEAD)
@require_GET
def run_status(request: HtmxHttpRequest, *, task: Task, kind: str) -> HttpResponse:
    """The latest run's progress; htmx stops polling once it is over."""
    kind = _kind(kind)
    return _run_response(request, task, _latest_run(task, kind), kind, status_poll=True)


@task_role(LEAD)
@require_POST
def run_cancel(request: HtmxHttpRequest, *, task: Task, kind: str) -> HttpResponse:
    """Cancel the live whole-task run of this kind: its worker stops at its next batch; what it wrote stays."""
    kind = _kind(kind)
    run = task.model_runs.filter(kind=kind, example__isnull=True, state__in=["queued", "running"]).first()
    cancelled = run is not None and services.run_cancel(run=run, user=request.user)
    if not request.htmx:
        if cancelled:
            messages.success(request, "Run cancelled; what it wrote so far stays.")
        else:
            messages.info(request, "No run in progress.")
        return redirect(task)
    return _run_response(request, task, _latest_run(task, kind), kind)
