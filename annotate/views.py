import contextlib
import json
import re
from uuid import UUID

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest
from django_htmx.http import HttpResponseStopPolling

from . import services
from .access import can_create_tasks, task_role
from .accounts import Invitation, invitation_renew, member_invite
from .audit import Action, audit_page, audit_record
from .forms import (
    MemberAddForm,
    MemberPickForm,
    MemberRemoveForm,
    PreviewSampleForm,
    TaskCreateForm,
    TaskEditForm,
    TemplateForm,
)
from .models import Example, Membership, Role, Task, TemplateMove
from .rendering import (
    EXPORT_FORMATS,
    PRESETS,
    TemplateError,
    TemplateSpec,
    preview_record,
    render_prompt,
)
from .template_versions import template_move_preview, template_move_request

User = get_user_model()
LEAD = Role.LEAD
ANY_ROLE = tuple(Role.values)


@login_required
@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    tasks = list(
        Task.objects.for_user(request.user).prefetch_related(
            Prefetch("memberships", queryset=Membership.objects.filter(user=request.user), to_attr="my_memberships")
        )
    )
    counts = services.status_counts(task.pk for task in tasks)
    rows = [
        {
            "task": task,
            "roles": sorted({m.role for m in task.my_memberships}) or (["staff"] if request.user.is_staff else []),
            "counts": counts[task.pk],
            "total": sum(counts[task.pk].values()),
        }
        for task in tasks
    ]
    context = {"rows": rows, "statuses": Example.Status.choices, "can_create": can_create_tasks(request.user)}
    return render(request, "annotate/home.html", context)


@login_required
@require_GET
def flagged_badge(request: HtmxHttpRequest) -> HttpResponse:
    """The header's count of the user's examples that reviewers flagged back, loaded after the page (htmx), so that
    no page pays for it. Links to My work of the task that has them (the task list when several do)."""
    per_task = list(
        Example.objects.filter(author=request.user, status=Example.Status.FLAGGED)
        .values("task__slug", "task__name")
        .annotate(n=Count("id"))
        .order_by("-n", "task__slug")[:20]
    )
    total = sum(row["n"] for row in per_task)
    link = reverse("home")
    if len(per_task) == 1:
        link = reverse("annotate:my_work", args=[per_task[0]["task__slug"]]) + "?status=flagged"
    return render(request, "annotate/_flagged_badge.html", {"total": total, "link": link, "per_task": per_task})


@task_role(*ANY_ROLE)
@require_GET
def task_detail(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    counts = services.status_counts([task.pk])[task.pk]
    flagged_mine = 0
    if Role.ANNOTATOR in request.task_roles:
        flagged_mine = task.examples.filter(author=request.user, status=Example.Status.FLAGGED).count()
    context = {
        "task": task,
        "flagged_mine": flagged_mine,
        "roles": request.task_roles,
        "counts": counts,
        "total": sum(counts.values()),
        "statuses": Example.Status.choices,
        "template": task.current_template,
    }
    return render(request, "annotate/task_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def task_create(request: HtmxHttpRequest) -> HttpResponse:
    if not can_create_tasks(request.user):
        raise PermissionDenied("Only leads and staff create tasks.")
    form = TaskCreateForm(request.POST or None, initial={"preset": "qa-context"})
    if request.method == "POST" and form.is_valid():
        data = {name: value for name, value in form.cleaned_data.items() if not name.startswith("target_")}
        try:
            task = services.task_create(created_by=request.user, **data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Task “{task.name}” created. Now shape its prompt template.")
            return redirect("annotate:template_edit", task.slug)
    return render(request, "annotate/task_form.html", {"form": form, "creating": True})


@task_role(LEAD)
@require_http_methods(["GET", "POST"])
def task_edit(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    form = TaskEditForm(request.POST or None, instance=task)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            if form.has_changed():
                audit_record(
                    task=task,
                    actor=request.user,
                    action=Action.SETTINGS_CHANGED,
                    target=task.slug,
                    detail={"fields": form.changed_data},
                )
        messages.success(request, "Task settings saved.")
        return redirect(task)
    return render(request, "annotate/task_form.html", {"form": form, "task": task, "creating": False})


def _preview_context(task: Task, form: TemplateForm, samples: PreviewSampleForm) -> dict:
    """Render the sample through the (possibly unsaved) template into every export format; never a record over
    MAX_RENDERED_RECORD_BYTES (the preview says why instead)."""
    if not form.is_valid() or not samples.is_valid():
        return {"preview_errors": _named_errors(form) + _named_errors(samples), "records": None}
    data = form.cleaned_data
    spec = TemplateSpec(
        prompt_format=data["prompt_format"],
        chat_user_format=data["chat_user_format"],
        alpaca_input_format=data["alpaca_input_format"],
        system_message=data["system_message"] or task.system_prompt,
    )
    fields = {name: samples.cleaned_data[f"sample_{name}"] for name in ("instruction", "context", "input")}
    completion = samples.cleaned_data["sample_completion"]
    try:
        records = {
            fmt: json.dumps(
                preview_record(spec, fmt, fields=fields, completion=completion), indent=2, ensure_ascii=False
            )
            for fmt in EXPORT_FORMATS
        }
        prompt = render_prompt(spec, fields=fields)
    except TemplateError as exc:
        return {"preview_errors": [str(exc)], "records": None}
    return {"records": records, "rendered_prompt": prompt}


def _named_errors(form) -> list[str]:
    """Each error of a form with the label of its field ("Prompt format: …"): the preview names what to fix, since
    the form on the left shows its own errors only after a save."""
    named = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        label = label or (name.replace("_", " ").capitalize() if name != "__all__" else "")
        named.extend(f"{label}: {error}" if label else str(error) for error in errors)
    return named


def _default_samples(task: Task) -> dict:
    example = task.examples.order_by("id").only("instruction", "context", "input", "completion").first()
    if example:
        return {
            "sample_instruction": example.instruction,
            "sample_context": example.context,
            "sample_input": example.input,
            "sample_completion": example.completion,
        }
    template = task.current_template
    return {
        "sample_instruction": template.instruction_text if template else "",
        "sample_input": "…",
        "sample_completion": "…",
    }


@task_role(LEAD)
@require_http_methods(["GET", "POST"])
def template_edit(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    template = task.current_template
    if request.method == "POST" and "apply_preset" in request.POST:
        # Fill the form from the chosen preset without saving: the lead reviews, then saves.
        preset = request.POST.get("preset", "")
        values = services.preset_values(preset) if preset in PRESETS else {}
        data = request.POST.copy()
        for key, value in values.items():
            if key == "fields":
                for name, meta in value.items():
                    data[f"{name}_label"], data[f"{name}_help"] = meta["label"], meta["help"]
            else:
                data[key] = value
        form = TemplateForm(data, instance=template)
    else:
        form = TemplateForm(request.POST or None, instance=template)
    samples = PreviewSampleForm(request.POST or None, initial=_default_samples(task))
    if request.method == "POST" and "apply_preset" not in request.POST and form.is_valid():
        try:
            saved = services.template_save(task=task, values=form.template_values(), user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if saved.version != getattr(template, "version", None):
                messages.success(
                    request,
                    f"Saved as template version {saved.version}: version {template.version} is used by examples "
                    "and stays as it was.",
                )
            else:
                messages.success(request, f"Template version {saved.version} saved.")
            return redirect("annotate:template_edit", task.slug)
    if not samples.is_bound:
        samples = PreviewSampleForm(_default_samples(task))
    preview_form = form if form.is_bound else TemplateForm(_template_data(template), instance=template)
    context = {
        "task": task,
        "template": template,
        "form": form,
        "samples": samples,
        "versions": task.templates.order_by("-version").values("version", "created_at", "preset"),
        "on_older": task.examples.exclude(template=template).count() if template else 0,
        **_preview_context(task, preview_form, samples),
    }
    return render(request, "annotate/template_edit.html", context)


def _template_data(template) -> dict:
    form = TemplateForm(instance=template)
    return {name: form[name].value() for name in form.fields}


@task_role(LEAD)
@require_http_methods(["GET", "POST"])
def template_move(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """GET: what moving the examples on older template versions to the current one changes. POST: start the move."""
    if request.method == "POST":
        try:
            expected = int(request.POST.get("expected", ""))
        except ValueError:
            expected = -1
        try:
            move = template_move_request(task=task, user=request.user, expected=expected)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("annotate:template_move", task.slug)
        return redirect(f"{reverse('annotate:template_move', args=[task.slug])}?job={move.pk}")
    job = task.template_moves.filter(pk=_event_id(request.GET.get("job"))).first() if request.GET.get("job") else None
    context = {"task": task, "preview": template_move_preview(task=task), "job": job}
    return render(request, "annotate/template_move.html", context)


@task_role(LEAD)
@require_GET
def template_move_status(request: HtmxHttpRequest, move_id: int, *, task: Task) -> HttpResponse:
    job = get_object_or_404(TemplateMove, pk=move_id, task=task)
    response = render(request, "annotate/_template_move.html", {"task": task, "job": job})
    return response if job.is_live else HttpResponseStopPolling(response.content)


@task_role(LEAD)
@require_POST
def template_preview(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    context = {"task": task, **_preview_context(task, TemplateForm(request.POST), PreviewSampleForm(request.POST))}
    return render(request, "annotate/template_edit.html#preview", context)


@task_role(LEAD)
@require_http_methods(["GET", "POST"])
def members(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    action = request.POST.get("action")
    add_form = MemberAddForm(request.POST if action == "add" else None)
    invitation = None
    if action == "add" and add_form.is_valid():
        try:
            invitation = member_invite(task=task, actor=request.user, **add_form.cleaned_data)
        except ValidationError as exc:
            add_form.add_error("username", exc.messages)
        else:
            if not invitation.created:
                role = add_form.cleaned_data["role"]
                messages.success(request, f"{invitation.user.username} now holds the role {role}.")
                return redirect("annotate:members", task.slug)
            add_form = MemberAddForm()  # the link is shown once, on this response: nothing to redirect to
    elif action == "remove":
        _member_remove(request, task)
        return redirect("annotate:members", task.slug)
    elif action == "renew":
        invitation = _invitation_renew(request, task)
    rows: dict[int, dict] = {}
    for membership in task.memberships.select_related("user").order_by("user__username", "role"):
        row = rows.setdefault(membership.user_id, {"user": membership.user, "roles": []})
        row["roles"].append(membership.role)
    context = {"task": task, "rows": rows.values(), "add_form": add_form, "invitation": invitation}
    return render(request, "annotate/members.html", context)


def _member_remove(request: HtmxHttpRequest, task: Task) -> None:
    remove = MemberRemoveForm(request.POST)
    if not remove.is_valid():
        return
    user = User.objects.filter(pk=remove.cleaned_data["user_id"], memberships__task=task).first()
    if user is None:
        messages.error(request, "That person is not a member of this task.")
        return
    try:
        services.membership_remove(task=task, user=user, role=remove.cleaned_data["role"], actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{user.username} is no longer {remove.cleaned_data['role']}.")


def _invitation_renew(request: HtmxHttpRequest, task: Task) -> Invitation | None:
    pick = MemberPickForm(request.POST)
    user = None
    if pick.is_valid():
        user = User.objects.filter(pk=pick.cleaned_data["user_id"], memberships__task=task).first()
    if user is None:
        messages.error(request, "That person is not a member of this task.")
        return None
    try:
        link = invitation_renew(task=task, actor=request.user, user=user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return None
    return Invitation(user=user, created=False, link=link)


AUDIT_PER_PAGE = 50


def _event_id(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None  # a bigint: larger values would be a database error


EXPORT_ACTIONS = {Action.EXPORT_REQUESTED, Action.EXPORT_CANCELLED}
TEMPLATE_ACTIONS = {Action.TEMPLATE_SAVED, Action.TEMPLATE_MOVED}
PEOPLE_ACTIONS = {Action.ROLE_ADDED, Action.ROLE_REMOVED, Action.ACCOUNT_CREATED, Action.INVITATION_RENEWED}


def _link_targets(task: Task, events: list) -> None:
    """Give each event a `link` (and `label`) to what its target names: an example's timeline (named by its external id
    when it has one; one query for the page), an export version, the template, the members. Other targets stay text."""
    uuids = {}
    for event in events:
        with contextlib.suppress(ValueError):
            uuids[event.pk] = UUID(event.target)
    examples = {}
    if uuids:
        rows = Example.objects.filter(task=task, uuid__in=set(uuids.values())).values_list("uuid", "external_id")
        examples = dict(rows)
    for event in events:
        event.link, event.label = "", event.target
        uuid = uuids.get(event.pk)
        version = re.fullmatch(r"v(\d{1,9})", event.target)
        if uuid is not None and uuid in examples:
            event.link = reverse("reviews:example", args=[task.slug, uuid])
            event.label = examples[uuid] or f"{str(uuid)[:8]}…"
        elif version and event.action in EXPORT_ACTIONS:
            event.link = reverse("exports:detail", args=[task.slug, int(version.group(1))])
        elif version and event.action in TEMPLATE_ACTIONS:
            event.link = reverse("annotate:template_edit", args=[task.slug])
        elif event.action in PEOPLE_ACTIONS:
            event.link = reverse("annotate:members", args=[task.slug])


@task_role(LEAD)
@require_GET
def audit(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """The task's audit log, newest first, one action or all; `before` (an event id) pages to older events."""
    action = request.GET.get("action", "")
    if action not in Action.values:  # an allow-list: anything else shows every action
        action = ""
    before = _event_id(request.GET.get("before"))
    page = audit_page(task=task, action=action, before=before, size=AUDIT_PER_PAGE)
    _link_targets(task, page.events)
    context = {"task": task, "page": page, "action": action, "before": before, "actions": Action.choices}
    return render(request, "annotate/audit.html", context)
