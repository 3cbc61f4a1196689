"""The import pages of a task, for its leads: upload a file, map its columns and preview, then follow the job.

An upload waits in the lead's session (a generated token; the file under VAR_DIR/imports) until the lead commits it.
Only then does it become an ImportJob: a job row that exists only once committed cannot be started by the sweep
before the lead has said go. The forms are in forms_import.
"""

from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from pairsmith import filestore
from pairsmith.ratelimit import rate_limited

from . import importing
from .access import task_role
from .forms_import import ImportUploadHandler, MappingForm, StoredUpload, UploadForm
from .importing import pending as pending_uploads
from .importing import previews
from .importing.mapping import MAX_PATH_CHARS
from .models import ImportJob, Role, Task
from .tools import ToolSet

LEAD = Role.LEAD
SESSION_KEY = "pairsmith_imports"
MAX_PENDING = 5  # uploads a session keeps waiting; older ones are dropped with their files
RECENT_JOBS = 20


# --- pending uploads (in the lead's session) ----------------------------------------------------------------


def _pending(request: HtmxHttpRequest) -> dict:
    return request.session.get(SESSION_KEY, {})


def _pending_add(request: HtmxHttpRequest, task: Task, upload: importing.Upload) -> None:
    pending = _pending(request)
    pending[upload.token] = {
        "task": task.pk,
        "filename": upload.filename,
        "size": upload.size,
        "file_format": upload.file_format,
    }
    request.session[SESSION_KEY] = pending


def _pending_replaced(request: HtmxHttpRequest) -> list[str]:
    """The session's oldest uploads that a new one replaces (it keeps MAX_PENDING). Other sessions of the user keep
    theirs: the user's quota (importing.pending) counts them all."""
    pending = list(_pending(request))  # oldest first: dicts keep their order through the session's JSON
    return pending[: max(0, len(pending) - MAX_PENDING + 1)]


def _pending_get(request: HtmxHttpRequest, task: Task, token: UUID) -> importing.Upload:
    """The session's upload `token` for `task`. Raise Http404 when it is unknown, another task's, or gone."""
    entry = _pending(request).get(str(token))
    if entry is None or entry["task"] != task.pk:
        raise Http404("No such upload: it was imported, replaced, or never made in this session.")
    upload = importing.Upload(
        token=str(token), filename=entry["filename"], size=entry["size"], file_format=entry["file_format"]
    )
    try:
        found = upload.path.is_file()  # with object storage, fetched from the store into this node's cache
    except filestore.StoreUnavailable as exc:
        raise Http404(f"The uploaded file cannot be read now. {exc}") from exc
    if not found:
        raise Http404("The uploaded file is gone; upload it again.")
    return upload


def _pending_drop(request: HtmxHttpRequest, token: str) -> None:
    pending = _pending(request)
    pending.pop(token, None)
    request.session[SESSION_KEY] = pending


def _get_import_for_lead(task: Task, pk: int) -> ImportJob:
    """The import job `pk` of `task` (the task already checked for the lead role). Raise Http404 otherwise."""
    return get_object_or_404(ImportJob.objects.select_related("task", "created_by"), task=task, pk=pk)


# --- views ---------------------------------------------------------------------------------------------------


@csrf_exempt  # checked by csrf_protect in _upload, once the upload handler is in place
@task_role(LEAD)
@require_http_methods(["GET", "POST"])
@rate_limited("job")  # before the body is read: a refused upload is not stored
def upload(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    if request.method != "POST":
        return _upload(request, task=task, handler=None)
    # Before anything reads the body: the file streams straight to its place, and stops at the size limit.
    handler = ImportUploadHandler(request)
    request.upload_handlers = [handler]
    try:
        return _upload(request, task=task, handler=handler)
    finally:
        handler.discard()  # unless kept: a failed upload (or a failed CSRF check) leaves no file behind


@csrf_protect
def _upload(request: HtmxHttpRequest, *, task: Task, handler: ImportUploadHandler | None) -> HttpResponse:
    if handler is None:
        form = UploadForm()
    else:
        form = UploadForm(request.POST, request.FILES, too_big=handler.too_big)
        if form.is_valid() and isinstance(form.cleaned_data["file"], StoredUpload):
            stored = form.cleaned_data["file"]
            try:
                accepted = importing.upload_accept(
                    token=stored.token, filename=stored.name, file_format=form.cleaned_data["file_format"]
                )
            except ValidationError as exc:
                form.add_error("file", exc)
            else:
                importing.uploads_prune()
                pending_uploads.prune()
                replaced = _pending_replaced(request)
                try:  # per user, across sessions; refused, the file is deleted (handler.discard)
                    pending_uploads.reserve(
                        user=request.user, token=accepted.token, size=accepted.size, replacing=replaced
                    )
                    importing.upload_share(accepted.token)  # with object storage: every node can read it
                except ValidationError as exc:
                    pending_uploads.release(accepted.token)
                    form.add_error("file", exc)
                else:
                    handler.kept = True
                    for token in replaced:
                        importing.upload_discard(token)
                        pending_uploads.release(token)
                        _pending_drop(request, token)
                    _pending_add(request, task, accepted)
                    return redirect("imports:mapping", task.slug, accepted.token)
    jobs = task.imports.select_related("created_by").order_by("-created_at")[:RECENT_JOBS]
    limits = {
        "size": importing.human_size(settings.MAX_IMPORT_BYTES),
        "records": importing.max_import_rows(),
        "field_chars": importing.MAX_FIELD_CHARS,
    }
    return render(request, "annotate/import.html", {"task": task, "form": form, "jobs": jobs, "limits": limits})


def _mapping_context(task: Task, upload: importing.Upload, form: MappingForm) -> dict:
    """The preview of the records, what each path picks, and the keys not stored, for the mapping as chosen."""
    where = {"path": upload.path, "file_format": upload.file_format}
    tools = ToolSet.of(task.current_template)
    unstored = previews.unstored_keys(**where, mapping=form.mapping(), tools=tools)
    from preferences.importing import KNOWN_KEYS, is_preference_file  # late: that app builds on annotate

    pairs = is_preference_file(**where)
    if pairs:  # a preference file: its keys are matched by name (preferences.importing), not through the mapping
        unstored = [u for u in unstored if str(u.key).strip().lower() not in KNOWN_KEYS]
    mapping = form.mapping(unstored)
    picks = previews.path_picks(**where, paths=mapping.paths | _typed_paths(form))
    return {
        "task": task,
        "upload": upload,
        "form": form,
        "mapping": mapping,
        "rows": importing.preview(**where, mapping=mapping, tools=tools),
        "path_rows": [(name, form[f"path_{name}"], _shown_picks(picks.get(name))) for name in importing.FIELDS],
        "unstored": unstored,
        "unmapped_choice": form.unmapped_choice(unstored),
        "large": upload.size > importing.limits.INLINE_MAX_BYTES,
        "inline_max_records": importing.limits.INLINE_MAX_RECORDS,
        "preference_file": pairs,
    }


def _shown_picks(picked: list[str] | str | None) -> dict:
    if isinstance(picked, str):
        return {"error": picked}
    return {"lines": picked or []}


def _typed_paths(form: MappingForm) -> dict[str, str]:
    """The paths as typed, even those that cannot be read (their pick says why)."""
    if not form.is_bound:
        return {}
    typed = {name: str(form.data.get(f"path_{name}", ""))[: MAX_PATH_CHARS + 1] for name in importing.FIELDS}
    return {name: text for name, text in typed.items() if text.strip()}


@task_role(LEAD)
@require_http_methods(["GET", "POST"])
@rate_limited("job")
def mapping(request: HtmxHttpRequest, token: UUID, *, task: Task) -> HttpResponse:
    upload = _pending_get(request, task, token)
    keys = importing.source_keys(path=upload.path, file_format=upload.file_format)
    form = MappingForm(request.POST or None, keys=keys, file_format=upload.file_format)
    problems: list[str] = []
    context = _mapping_context(task, upload, form)
    if request.method == "POST" and request.POST.get("action") == "import" and form.is_valid():
        if context["unstored"] and not context["unmapped_choice"]:
            form.add_error(None, NOT_CONFIRMED.format(keys=", ".join(u.key for u in context["unstored"])))
        else:
            try:
                job = importing.import_start(
                    task=task,
                    upload=upload,
                    mapping=context["mapping"],
                    status=form.cleaned_data["status"],
                    user=request.user,
                )
            except ValidationError as exc:  # ImportFailed: nothing imported, the upload stays for another try
                problems = exc.messages
            else:
                _pending_drop(request, upload.token)  # the job owns the file now
                pending_uploads.release(upload.token)
                return redirect("imports:job", task.slug, job.pk)
    return render(request, "annotate/import_mapping.html", {**context, "problems": problems})


NOT_CONFIRMED = (
    "These keys would not be stored: {keys}. Map them, or choose below to drop them or to keep them as metadata."
)


@task_role(LEAD)
@require_POST
def preview(request: HtmxHttpRequest, token: UUID, *, task: Task) -> HttpResponse:
    upload = _pending_get(request, task, token)
    keys = importing.source_keys(path=upload.path, file_format=upload.file_format)
    form = MappingForm(request.POST, keys=keys, file_format=upload.file_format)
    return render(request, "annotate/_import_preview.html", _mapping_context(task, upload, form))


@task_role(LEAD)
@require_GET
def job(request: HtmxHttpRequest, pk: int, *, task: Task) -> HttpResponse:
    context = {"task": task, "job": _get_import_for_lead(task, pk)}
    return render(request, "annotate/import_job.html", context)


@task_role(LEAD)
@require_GET
def progress(request: HtmxHttpRequest, pk: int, *, task: Task) -> HttpResponse:
    """The job's fragment, polled every 2 s while it runs; the finished fragment carries no trigger: polling stops."""
    context = {"task": task, "job": _get_import_for_lead(task, pk)}
    return render(request, "annotate/_import_job.html", context)


@task_role(LEAD)
@require_POST
def cancel(request: HtmxHttpRequest, pk: int, *, task: Task) -> HttpResponse:
    import_job = _get_import_for_lead(task, pk)
    importing.import_cancel(job=import_job)
    if request.htmx:
        import_job.refresh_from_db()
        return render(request, "annotate/_import_job.html", {"task": task, "job": import_job})
    return redirect("imports:job", task.slug, import_job.pk)
