"""Preference pairs' pages: the pairs list (checks, sources, review), the comparison screen (blind, random order,
keyboard first), and the triage of split comparisons."""

import secrets
import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from annotate.access import task_role
from annotate.models import Role, Task
from pairsmith.ratelimit import rate_limited

from . import services
from .checks import CHECKS, check_counts
from .forms import JudgementForm, PairFilterForm, TriageDecideForm
from .models import Comparison, Judgement, PreferencePair, Reason

REVIEWERS = (Role.REVIEWER, Role.LEAD)
JUDGES = (Role.ANNOTATOR, Role.REVIEWER, Role.LEAD)
PER_PAGE = 50
REASON_KEYS = "qwertyu"  # keys that toggle the reasons, in Reason's order


@task_role(*REVIEWERS)
@require_GET
def pairs(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """The task's pairs with their checks and sources; counts per check; agreement of the comparisons' judges."""
    form = PairFilterForm(request.GET)
    values = form.values()
    rows = PreferencePair.objects.filter(task=task)
    if values.get("check"):
        rows = rows.filter(checks__contains=f",{values['check']},")
    if values.get("source"):
        rows = rows.filter(source=values["source"])
    if values.get("reviewed"):
        rows = rows.filter(reviewed=values["reviewed"] == "yes")
    if values.get("pair"):
        rows = rows.filter(uuid=values["pair"])
    page = Paginator(rows.order_by("-id").only(
        "uuid", "external_id", "instruction", "chosen", "rejected", "source", "reviewed", "checks", "change"
    ), PER_PAGE).get_page(request.GET.get("page"))  # fmt: skip
    counts = check_counts(task)
    context = {
        "task": task,
        "form": form,
        "page": page,
        "checks": [(name, label, counts[name]) for name, label in CHECKS.items()],
        "total": PreferencePair.objects.filter(task=task).count(),
        "waiting": PreferencePair.objects.filter(task=task, reviewed=False).count(),
        "open": Comparison.objects.filter(task=task, state=Comparison.State.OPEN).count(),
        "split": Comparison.objects.filter(task=task, state=Comparison.State.SPLIT).count(),
        "stats": services.agreement_stats(task=task),
        "query": "&".join(f"{k}={v}" for k, v in values.items()),  # allow-listed values only
    }
    return render(request, "preferences/pairs.html", context)


@task_role(*REVIEWERS)
@require_POST
@rate_limited("write")
def pairs_review(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """Mark the selected pairs reviewed (exported from then on)."""
    uuids = []
    for value in request.POST.getlist("uuids")[: services.MAX_BULK + 1]:
        try:
            uuids.append(uuid.UUID(value))
        except ValueError:
            continue
    try:
        changed = services.pairs_mark_reviewed(task=task, uuids=uuids, reviewer=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{changed} pair{'s' if changed != 1 else ''} marked reviewed.")
    return redirect("preferences:pairs", task.slug)


@task_role(*JUDGES)
@require_GET
def compare(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """The next comparison for this person, its candidates in a random order (recorded with the judgement)."""
    comparison = services.comparison_next(task=task, user=request.user)
    return _compare_page(request, task, comparison, JudgementForm())


def _compare_page(request, task: Task, comparison: Comparison | None, form: JudgementForm, left: str | None = None):
    context = {"task": task, "comparison": comparison, "form": form}
    if comparison is not None:
        left = left or secrets.choice("ab")  # blind: the screen says A and B, never which candidate is which
        context.update(
            left=left,
            shown=[comparison.candidate(left), comparison.candidate("b" if left == "a" else "a")],
            reasons=[(key, value, label) for key, (value, label) in zip(REASON_KEYS, Reason.choices, strict=True)],
            waiting=services.comparisons_waiting(task=task, user=request.user),
        )
    return render(request, "preferences/compare.html", context)


@task_role(*JUDGES)
@require_POST
@rate_limited("write")
def judge(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    form = JudgementForm(request.POST)
    if not form.is_valid():
        given = form.data.get("comparison")
        comparison = Comparison.objects.filter(task=task, uuid=given).first() if _is_uuid(given) else None
        left = form.data.get("left") if form.data.get("left") in ("a", "b") else None
        return _compare_page(request, task, comparison, form, left)
    data = form.cleaned_data
    comparison = get_object_or_404(Comparison, task=task, uuid=data["comparison"])
    try:
        services.judgement_record(
            comparison=comparison,
            judge=request.user,
            left=data["left"],
            pick=data["pick"],
            reasons=data["reasons"],
            comment=data["comment"],
            better=data["better"],
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return _compare_page(request, task, comparison, form, data["left"])
    messages.success(request, "Judgement saved.")
    return redirect("preferences:compare", task.slug)


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@task_role(Role.LEAD)
@require_GET
def triage(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """Comparisons whose judges disagree, with each judgement (in candidates' terms), for a lead to decide."""
    page = Paginator(services.triage_queryset(task), 20).get_page(request.GET.get("page"))
    judged = {}
    for judgement in (
        Judgement.objects.filter(comparison__in=list(page.object_list)).select_related("judge").order_by("id")
    ):
        judgement.reason_labels = [Reason(code).label for code in judgement.reasons if code in Reason.values]
        judged.setdefault(judgement.comparison_id, []).append(judgement)
    rows = [{"comparison": c, "judgements": judged.get(c.pk, [])} for c in page.object_list]
    return render(request, "preferences/triage.html", {"task": task, "page": page, "rows": rows})


@task_role(Role.LEAD)
@require_POST
@rate_limited("write")
def triage_decide(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    form = TriageDecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose A, B or both bad.")
        return redirect("preferences:triage", task.slug)
    comparison = get_object_or_404(Comparison, task=task, uuid=form.cleaned_data["comparison"])
    try:
        services.triage_decide(
            comparison=comparison, lead=request.user, choice=form.cleaned_data["choice"],
            better=form.cleaned_data["better"],
        )  # fmt: skip
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Decided; its pairs are made.")
    return redirect("preferences:triage", task.slug)
