"""The reviewer's day: the queue, the review screen and its verdicts, triage, and the timeline of an example."""

from dataclasses import dataclass
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest
from django_htmx.http import HttpResponseClientRedirect

from annotate import quality_display
from annotate.access import task_role
from annotate.models import Example, Kind, Role, Task
from annotate.rendering import TemplateSpec, render_prompt
from annotate.templatetags.tool_tags import calls_diff
from annotate.tools import tools_of
from pairsmith.ratelimit import rate_limited

from . import services
from .diff import Budget
from .discard import DISCARDABLE, discard_outcome, last_good_revision
from .forms import QueueFilterForm, VerdictForm
from .models import ReasonCode, Verdict, reason_choices

REVIEWERS = (Role.REVIEWER, Role.LEAD)
Status = Example.Status
PER_PAGE = 50


def _example(task: Task, uuid: UUID) -> Example:
    """The example of this task with what the review screen shows; Http404 for another task's example."""
    example = get_object_or_404(Example.objects.select_related("template", "author"), task=task, uuid=uuid)
    example.task = example.template.task = task  # the same row: rendering the prompt reads it, no second query
    return example


COUNT_CAP = 1000


@dataclass
class Window:
    """One page of a list that may hold a million rows: counted up to COUNT_CAP only ("1000+"), never in full."""

    rows: list
    number: int
    count: int
    capped: bool
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def _window(queryset, page: str | None) -> Window:
    try:
        number = min(max(int(page or 1), 1), COUNT_CAP // PER_PAGE)
    except ValueError:
        number = 1
    offset = (number - 1) * PER_PAGE
    rows = list(queryset[offset : offset + PER_PAGE + 1])
    count = queryset.order_by()[: COUNT_CAP + 1].count()  # COUNT(*) over a LIMIT: stops at the cap
    has_next = len(rows) > PER_PAGE and number < COUNT_CAP // PER_PAGE
    return Window(rows[:PER_PAGE], number, min(count, COUNT_CAP), count > COUNT_CAP, has_next)


def _with_query(url: str, querystring: str) -> str:
    return f"{url}?{querystring}" if querystring else url


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


# --- the queue ---------------------------------------------------------------------------------------------------


@task_role(*REVIEWERS)
@require_GET
def queue(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """The examples waiting for this reviewer, filtered and ordered; "Start reviewing" takes them one by one."""
    form = QueueFilterForm(request.GET, annotators=services.annotators_of(task))
    filters = form.filters()
    waiting = (
        services.review_queue(task=task, reviewer=request.user, filters=filters)
        .select_related("author", "claimed_by")
        .only(
            "uuid", "external_id", "instruction", "kind", "warnings", "risk", "submitted_at", "claim_expires_at",
            "version", "author__username", "claimed_by__username",
        )
    )  # fmt: skip
    window = _window(waiting, request.GET.get("page"))
    context = {
        "task": task,
        "form": form,
        "window": window,
        "rows": window.rows,
        "querystring": filters.querystring(),
        "now": timezone.now(),
    }
    if request.htmx:
        return render(request, "reviews/queue.html#queue-table", context)
    return render(request, "reviews/queue.html", context)


def _take_next(request: HtmxHttpRequest, task: Task, filters, skip: Example | None = None) -> str:
    """Lease the next pair to this reviewer (releasing `skip`); the address of its review page, or of the queue with a
    message when none is left."""
    example = services.review_claim_next(task=task, reviewer=request.user, filters=filters, skip=skip)
    querystring = filters.querystring()
    if example is None:
        messages.info(
            request, "Nothing else is waiting for your review" + (" with these filters." if querystring else ".")
        )
        return _with_query(reverse("reviews:queue", args=[task.slug]), querystring)
    return _with_query(reverse("reviews:review", args=[task.slug, example.uuid]), querystring)


@task_role(*REVIEWERS)
@require_http_methods(["GET", "POST"])
def next_pair(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """POST leases the next pair (passing over `skip`, which it releases) and redirects to it. GET changes nothing,
    so that a link from anywhere leases nothing: a page whose one button (Enter) does the POST."""
    filters = QueueFilterForm(request.GET).filters()
    if request.method == "POST":
        skip = None
        if skip_uuid := _uuid(request.POST.get("skip")):
            skip = Example.objects.filter(task=task, uuid=skip_uuid).only("id").first()
        return redirect(_take_next(request, task, filters, skip))
    waiting = services.review_queue(task=task, reviewer=request.user, filters=filters).order_by()
    context = {"task": task, "querystring": filters.querystring(), "waiting": waiting[: COUNT_CAP + 1].count()}
    return render(request, "reviews/start.html", {**context, "capped": context["waiting"] > COUNT_CAP})


@task_role(*REVIEWERS)
@require_GET
def previous(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """Open the example this reviewer judged last (before the one given as `before`)."""
    verdicts = Verdict.objects.filter(reviewer=request.user, example__task=task)
    before = _uuid(request.GET.get("before"))
    if before:
        anchor = verdicts.filter(example__uuid=before).order_by("-id").values_list("id", flat=True).first()
        if anchor:
            verdicts = verdicts.filter(id__lt=anchor).exclude(example__uuid=before)
    target = verdicts.order_by("-id").values_list("example__uuid", flat=True).first()
    querystring = QueueFilterForm(request.GET).filters().querystring()
    if target is None:
        messages.info(request, "You have not judged anything before this in this task.")
        back = (
            reverse("reviews:review", args=[task.slug, before])
            if before
            else reverse("reviews:queue", args=[task.slug])
        )
        return redirect(_with_query(back, querystring))
    return redirect(_with_query(reverse("reviews:review", args=[task.slug, target]), querystring))


# --- the review screen -------------------------------------------------------------------------------------------


def _why_not(task: Task, example: Example, user, verdicts: list[Verdict]) -> str:
    """Why this reviewer cannot judge the example now ("" when they can)."""
    if example.status != Status.SUBMITTED:
        return f"This example is {example.get_status_display().lower()}; there is nothing to decide."
    if example.triage:
        return "Reviewers disagree on this version; it is decided in triage."
    if example.author_id == user.pk and not task.self_review_allowed:
        return "You wrote this example; another reviewer judges it."
    mine = [v for v in verdicts if v.reviewer_id == user.pk and v.example_version == example.version]
    if mine:
        return f"You judged this version: {mine[-1].get_decision_display().lower()}."
    now = timezone.now()
    if example.claimed_by_id not in (None, user.pk) and example.claim_expires_at and example.claim_expires_at > now:
        until = timezone.localtime(example.claim_expires_at).strftime("%H:%M")
        return f"{example.claimed_by} is reviewing this example right now (until {until})."
    return ""


def _decide_context(task: Task, example: Example, form: VerdictForm, filters: services.QueueFilters, **extra) -> dict:
    posted = form.data if form.is_bound else {}
    decision = posted.get("decision", "") if form.is_bound else ""
    return {
        "task": task,
        "example": example,
        "form": form,
        "mode": decision if decision in ("flag", "reject", "edit") else "",
        "reasons": [(i, code, label) for i, (code, label) in enumerate(reason_choices(task.output_format), start=1)],
        "chosen": posted.getlist("reasons") if form.is_bound else [],
        "comment": posted.get("comment", "") if form.is_bound else "",
        "edited": posted.get("completion", example.completion) if form.is_bound else example.completion,
        "edited_kind": posted.get("kind", example.kind) if form.is_bound else example.kind,
        "edits_reasoning": task.asks_reasoning or bool(example.reasoning),
        "edited_reasoning": posted.get("reasoning", example.reasoning) if form.is_bound else example.reasoning,
        "kinds": Kind.choices,
        "querystring": filters.querystring(),
        **extra,
    }


def _tool_diff(task: Task, steps: list) -> list[dict]:
    """A tools task's argument changes between the last two texts of the history (empty otherwise)."""
    if task.output_format != "tools" or len(steps) < 2:
        return []
    return calls_diff(steps[-2].revision.text, steps[-1].revision.text)


def _warnings_panel(request: HtmxHttpRequest, task: Task, example: Example, *, back: str) -> dict:
    """The example's quality warnings with their evidence and "not a problem" buttons (templates/annotate/_warnings)."""
    panel = quality_display.panel(user=request.user, roles=request.task_roles, task=task, example=example)
    return {**panel, "actions": True, "back": back}


def _review_context(
    request: HtmxHttpRequest, task: Task, example: Example, form: VerdictForm, filters, **extra
) -> dict:
    verdicts = list(example.verdicts.select_related("reviewer").order_by("id"))
    blocked = _why_not(task, example, request.user, verdicts)
    steps = services.revision_history(example)
    budget = Budget()  # one for the page's diffs
    diffs = services.step_diffs(steps, budget=budget)
    reasoning_diffs = services.step_diffs(steps, field="reasoning", budget=budget)
    return {
        **_decide_context(task, example, form, filters, **extra),
        "template": example.template,
        "rendered_prompt": render_prompt(TemplateSpec.of(example.template), fields=example.prompt_fields()),
        **_warnings_panel(request, task, example, back="review"),
        "blocked": blocked,
        # A second reviewer judges blind: the verdicts on this version show once this reviewer cannot judge it.
        "this_version": [v for v in verdicts if v.example_version == example.version] if blocked else [],
        "earlier": [v for v in verdicts if v.example_version != example.version][-5:],
        "steps": [
            (step, diffs.get(step.revision.pk), reasoning_diffs.get(step.revision.pk)) for step in reversed(steps)
        ],
        "latest_diff": diffs.get(steps[-1].revision.pk) if steps else None,
        "latest_reasoning_diff": reasoning_diffs.get(steps[-1].revision.pk) if steps else None,
        "tool_diff": _tool_diff(task, steps),
        # the builder of the reviewer's fix: the tool set of the example's own template version
        "tool_set": tools_of(example.template.tools) if task.output_format == "tools" else None,
        "roles": request.task_roles,
    }


@task_role(*REVIEWERS)
@require_http_methods(["GET", "POST"])
def review(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """The review screen: the prompt, the completion and its history, the warnings, and the decision form.

    GET changes nothing: it neither takes nor renews the lease (a verdict needs none; it is refused only while another
    reviewer holds one). POST (the queue's "Review" button) takes the lease first, when this reviewer may judge the
    pair, so that "next" does not hand it to someone else meanwhile, and redirects here.
    """
    example = _example(task, uuid)
    filters = QueueFilterForm(request.GET).filters()
    if request.method == "POST":
        if not _why_not(task, example, request.user, list(example.verdicts.all())):
            services.review_take(example=example, reviewer=request.user)
        return redirect(_with_query(reverse("reviews:review", args=[task.slug, uuid]), filters.querystring()))
    form = VerdictForm(initial={"version": example.version})
    return render(request, "reviews/review.html", _review_context(request, task, example, form, filters))


def _outcome(verdict: Verdict) -> str:
    example = verdict.example
    what = "“" + Truncator(example.instruction or str(example.uuid)).chars(60) + "”"
    if example.triage:
        return f"You and another reviewer disagree on {what}: it went to triage."
    if verdict.decision == Verdict.Decision.APPROVE:
        edited = "Edited and approved" if verdict.revision.reason == "reviewer_edit" else "Approved"
        if example.status == Status.APPROVED:
            return f"{edited} {what}."
        return f"{edited} {what}: approval 1 of {example.task.approvals_required}, it waits for a second reviewer."
    if verdict.decision == Verdict.Decision.FLAG:
        return f"Flagged {what} back to {example.author or 'its annotator'}."
    return f"Rejected {what}."


@task_role(*REVIEWERS)
@require_POST
@rate_limited("write")
def decide(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Record a verdict and go on to the next example; on refusal, the form again with the reason (htmx: status 200)."""
    example = _example(task, uuid)
    form = VerdictForm(request.POST)
    filters = QueueFilterForm.from_querystring(request.POST.get("queue", "")).filters()
    stale = None
    if form.is_valid():
        try:
            verdict = services.verdict_record(example=example, reviewer=request.user, **form.service_arguments())
        except services.StaleReview as exc:
            stale = exc.current
            form.add_error(None, exc)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _outcome(verdict))
            url = _take_next(request, task, filters)  # in this POST: the page it redirects to changes nothing
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    if request.htmx:
        # Only the form is swapped: the page still shows the text the reviewer saw. The form keeps that version, so
        # pressing "a" again is refused again instead of approving a text the reviewer has not read.
        seen = form.cleaned_data["version"] if stale is not None else example.version
        context = _decide_context(task, example, form, filters, stale=stale, seen_version=seen)
        return render(request, "reviews/_decide.html", context)
    context = _review_context(request, task, example, form, filters, stale=stale)
    return render(request, "reviews/review.html", context)


# --- the timeline of one example ---------------------------------------------------------------------------------


@task_role(Role.ANNOTATOR, *REVIEWERS)
@require_GET
def example_detail(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Everything that happened to one example, in order: revisions, verdicts, transitions (who and when).

    Reviewers and leads see every example of the task; an annotator only the examples they wrote (others: 404).
    """
    example = _example(task, uuid)
    if not request.task_roles.intersection(REVIEWERS) and example.author_id != request.user.pk:
        raise Http404("No such example.")
    steps = services.revision_history(example)
    budget = Budget()  # one for the page's diffs
    context = {
        "task": task,
        "example": example,
        "template": example.template,
        "events": services.example_timeline(example),
        "diffs": services.step_diffs(steps, budget=budget),
        "reasoning_diffs": services.step_diffs(steps, field="reasoning", budget=budget),
        "is_reviewer": bool(request.task_roles.intersection(REVIEWERS)),
        "reason_choices": ReasonCode.choices,
        "rendered_prompt": render_prompt(TemplateSpec.of(example.template), fields=example.prompt_fields()),
    }
    if context["is_reviewer"]:
        context.update(_warnings_panel(request, task, example, back="example"))
    if Role.LEAD in request.task_roles and example.status in DISCARDABLE:
        context["discard_to"] = discard_outcome(example, last_good_revision(example))
    return render(request, "reviews/example.html", context)
