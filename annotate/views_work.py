"""The annotator's day: take the next example, write its completion, autosave, submit, skip; and "My work"."""

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from models_loop.drafts import shown_completion
from reviews.models import Verdict

from . import services
from .access import task_role
from .forms import CompletionForm, NewExampleForm, SkipForm
from .models import Example, Kind, Role, Skip, Task
from .rendering import TemplateSpec, render_prompt, required_fields

ANNOTATOR = Role.ANNOTATOR
Status = Example.Status


def _example(task: Task, uuid: UUID) -> Example:
    """The example of this task (404 for another task's), with its template."""
    return get_object_or_404(Example.objects.select_related("template", "task"), task=task, uuid=uuid)


def _may_edit(example: Example, user) -> bool:
    now = timezone.now()
    if example.status not in services.EDITABLE:
        return False
    if example.author_id is not None:
        return example.author_id == user.pk
    return example.claimed_by_id == user.pk and (example.claim_expires_at or now) >= now


def checks_for(example: Example, completion: str, *, fields: dict | None = None) -> list:
    """The quality warnings of this text, as the annotator types (the shared check library)."""
    from . import quality

    fields = fields or example.prompt_fields()
    required = required_fields(example.template.prompt_format)
    return quality.check_example(
        example.task, completion=completion, messages=example.messages, required=required, **fields
    )


def _editor_context(request, task: Task, example: Example, form: CompletionForm, **extra) -> dict:
    fields = example.prompt_fields()
    last_flag = None
    if example.status in (Status.FLAGGED, Status.DRAFT):
        last_flag = example.verdicts.filter(decision=Verdict.Decision.FLAG).select_related("reviewer").last()
    return {
        "task": task,
        "example": example,
        "form": form,
        "rendered_prompt": render_prompt(TemplateSpec.of(example.template), fields=fields),
        "may_edit": _may_edit(example, request.user),
        "last_flag": last_flag,
        "skip_form": SkipForm(),
        "kinds": Kind.choices,
        "template": example.template,
        "turns_editable": task.output_format == "chat"
        and task.chat_turns_editable
        and _may_edit(example, request.user),
        "roles": ("system", "user", "assistant"),
        **extra,
    }


@task_role(ANNOTATOR)
@require_GET
def work(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """Claim the next example and open it; an empty state when the pool is empty."""
    example = services.example_claim_next(task=task, user=request.user)
    if example is not None:
        return redirect("annotate:edit", task.slug, example.uuid)
    drafts = Example.objects.filter(task=task, author=request.user, status__in=[Status.DRAFT, Status.FLAGGED]).count()
    return render(request, "annotate/work_empty.html", {"task": task, "drafts": drafts})


@task_role(ANNOTATOR)
@require_GET
def edit(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    example = _example(task, uuid)
    completion = shown_completion(example, request.user)  # empty for annotators a task hides model drafts from
    form = CompletionForm(initial={"completion": completion, "kind": example.kind, "version": example.version})
    return render(request, "annotate/edit.html", _editor_context(request, task, example, form))


def _posted_turns(task: Task, form: CompletionForm) -> dict:
    """The edited prior turns, as example_save's `messages`, where the task lets annotators edit them."""
    if task.output_format != "chat" or not task.chat_turns_editable:
        return {}
    turns = form.turns()
    return {} if turns is None else {"messages": turns}


def _save_response(request, task: Task, example: Example, **context) -> HttpResponse:
    return render(request, "annotate/_save_status.html", {"task": task, "example": example, **context})


@task_role(ANNOTATOR)
@require_POST
def save(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Autosave and Ctrl+S: a new revision, or a conflict showing both texts; htmx swaps the status line."""
    example = _example(task, uuid)
    form = CompletionForm(request.POST)
    if not form.is_valid():
        return _save_response(
            request, task, example, error=" ".join(form.errors.get("completion", [])) or form.errors.as_text()
        )
    data = form.cleaned_data
    reason = "autosave" if request.POST.get("autosave") else "save"
    try:
        example = services.example_save(
            example=example,
            user=request.user,
            completion=data["completion"],
            kind=data["kind"],
            expected_version=data["version"],
            reason=reason,
            **_posted_turns(task, form),
        )
    except services.StaleVersion as exc:
        return _save_response(request, task, example, conflict=exc.current, mine=data["completion"])
    except ValidationError as exc:
        return _save_response(request, task, example, error=" ".join(exc.messages))
    return _save_response(request, task, example, saved=True)


@task_role(ANNOTATOR)
@require_POST
def feedback(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Inline feedback as the annotator types: counts and the quality checks. Saves nothing."""
    from . import quality

    example = _example(task, uuid)
    completion = request.POST.get("completion", "").replace("\r\n", "\n")[: services.MAX_COMPLETION_CHARS + 1]
    context = {
        "warnings": checks_for(example, completion),
        "chars": len(completion),
        "tokens": quality.count_tokens(completion),
        "prompt_tokens": quality.count_tokens(
            render_prompt(TemplateSpec.of(example.template), fields=example.prompt_fields())
        ),
    }
    return render(request, "annotate/_feedback.html", context)


@task_role(ANNOTATOR)
@require_POST
def submit(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Submit for review and go on to the next example; on refusal, the editor again with the reason."""
    example = _example(task, uuid)
    form = CompletionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            turns = _posted_turns(task, form)
        except ValidationError as exc:
            turns = None
            form.add_error(None, exc)
        if turns is not None:
            try:
                services.example_submit(
                    example=example,
                    user=request.user,
                    completion=data["completion"],
                    kind=data["kind"],
                    expected_version=data["version"],
                    **turns,
                )
            except services.StaleVersion as exc:
                context = _editor_context(request, task, example, form, conflict=exc.current, mine=data["completion"])
                return render(request, "annotate/edit.html", context)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Submitted for review.")
                return redirect("annotate:work", task.slug)
    example.refresh_from_db()
    return render(request, "annotate/edit.html", _editor_context(request, task, example, form))


@task_role(ANNOTATOR)
@require_POST
def skip(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    example = _example(task, uuid)
    form = SkipForm(request.POST)
    if form.is_valid():
        try:
            services.example_skip(example=example, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("annotate:edit", task.slug, example.uuid)
        messages.info(request, f"Skipped ({Skip.Reason(form.cleaned_data['reason']).label.lower()}).")
        return redirect("annotate:work", task.slug)
    messages.error(request, "Choose why you skip this example.")
    return redirect("annotate:edit", task.slug, example.uuid)


@task_role(ANNOTATOR)
@require_http_methods(["GET", "POST"])
def write_new(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """Write a new example from scratch: for the edge cases and negatives an imported set lacks."""
    if not task.allow_new_examples:
        messages.error(request, "This task does not take new examples from annotators.")
        return redirect(task)
    form = NewExampleForm(request.POST or None, initial={"kind": request.GET.get("kind", Kind.EDGE)}, task=task)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            example = services.example_write_new(
                task=task,
                user=request.user,
                fields={name: data[name] for name in ("instruction", "context", "input")},
                completion=data["completion"],
                kind=data["kind"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "New example saved as a draft. Check it and submit.")
            return redirect("annotate:edit", task.slug, example.uuid)
    return render(request, "annotate/write_new.html", {"task": task, "form": form, "template": task.current_template})


MY_WORK_TABS = [Status.FLAGGED, Status.DRAFT, Status.SUBMITTED, Status.APPROVED, Status.REJECTED]


@task_role(ANNOTATOR)
@require_GET
def my_work(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    mine = Example.objects.filter(task=task, author=request.user)
    counts = services.status_counts_for(mine)
    # Work sent back comes first: without a choice, the page opens on the flagged examples when there are any.
    status = request.GET.get("status") or (Status.FLAGGED if counts.get(Status.FLAGGED) else Status.DRAFT)
    if status not in MY_WORK_TABS:
        status = Status.DRAFT
    page = Paginator(
        mine.filter(status=status)
        .order_by("-updated_at", "-id")
        .only("uuid", "instruction", "completion", "kind", "status", "updated_at", "version"),
        25,
    ).get_page(request.GET.get("page"))
    flags = {}
    if status == Status.FLAGGED:
        for verdict in (
            Verdict.objects.filter(example__in=[e.pk for e in page], decision=Verdict.Decision.FLAG)
            .select_related("reviewer")
            .order_by("example_id", "id")
        ):
            flags[verdict.example_id] = verdict  # the latest flag of each example wins
    rows = [{"example": example, "flag": flags.get(example.pk)} for example in page]
    context = {
        "task": task,
        "status": status,
        "tabs": [(s, Status(s).label, counts.get(s, 0)) for s in MY_WORK_TABS],
        "rows": rows,
        "page": page,
    }
    if request.htmx:
        return render(request, "annotate/my_work.html#work-table", context)
    return render(request, "annotate/my_work.html", context)
