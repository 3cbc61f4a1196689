import json

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from . import services
from .access import can_create_tasks, task_role
from .audit import Action, audit_page, audit_record
from .forms import MemberAddForm, MemberRemoveForm, PreviewSampleForm, TaskCreateForm, TaskEditForm, TemplateForm
from .models import Example, Membership, Role, Task
from .rendering import EXPORT_FORMATS, PRESETS, TemplateError, TemplateSpec, preview_record, render_prompt

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


@task_role(*ANY_ROLE)
@require_GET
def task_detail(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    counts = services.status_counts([task.pk])[task.pk]
    context = {
        "task": task,
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
        # An htmx preview redraws only itself, not the marks on the fields: name each field's errors here too.
        errors = list(form.non_field_errors())
        for name, field_errors in form.errors.items():
            if name != "__all__":
                errors += [f"{form[name].label}: {error}" for error in field_errors]
        return {"preview_errors": errors, "records": None}
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
        **_preview_context(task, preview_form, samples),
    }
    return render(request, "annotate/template_edit.html", context)


def _template_data(template) -> dict:
    form = TemplateForm(instance=template)
    return {name: form[name].value() for name in form.fields}


@task_role(LEAD)
@require_POST
def template_preview(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    context = {"task": task, **_preview_context(task, TemplateForm(request.POST), PreviewSampleForm(request.POST))}
    return render(request, "annotate/template_edit.html#preview", context)


@task_role(LEAD)
@require_http_methods(["GET", "POST"])
def members(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    add_form = MemberAddForm(request.POST if request.POST.get("action") == "add" else None)
    if request.method == "POST":
        if request.POST.get("action") == "add" and add_form.is_valid():
            user = User.objects.filter(username=add_form.cleaned_data["username"]).first()
            if user is None:
                add_form.add_error("username", "No user with that name. Create accounts with `manage.py add_member`.")
            else:
                _, created = services.membership_add(
                    task=task, user=user, role=add_form.cleaned_data["role"], actor=request.user
                )
                note = "added" if created else "already held that role"
                messages.success(request, f"{user.username} {note}: {add_form.cleaned_data['role']}.")
                return redirect("annotate:members", task.slug)
        elif request.POST.get("action") == "remove":
            remove = MemberRemoveForm(request.POST)
            if remove.is_valid():
                user = User.objects.filter(pk=remove.cleaned_data["user_id"], memberships__task=task).first()
                if user is None:
                    messages.error(request, "That person is not a member of this task.")
                else:
                    try:
                        services.membership_remove(
                            task=task, user=user, role=remove.cleaned_data["role"], actor=request.user
                        )
                    except ValidationError as exc:
                        messages.error(request, " ".join(exc.messages))
                    else:
                        messages.success(request, f"{user.username} is no longer {remove.cleaned_data['role']}.")
                return redirect("annotate:members", task.slug)
    rows: dict[int, dict] = {}
    for membership in task.memberships.select_related("user").order_by("user__username", "role"):
        row = rows.setdefault(membership.user_id, {"user": membership.user, "roles": []})
        row["roles"].append(membership.role)
    context = {"task": task, "rows": rows.values(), "add_form": add_form, "roles": Role.choices}
    return render(request, "annotate/members.html", context)


AUDIT_PER_PAGE = 50


def _event_id(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None  # a bigint: larger values would be a database error


@task_role(LEAD)
@require_GET
def audit(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """The task's audit log, newest first, one action or all; `before` (an event id) pages to older events."""
    action = request.GET.get("action", "")
    if action not in Action.values:  # an allow-list: anything else shows every action
        action = ""
    before = _event_id(request.GET.get("before"))
    page = audit_page(task=task, action=action, before=before, size=AUDIT_PER_PAGE)
    context = {"task": task, "page": page, "action": action, "before": before, "actions": Action.choices}
    return render(request, "annotate/audit.html", context)
