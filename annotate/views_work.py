"""The annotator's day: take the next example, write its completion, autosave, submit, skip; and "My work"."""

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from models_loop.drafts import shown_completion
from pairsmith.ratelimit import rate_limited
from reviews.models import Verdict

from . import limits, overrides, quality_display, services, tool_turns
from .access import example_for_editor, task_role
from .forms import CompletionForm, NewExampleForm, SkipForm
from .models import Example, Kind, Role, Skip, Task
from .rendering import TemplateSpec, render_prompt, render_text, required_fields
from .tools import tools_of

ANNOTATOR = Role.ANNOTATOR
Status = Example.Status


def _may_edit(example: Example, user) -> bool:
    now = timezone.now()
    if example.status not in services.EDITABLE:
        return False
    if example.author_id is not None:
        return example.author_id == user.pk
    return example.claimed_by_id == user.pk and (example.claim_expires_at or now) >= now


def checks_for(example: Example, completion: str, *, fields: dict | None = None, messages=None) -> list:
    """The quality warnings of this text (and of the prior turns being edited, `messages`), as the annotator types
    (the shared check library)."""
    from . import quality

    fields = fields or example.prompt_fields()
    required = required_fields(example.template.prompt_format)
    return quality.check_example(
        example.task,
        completion=completion,
        messages=example.messages if messages is None else messages,
        required=required,
        template=example.template,  # a tools task: the calls against this version's tool set
        **fields,
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
        "turns_editable": task.output_format in ("chat", "tools")
        and task.chat_turns_editable
        and _may_edit(example, request.user),
        "roles": ("system", "user", "assistant"),
        "tool_set": tools_of(example.template.tools) if task.output_format == "tools" else None,
        **extra,
    }


def _take_next(request: HtmxHttpRequest, task: Task) -> HttpResponse:
    """Claim the next example and open its editor; with none left, the empty state (GET of the work page).

    "Next →" from the editor names the example it leaves (`after`): that one is not handed straight back, and when
    nothing was written in it, it returns to the pool for others."""
    after = None
    if after_uuid := _uuid_or_none(request.POST.get("after")):
        after = Example.objects.filter(task=task, uuid=after_uuid).first()
        if after is not None:
            services.example_release(example=after, user=request.user)
    example = services.example_claim_next(task=task, user=request.user, passing=after)
    if example is None:
        return redirect("annotate:work", task.slug)
    return redirect("annotate:edit", task.slug, example.uuid)


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value or "")
    except ValueError:
        return None


@task_role(ANNOTATOR)
@require_http_methods(["GET", "POST"])
def work(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """POST claims the next example and opens it. GET changes nothing, so that a link from anywhere claims nothing: it
    reopens the example the annotator holds, else offers "Start annotating" (a POST), else the empty state."""
    if request.method == "POST":
        return _take_next(request, task)
    held = services.example_held(task=task, user=request.user)
    if held is not None:
        return redirect("annotate:edit", task.slug, held.uuid)
    flagged = services.example_flagged_back(task=task, user=request.user).count()
    if flagged or services.examples_claimable(task=task, user=request.user).exists():
        return render(request, "annotate/work_start.html", {"task": task, "flagged": flagged})
    drafts = Example.objects.filter(task=task, author=request.user, status__in=[Status.DRAFT, Status.FLAGGED]).count()
    return render(request, "annotate/work_empty.html", {"task": task, "drafts": drafts})


@task_role(ANNOTATOR)
@require_GET
def edit(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    example = example_for_editor(request, task, uuid)
    completion = shown_completion(example, request.user)  # empty for annotators a task hides model drafts from
    initial = {"completion": completion, "reasoning": example.reasoning, "kind": example.kind}
    form = CompletionForm(initial={**initial, "version": example.version})
    return render(request, "annotate/edit.html", _editor_context(request, task, example, form))


def _reasoning(task: Task, data: dict) -> dict:
    """The posted reasoning, as example_save's `reasoning`, where the task asks for it (elsewhere the stored one
    stays)."""
    return {"reasoning": data["reasoning"]} if task.asks_reasoning else {}


def _posted_turns(task: Task, form: CompletionForm, example: Example, *, submitting: bool = False) -> dict:
    """The edited prior turns, as example_save's `messages`, where the task lets annotators edit them. A tools task's
    last user turn is the instruction (its `fields` follow it), and a submission refuses turns out of order (a call
    with no result, a result answering no call) as an import does. Raise ValidationError naming the turn."""
    if task.output_format not in ("chat", "tools") or not task.chat_turns_editable:
        return {}
    if task.output_format == "chat":
        turns = form.turns()
        return {} if turns is None else {"messages": turns}
    turns = tool_turns.posted_tool_turns(form.data)
    if turns is None:
        return {}
    instruction = tool_turns.instruction_of(turns)
    instruction = example.instruction if instruction is None else instruction
    if submitting:
        tool_turns.order_refusal(turns, instruction=instruction, completion=form.cleaned_data["completion"])
    if instruction != example.instruction:
        return {"messages": turns, "fields": {"instruction": instruction}}
    return {"messages": turns}


def _conflict(exc: services.StaleVersion, mine: str) -> dict:
    """What the conflict panel shows: both texts, who wrote the stored one, the copy that keeps the user's, and what
    differs between them (the stored text marked against the user's: bounded, reviews.diff)."""
    from reviews.diff import text_diff

    differences = text_diff(mine, exc.current.completion)
    return {"conflict": exc.current, "conflict_by": exc.by, "copy": exc.copy, "mine": mine, "differences": differences}


def _save_response(request, task: Task, example: Example, **context) -> HttpResponse:
    return render(request, "annotate/_save_status.html", {"task": task, "example": example, **context})


@task_role(ANNOTATOR)
@require_POST
@rate_limited("write", fragment="annotate/_save_status.html")
def save(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Autosave and Ctrl+S: a new revision, or a conflict showing both texts; htmx swaps the status line."""
    example = example_for_editor(request, task, uuid)
    form = CompletionForm(request.POST)
    if not form.is_valid():
        error = " ".join(form.errors.get("completion", []) + form.errors.get("reasoning", [])) or "; ".join(
            f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()
        )
        return _save_response(request, task, example, error=error)
    data = form.cleaned_data
    reason = "autosave" if request.POST.get("autosave") else "save"
    seq = data["seq"]  # echoed as data-stored-seq once the text is in a revision: the page then forgets its copy
    try:
        example = services.example_save(
            example=example,
            user=request.user,
            completion=data["completion"],
            kind=data["kind"],
            expected_version=data["version"],
            reason=reason,
            client=data["client"],
            seq=seq,
            **_posted_turns(task, form, example),
            **_reasoning(task, data),
        )
    except services.StaleVersion as exc:
        return _save_response(request, task, example, seq=seq, **_conflict(exc, data["completion"]))
    except services.KeptAside as exc:
        return _save_response(request, task, example, error=" ".join(exc.messages), seq=seq)
    except ValidationError as exc:
        return _save_response(request, task, example, error=" ".join(exc.messages))
    return _save_response(request, task, example, saved=True, seq=seq)


@task_role(ANNOTATOR)
@require_POST
@rate_limited("feedback", fragment="annotate/_feedback_limited.html")
def feedback(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Inline feedback as the annotator types: counts and the quality checks. Saves nothing."""

    example = example_for_editor(request, task, uuid)
    completion = request.POST.get("completion", "").replace("\r\n", "\n")
    if problem := limits.text_problem(completion):  # no check runs on a text that cannot be saved anyway
        warnings = [{"code": "limit", "message": f"The completion {problem}: it cannot be saved.", "blocking": True}]
    else:
        try:  # the prior turns being edited (a tools task), checked as they stand
            edited = _posted_turns(task, CompletionForm(request.POST), example) if task.output_format == "tools" else {}
        except ValidationError as exc:
            edited = {"problem": " ".join(exc.messages)}
        # marked where a reviewer said "not a problem" about this very text (then it blocks nothing either)
        fields = {**example.prompt_fields(), **edited.get("fields", {})}
        found = [f.as_dict() for f in checks_for(example, completion, fields=fields, messages=edited.get("messages"))]
        if "problem" in edited:
            found.insert(0, {"code": "format", "message": edited["problem"], "blocking": True})
        warnings = overrides.example_marked(example, found, completion=completion)
    context = {
        "warnings": quality_display.shown_warnings(warnings, task=task, example=example, completion=completion),
        "chars": len(completion),
        **_token_counts(task, example, completion),
    }
    return render(request, "annotate/_feedback.html", context)


def _token_counts(task: Task, example: Example, completion: str) -> dict:
    """The counts line: exact with the task's tokenizer (exports' trainer preflight), else estimates."""
    from exports.preflight import conversation, token_counter

    from . import quality

    counter = token_counter(task)
    if counter is not None:
        spec = TemplateSpec.of(example.template)
        prior = [turn for turn in example.messages or [] if isinstance(turn, dict)]
        try:
            turns, tools = conversation(spec)(example.prompt_fields(), completion, prior)
        except (KeyError, TypeError, ValueError):
            turns = tools = None
        whole = counter.conversation(turns, tools) if turns is not None else None
        if whole is not None:
            return {"tokens": counter.count(completion), "total_tokens": whole, "exact": counter.name}
    tokens = quality.count_tokens(completion)
    return {"tokens": tokens, "total_tokens": tokens + _prompt_tokens(example), "exact": ""}


def _prompt_tokens(example: Example) -> int:
    """The estimated tokens of everything before the completion: in a chat, the system message and every prior turn
    (not only the last user turn), then the user message the template renders from the fields."""
    from . import quality

    spec = TemplateSpec.of(example.template)
    fields = example.prompt_fields()
    if not example.messages:
        return quality.count_tokens(render_prompt(spec, fields=fields))
    turns = [turn for turn in example.messages if isinstance(turn, dict)]
    own_system = any(turn.get("role") == "system" for turn in turns)  # an imported system turn replaces the task's
    texts = [spec.system_message] if spec.system_message and not own_system else []
    texts += [str(turn.get("content") or "") for turn in turns]
    if any(fields.values()):
        texts.append(render_text(spec.chat_user_format, fields))
    return sum(quality.count_tokens(text) for text in texts)


@task_role(ANNOTATOR)
@require_POST
@rate_limited("write")
def submit(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Submit for review and go on to the next example; on refusal, the editor again with the reason."""
    example = example_for_editor(request, task, uuid)
    form = CompletionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            turns = _posted_turns(task, form, example, submitting=True)
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
                    client=data["client"],
                    seq=data["seq"],
                    **turns,
                    **_reasoning(task, data),
                )
            except services.StaleVersion as exc:
                context = _editor_context(request, task, example, form, **_conflict(exc, data["completion"]))
                return render(request, "annotate/edit.html", context)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Submitted for review.")
                return _take_next(request, task)
    example.refresh_from_db()
    return render(request, "annotate/edit.html", _editor_context(request, task, example, form))


@task_role(ANNOTATOR)
@require_POST
@rate_limited("write")
def skip(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    example = example_for_editor(request, task, uuid)
    form = SkipForm(request.POST)
    if form.is_valid():
        try:
            services.example_skip(example=example, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("annotate:edit", task.slug, example.uuid)
        messages.info(request, f"Skipped ({Skip.Reason(form.cleaned_data['reason']).label.lower()}).")
        return _take_next(request, task)
    messages.error(request, "Choose why you skip this example.")
    return redirect("annotate:edit", task.slug, example.uuid)


@task_role(ANNOTATOR)
@require_http_methods(["GET", "POST"])
@rate_limited("write")
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
    template = task.current_template  # a new example is written with it: its tool set is the builder's
    tool_set = tools_of(template.tools) if task.output_format == "tools" else None
    context = {"task": task, "form": form, "template": template, "tool_set": tool_set}
    return render(request, "annotate/write_new.html", context)


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
