from collections.abc import Iterator

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe
from django_htmx.http import HttpRequest as HtmxHttpRequest

from annotate.access import task_for, task_role
from annotate.models import Example, Role, Task
from pairsmith import filestore
from pairsmith.jobs import JobState
from pairsmith.ratelimit import rate_limited
from preferences.models import PreferencePair

from . import preflight, retention, services
from .formats import PAIR_FORMATS
from .forms import ChangeFilterForm, ExportForm, TokenForm, TokenizerForm
from .models import FILE_NAMES, ApiToken, Export, ExportChange, TaskTokenizer
from .storage import export_key

READERS = (Role.LEAD, Role.REVIEWER)
CONTENT_TYPES = {".jsonl": "application/jsonl", ".json": "application/json", ".md": "text/markdown; charset=utf-8"}
CHANGES_PER_PAGE = 50


def _get_export(task: Task, version: int) -> Export:
    """The task's export `version`; Http404 when there is none (the task was already checked for the user)."""
    return get_object_or_404(Export.objects.select_related("created_by", "deleted_by"), task=task, version=version)


def _list_context(request: HtmxHttpRequest, task: Task, form: ExportForm, tokenizer_form=None) -> dict:
    return {
        "task": task,
        "tokenizer": TaskTokenizer.objects.filter(task=task).defer("tokenizer_json", "config_json").first(),
        "tokenizer_form": tokenizer_form or TokenizerForm(),
        "exports": task.exports.select_related("created_by", "deleted_by").order_by("-version"),
        "form": form,
        "is_lead": Role.LEAD in request.task_roles,
    }


@task_role(*READERS)
@require_GET
def export_list(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    initial = {"validation_ratio": task.validation_ratio, "test_ratio": task.test_ratio, "max_length": 1024}
    form = ExportForm(initial=initial)
    return render(request, "exports/list.html", _list_context(request, task, form))


@task_role(Role.LEAD)
@require_POST
@rate_limited("job")
def export_create(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    form = ExportForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            export = services.export_request(
                task=task,
                export_format=data["export_format"],
                validation_ratio=data["validation_ratio"],
                test_ratio=data["test_ratio"],
                kinds=data["kinds"] or None,
                max_length=data["max_length"],
                user=request.user,
                pairs_from_edits=data.get("pairs_from_edits", False),
                min_change=data.get("min_change"),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            export.refresh_from_db()  # without Redis it already ran; with Redis down it carries a notice
            if export.notice:
                messages.warning(request, f"Export v{export.version} is queued. {export.notice}")
            elif export.state == JobState.QUEUED:
                messages.success(request, f"Export v{export.version} is queued; this page shows its progress.")
            else:
                messages.info(request, f"Export v{export.version}: {export.get_state_display().lower()}.")
            return redirect("exports:list", task.slug)
    return render(request, "exports/list.html", _list_context(request, task, form))


@task_role(Role.LEAD)
@require_POST
@rate_limited("job")
def tokenizer_upload(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """Set the task's tokenizer for the trainer preflight: both files, checked; a bad file changes nothing."""
    form = TokenizerForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            row = preflight.tokenizer_set(
                task=task,
                tokenizer_file=form.cleaned_data["tokenizer"],
                config_file=form.cleaned_data["config"],
                user=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Tokenizer of {row.name} set: the next exports count exact tokens with it.")
            return redirect("exports:list", task.slug)
    initial = {"validation_ratio": task.validation_ratio, "test_ratio": task.test_ratio, "max_length": 1024}
    context = _list_context(request, task, ExportForm(initial=initial), tokenizer_form=form)
    return render(request, "exports/list.html", context)


@task_role(Role.LEAD)
@require_POST
def tokenizer_remove(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    if preflight.tokenizer_remove(task=task, user=request.user):
        messages.success(request, "Tokenizer removed: exports count no exact tokens until one is set again.")
    return redirect("exports:list", task.slug)


@task_role(*READERS)
@require_GET
def export_status(request: HtmxHttpRequest, *, task: Task, version: int) -> HttpResponse:
    """The export's fragment: polled while it is live; the finished fragment carries no trigger, so polling stops."""
    export = _get_export(task, version)
    context = {"task": task, "export": export, "is_lead": Role.LEAD in request.task_roles}
    return render(request, "exports/_export.html", context)


@task_role(*READERS)
@require_GET
def export_detail(request: HtmxHttpRequest, *, task: Task, version: int) -> HttpResponse:
    export = _get_export(task, version)
    filters = ChangeFilterForm(request.GET)
    change = filters.cleaned_data.get("change") if filters.is_valid() else ""
    rows = export.change_rows.all()
    if change:
        rows = rows.filter(change=change)
    page = Paginator(rows, CHANGES_PER_PAGE).get_page(request.GET.get("page"))
    uuids = [row.example_uuid for row in page]
    pairs = export.format in PAIR_FORMATS  # the rows name preference pairs, not examples
    if pairs:
        found = PreferencePair.objects.filter(task=task, uuid__in=uuids).only(
            "uuid", "external_id", "instruction", "reviewed"
        )
    else:
        found = Example.objects.filter(task=task, uuid__in=uuids).only("uuid", "external_id", "instruction", "status")
    examples = {item.uuid: item for item in found}
    context = {
        "task": task,
        "export": export,
        "is_lead": Role.LEAD in request.task_roles,
        "page": page,
        "change": change,
        "change_rows": [(row, examples.get(row.example_uuid)) for row in page],
        "pairs": pairs,
        "change_choices": ExportChange.Change.choices,
    }
    return render(request, "exports/detail.html", context)


@task_role(Role.LEAD)
@require_POST
def export_cancel(request: HtmxHttpRequest, *, task: Task, version: int) -> HttpResponse:
    export = _get_export(task, version)
    try:
        services.export_cancel(export=export, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Export v{export.version} cancelled.")
    return redirect("exports:list", task.slug)


@task_role(Role.LEAD)
@require_POST
def export_delete(request: HtmxHttpRequest, *, task: Task, version: int) -> HttpResponse:
    """Delete a succeeded version's files; the form's `confirm` must name the version (v3): a deliberate step."""
    export = _get_export(task, version)
    if request.POST.get("confirm") != f"v{export.version}":
        messages.error(request, f"Export v{export.version} was not deleted: confirm by pressing “Delete v{version}”.")
        return redirect("exports:list", task.slug)
    try:
        retention.export_delete(export=export, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Export v{export.version} deleted: its files are gone; its number is not reused.")
    return redirect("exports:list", task.slug)


def _file_response(export: Export, name: str) -> FileResponse:
    """Stream one of the export's files; Http404 for any other name, an export that did not succeed, or one
    that was deleted."""
    if export.is_deleted:
        raise Http404(f"Export v{export.version} was deleted; its files are gone.")
    # test.jsonl and dataset_info.json exist only in some versions: a version's own files are those it recorded.
    if name not in FILE_NAMES or export.state != JobState.SUCCEEDED or name not in (export.files or {}):
        raise Http404("No such file in this export.")
    path = services.export_file_path(export, name)
    content_type = CONTENT_TYPES[path.suffix]
    if filestore.object_storage():
        response = _stored_file_response(export, name, content_type)
    else:
        try:
            handle = open(path, "rb")  # noqa: SIM115 (FileResponse closes it)
        except FileNotFoundError:
            raise Http404("The file of this export is missing on the server.") from None
        response = FileResponse(handle, as_attachment=True, filename=name, content_type=content_type)
    if name in export.files:  # the files never change: their checksum is a strong validator
        response.headers["ETag"] = f'"{export.files[name]["sha256"]}"'
    return response


def _stored_file_response(export: Export, name: str, content_type: str) -> HttpResponse:
    """A file in the object store: a redirect to a short-lived presigned URL (STORAGE_PRESIGNED_DOWNLOADS), else
    streamed through this node a piece at a time. A store that is down answers 503 saying so."""
    where = export_key(export, name)
    try:
        if settings.STORAGE_PRESIGNED_DOWNLOADS:
            url = filestore.presigned_url("exports", where, filename=name, content_type=content_type)
            return HttpResponseRedirect(url)
        found = filestore.open_stream("exports", where)
    except filestore.StoreUnavailable as exc:
        return HttpResponse(str(exc) + "\n", status=503, content_type="text/plain; charset=utf-8")
    if found is None:
        raise Http404("The file of this export is missing in the object store.")
    body, size = found
    response = StreamingHttpResponse(_pieces(body), content_type=content_type)
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _pieces(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(filestore.STREAM_CHUNK)
    finally:
        body.close()


@task_role(*READERS)
@require_safe
def export_download(request: HtmxHttpRequest, *, task: Task, version: int, name: str) -> FileResponse:
    return _file_response(_get_export(task, version), name)


# --- pipelines: bearer tokens -------------------------------------------------------------------------------------


def _api_text(status: int, message: str, **headers) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8", headers=headers)


def _api_export(
    request, *, slug: str, version: int | None, name: str, export_format: str | None = None
) -> HttpResponse:
    """A file of a version (None: the latest succeeded, of `export_format` when given) for a bearer token's user who
    leads or reviews the task."""
    user = services.token_user(authorization=request.headers.get("Authorization", ""))
    if user is None:
        return _api_text(
            401, "A valid API token is required: Authorization: Bearer <token>.", **{"WWW-Authenticate": "Bearer"}
        )
    try:
        task, _ = task_for(user, slug, *READERS)
    except Http404:
        return _api_text(404, "No such task.")
    except PermissionDenied:
        return _api_text(403, "The token's user is neither lead nor reviewer of this task.")
    if version is None:
        latest = Export.objects.available().filter(task=task)
        names = [value for value, _ in Export._meta.get_field("format").choices]
        if export_format is not None and export_format not in names:
            known = ", ".join(names)
            return _api_text(400, f"Unknown format {export_format[:40]!r} in ?format=; use one of {known}.")
        if export_format is not None:
            latest = latest.filter(format=export_format)
        export = latest.order_by("-version").first()
    else:
        export = Export.objects.filter(task=task, version=version, state=JobState.SUCCEEDED).first()
    if export is None:
        return _api_text(404, "No such export version, or it has not succeeded.")
    try:
        return _file_response(export, name)
    except Http404 as exc:
        return _api_text(404, str(exc))


@require_safe
def api_download(request, slug: str, version: int, name: str) -> HttpResponse:
    return _api_export(request, slug=slug, version=version, name=name)


@require_safe
def api_download_latest(request, slug: str, name: str) -> HttpResponse:
    """?format=F: the newest succeeded version of that format (a pipeline that trains on one format only)."""
    return _api_export(request, slug=slug, version=None, name=name, export_format=request.GET.get("format"))


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
@rate_limited("job")
def tokens(request: HtmxHttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_token = services.token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            form = TokenForm()
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": ApiToken.objects.filter(user=request.user),
        "tasks": services.token_tasks(user=request.user),
    }
    return render(request, "exports/tokens.html", context)


@login_required
@require_POST
def token_revoke(request: HtmxHttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)  # another user's token: 404
    services.token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("exports:tokens")
