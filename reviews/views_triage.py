"""Triage: flagged, rejected and split examples with the verdicts that put them there, and bulk actions on them."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from annotate.access import task_role
from annotate.models import Task
from pairsmith.ratelimit import rate_limited

from . import services
from .forms import TriageActionForm, TriageFilterForm
from .models import ReasonCode, Verdict
from .views import REVIEWERS, Status, _window, _with_query

TRIAGE_STATES = {
    "flagged": {"status": Status.FLAGGED},
    "rejected": {"status": Status.REJECTED},
    "split": {"status": Status.SUBMITTED, "triage": True},
}


def _triage_rows(task: Task, values: dict):
    rows = services.triage_queryset(task)
    if values.get("state"):
        rows = rows.filter(**TRIAGE_STATES[values["state"]])
    if values.get("annotator"):
        rows = rows.filter(author_id=values["annotator"])
    if values.get("kind"):
        rows = rows.filter(kind=values["kind"])
    if values.get("reason"):  # a code of the allow-list, quoted as it is in the JSON text
        rows = rows.filter(
            Exists(Verdict.objects.filter(example=OuterRef("pk"), reasons__icontains=f'"{values["reason"]}"'))
        )
    return rows.select_related("author").order_by("-updated_at", "-id")


@task_role(*REVIEWERS)
@require_GET
def triage(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """Flagged, rejected and split examples with the verdicts that put them here; bulk actions on a selection."""
    annotators = services.annotators_of(task)
    filter_form = TriageFilterForm(request.GET, annotators=annotators)
    values = filter_form.values()
    window = _window(_triage_rows(task, values), request.GET.get("page"))
    examples = window.rows
    judged: dict[int, list[Verdict]] = {}
    for verdict in Verdict.objects.filter(example__in=examples).select_related("reviewer").order_by("example_id", "id"):
        judged.setdefault(verdict.example_id, []).append(verdict)
    rows = []
    for example in examples:
        verdicts = judged.get(example.pk, [])
        current = [v for v in verdicts if v.example_version == example.version]
        rows.append({"example": example, "verdicts": current or verdicts[-1:]})
    counts = {"flagged": 0, "rejected": 0, "split": 0}
    for row in services.triage_queryset(task).order_by().values("status", "triage").annotate(n=Count("id")):
        state = "split" if row["status"] == Status.SUBMITTED else row["status"]
        counts[state] += row["n"]
    context = {
        "task": task,
        "filter_form": filter_form,
        "action_form": TriageActionForm(annotators=annotators, auto_id="bulk_%s"),
        "filters": urlencode(values),
        "rows": rows,
        "window": window,
        "counts": counts,
        "total": sum(counts.values()),
        "reasons": ReasonCode.choices,
    }
    if request.htmx:
        return render(request, "reviews/triage.html#triage-table", context)
    return render(request, "reviews/triage.html", context)


TRIAGE_VERBS = {"send_back": "sent back", "reject": "rejected", "reassign": "reassigned", "approve": "approved"}


@task_role(*REVIEWERS)
@require_POST
@rate_limited("write")
def triage_act(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """One bulk action on the selected examples; ids of other tasks (or not in triage) are ignored, with a message."""
    form = TriageActionForm(request.POST, annotators=services.annotators_of(task))
    values = TriageFilterForm(QueryDict(request.POST.get("filters", "")[:1000])).values()
    back = _with_query(reverse("reviews:triage", args=[task.slug]), urlencode(values))
    if not form.is_valid():
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
        messages.error(request, "Nothing was changed: " + " ".join(errors))
        return redirect(back)
    data = form.cleaned_data
    common = {"task": task, "uuids": data["uuids"], "actor": request.user, "comment": data["comment"]}
    try:
        if data["action"] == "send_back":
            result = services.triage_send_back(**common, reasons=data["reasons"])
        elif data["action"] == "reject":
            result = services.triage_reject(**common, reasons=data["reasons"])
        elif data["action"] == "reassign":
            result = services.triage_reassign(**common, annotator=data["annotator"], reasons=data["reasons"])
        else:
            result = services.triage_approve(**common)
    except ValidationError as exc:
        messages.error(request, "Nothing was changed: " + " ".join(exc.messages))
        return redirect(back)
    verb = TRIAGE_VERBS[data["action"]]
    if data["action"] == "reassign":
        verb = f"reassigned to {data['annotator']}"
    level = messages.SUCCESS if result.done and not (result.left or result.missing) else messages.WARNING
    messages.add_message(request, level, result.summary(verb))
    return redirect(back)
