"""The pages of evaluation runs: the list (and starting one), a run's figures and items, judging an answer blind, and
the actions on a run (cancel) and an answer judged worse (make a new example)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest
from django_htmx.http import HttpResponseClientRefresh

from annotate.access import task_role
from annotate.models import Role, Task
from exports.models import Export

from . import conf, evaluation
from .evaluation_stats import run_figures, runs_compare
from .forms import EvaluationStartForm, ItemVerdictForm
from .models import EvaluationItem, EvaluationRun

JUDGES = (Role.REVIEWER, Role.LEAD)
ITEMS_PER_PAGE = 50


def _run(task: Task, pk: int) -> EvaluationRun:
    """A run of this task (another task's run is a 404)."""
    return get_object_or_404(EvaluationRun.objects.select_related("export", "task"), task=task, pk=pk)


def _item(run: EvaluationRun, pk: int) -> EvaluationItem:
    return get_object_or_404(EvaluationItem.objects.select_related("example", "judged_by"), run=run, pk=pk)


def _list(request, task: Task, form: EvaluationStartForm | None = None) -> HttpResponse:
    exports = _exports(task)
    context = {
        "task": task, "runs": task.evaluation_runs.select_related("export").order_by("-id")[:100],
        "form": form or EvaluationStartForm(exports=exports), "lead": Role.LEAD in request.task_roles,
        "on": conf.is_on(), "exports": exports, "off_message": conf.OFF_MESSAGE,
    }  # fmt: skip
    return render(request, "models_loop/evaluations.html", context)


def _exports(task: Task):
    return list(Export.objects.available().filter(task=task, test_ratio__gt=0).order_by("-version")[:50])


@task_role(*JUDGES)
@require_GET
def evaluations(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """The task's runs, and for a lead the form that starts one."""
    return _list(request, task)


@task_role(Role.LEAD)
@require_POST
def evaluation_start(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """Start a run from the endpoint or from an uploaded file of outputs; errors come back on the list page."""
    form = EvaluationStartForm(request.POST, request.FILES, exports=_exports(task))
    if form.is_valid():
        upload = form.cleaned_data["outputs"]
        try:
            run = evaluation.evaluation_request(
                task=task, name=form.cleaned_data["name"], user=request.user,
                version=form.cleaned_data["export"] or None, model=form.cleaned_data["model"],
                outputs=upload.read() if upload else None,
            )  # fmt: skip
        except conf.ModelFeaturesOff as exc:
            form.add_error(None, f"{exc} Or upload the model's outputs as a file.")
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Run {run.name!r} started over {run.size} test examples.")
            return redirect(run)
    return _list(request, task, form)


def _add_errors(form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@task_role(*JUDGES)
@require_GET
def evaluation_detail(request: HtmxHttpRequest, *, task: Task, pk: int) -> HttpResponse:
    """A run: its progress, win / tie / loss with intervals (people's and the judge's), the comparison with another
    run, and its items a page at a time."""
    run = _run(task, pk)
    if request.htmx and request.GET.get("status"):
        if not run.is_live:  # over: reload the page, whose figures, items and "Judge answers" button now apply
            return HttpResponseClientRefresh()
        context = {"task": task, "run": run, "lead": Role.LEAD in request.task_roles}
        return render(request, "models_loop/evaluation.html#progress", context)
    others = task.evaluation_runs.exclude(pk=run.pk).order_by("-id")[:50]
    other = None
    if (with_id := request.GET.get("with", "")).isdigit():
        other = task.evaluation_runs.filter(pk=int(with_id)).exclude(pk=run.pk).first()
    shown = request.GET.get("show", "")
    items = run.items.select_related("example", "judged_by", "new_example").order_by("id")
    if shown in EvaluationItem.Result.values:
        items = items.filter(result=shown)
    elif shown == "todo":
        items = items.filter(result="")
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "task": task, "run": run, "figures": run_figures(run), "others": others, "other": other,
        "compare": runs_compare(other, run) if other else None, "page": page, "shown": shown,
        "lead": Role.LEAD in request.task_roles, "results": EvaluationItem.Result.choices,
    }  # fmt: skip
    return render(request, "models_loop/evaluation.html", context)


@task_role(*JUDGES)
@require_http_methods(["GET", "POST"])
def evaluation_judge(request: HtmxHttpRequest, *, task: Task, pk: int) -> HttpResponse:
    """One answer judged blind: A and B in the item's order. GET ?item=N opens that item, else the next unjudged one
    (after ?after=N, so passing moves on, wrapping round); POST records the verdict and opens the next."""
    run = _run(task, pk)
    item_id = request.POST.get("item") or request.GET.get("item")
    if item_id and str(item_id).isdigit():
        item = _item(run, int(item_id))
    else:
        after = request.GET.get("after", "")
        todo = run.items.filter(result="", answered=True).select_related("example").order_by("id")
        # The next unjudged answer after the one just sent or passed, else (wrapping round) the first one left.
        item = (todo.filter(id__gt=int(after)).first() if after.isdigit() else None) or todo.first()
        if item is None:
            messages.info(request, "Every answer of this run is judged.")
            return redirect(run)
    form = ItemVerdictForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            evaluation.item_verdict(item=item, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return redirect(reverse("models_loop:evaluation_judge", args=[task.slug, run.pk]) + f"?after={item.pk}")
    context = {
        "task": task, "run": run, "item": item, "form": form, "reasons": evaluation.REASONS,
        "chosen": form.data.getlist("reasons") if form.is_bound else [],
        "left": run.items.filter(result="", answered=True).count(), "turns": _turns(item),
    }  # fmt: skip
    return render(request, "models_loop/evaluation_judge.html", context, status=200)


def _turns(item: EvaluationItem) -> list[tuple[str, str]]:
    from annotate.rendering import TemplateSpec, record_renderer

    example = item.example
    record = record_renderer(TemplateSpec.of(example.template), "openai-chat")(
        example.prompt_fields(), "", example.messages or None
    )
    return [(m["role"], m["content"]) for m in record["messages"][:-1]]


@task_role(*JUDGES)
@require_POST
def item_new_example(request: HtmxHttpRequest, *, task: Task, pk: int, item: int) -> HttpResponse:
    run = _run(task, pk)
    row = _item(run, item)
    try:
        example = evaluation.item_new_example(item=row, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"New example {example.uuid} is waiting for annotators, with this prompt.")
    return redirect(request.POST.get("next") if _safe_next(request, task) else run.get_absolute_url())


def _safe_next(request, task: Task) -> bool:
    return str(request.POST.get("next", "")).startswith(f"/tasks/{task.slug}/evaluations/")


@task_role(Role.LEAD)
@require_POST
def evaluation_cancel(request: HtmxHttpRequest, *, task: Task, pk: int) -> HttpResponse:
    run = _run(task, pk)
    if evaluation.evaluation_cancel(run=run, user=request.user):
        messages.success(request, f"Run {run.name!r} cancelled; the answers in so far stay.")
    else:
        messages.info(request, f"Run {run.name!r} was over already.")
    return redirect(run)
