"""The import pages of a task, for its leads: upload a file, map its columns and preview, then follow the job.

An upload waits in the lead's session (a generated token; the file under VAR_DIR/imports) until the lead commits it.
Only then does it become an ImportJob: a job row that exists only once committed cannot be started by the sweep
before the lead has said go. The forms live here, next to the only views that use them.
"""

import contextlib
from uuid import UUID

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers, StopUpload
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from . import importing
from .access import task_role
from .forms import NoColonMixin
from .importing import pending as pending_uploads
from .importing import previews
from .importing.mapping import MAX_PATH_CHARS, Mapping, PathError, parse_path
from .importing.previews import Unstored
from .models import Example, ImportJob, Role, Task

LEAD = Role.LEAD
SESSION_KEY = "pairsmith_imports"
MAX_PENDING = 5  # uploads a session keeps waiting; older ones are dropped with their files
RECENT_JOBS = 20


# --- forms -----------------------------------------------------------------------------------------------------


class StoredUpload(UploadedFile):
    """An uploaded file already written under VAR_DIR/imports; `token` names it there."""

    def __init__(self, *, token: str, name: str, size: int, content_type: str | None) -> None:
        super().__init__(file=None, name=name, content_type=content_type, size=size)
        self.token = token


class ImportUploadHandler(FileUploadHandler):
    """Stream the `file` field straight to VAR_DIR/imports under a generated name, and stop over MAX_IMPORT_BYTES
    (so a huge upload neither fills a temporary folder first nor reaches the view)."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.token: str | None = None
        self.too_big = False
        self.kept = False
        self._handle = None

    def new_file(self, field_name, file_name, *args, **kwargs) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != "file" or self.token is not None:
            return
        self.token = importing.upload_token()
        path = importing.upload_path(self.token)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "wb")  # noqa: SIM115 (closed in file_complete or discard)
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self._handle is None:
            return None
        if start + len(raw_data) > settings.MAX_IMPORT_BYTES:
            self.too_big = True
            self.discard()
            raise StopUpload(connection_reset=False)
        self._handle.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StoredUpload | None:
        if self._handle is None:
            return None
        self._handle.close()
        self._handle = None
        return StoredUpload(token=self.token, name=self.file_name, size=file_size, content_type=self.content_type)

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        """Delete the stored file unless the view kept it (it went on to the mapping step)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.token is not None and not self.kept:
            importing.upload_path(self.token).unlink(missing_ok=True)


FORMAT_CHOICES = [("", "Detect (from the name, else the first character)"), *ImportJob.FileFormat.choices]
STATUS_CHOICES = [(str(s), s.label) for s in importing.IMPORT_STATUSES]
TARGET_CHOICES = [("", "— no field —"), *importing.FIELDS.items()]


class UploadForm(NoColonMixin, forms.Form):
    """A file from the lead's computer, and nothing else: no import from URLs (a server that fetches what a user
    names can be turned against the network it sits in)."""

    file = forms.FileField(help_text="JSONL, a JSON array, or CSV with a header row; UTF-8.")
    file_format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False, label="Format")

    def __init__(self, *args, too_big: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.too_big = too_big
        if too_big:  # the upload handler stopped reading the file: it is missing for that reason, say so
            self.fields["file"].required = False

    def clean(self) -> dict:
        data = super().clean()
        if self.too_big:
            limit = importing.human_size(settings.MAX_IMPORT_BYTES)
            raise ValidationError({"file": f"The file is over the import limit of {limit} (MAX_IMPORT_BYTES)."})
        return data


UNMAPPED_CHOICES = [
    ("", "Not yet: I will map them"),
    ("drop", "Drop them: they are not imported"),
    ("keep", "Keep them on each example as metadata"),
]


class MappingForm(NoColonMixin, forms.Form):
    """One choice per key of the file (its label is the key, escaped when shown), prefilled by name; a path per field
    into nested values; and, when some keys would not be stored, the lead's choice for them. In a CSV file every row
    has every column, so two columns for one field is a mistake; JSON records may differ in shape."""

    status = forms.ChoiceField(
        choices=STATUS_CHOICES,
        initial=Example.Status.NEW,
        label="Import as",
        help_text="New prompts go to annotators; submitted and approved examples need a completion.",
    )
    unmapped = forms.ChoiceField(choices=UNMAPPED_CHOICES, required=False, label="Keys not stored")

    def __init__(self, *args, keys: list[str], file_format: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keys = keys
        self.file_format = file_format
        defaults = importing.default_mapping(keys)
        for i, key in enumerate(keys):
            self.fields[f"map_{i}"] = forms.ChoiceField(
                choices=TARGET_CHOICES, required=False, initial=defaults[key], label=key[:200]
            )
        for name, label in importing.FIELDS.items():
            self.fields[f"path_{name}"] = forms.CharField(
                required=False,
                max_length=MAX_PATH_CHARS,
                label=f"{label}, from the path",
                widget=forms.TextInput(attrs={"placeholder": "e.g. instances[0].output", "spellcheck": "false"}),
            )

    def key_fields(self) -> list:
        return [self[f"map_{i}"] for i in range(len(self.keys))]

    def clean(self) -> dict:
        data = super().clean()
        chosen: dict[str, list[str]] = {}
        for i, key in enumerate(self.keys):
            if data.get(f"map_{i}"):
                chosen.setdefault(data[f"map_{i}"], []).append(key)
        for target, keys in chosen.items():
            if len(keys) > 1 and self.file_format == ImportJob.FileFormat.CSV:
                self.add_error(None, f"Only one column can go to {importing.FIELDS[target]}: {', '.join(keys)}.")
        for name in importing.FIELDS:
            if text := data.get(f"path_{name}", "").strip():
                try:
                    parse_path(text)
                except PathError as exc:
                    self.add_error(f"path_{name}", str(exc))
                else:
                    chosen.setdefault(name, []).append(text)
        if "instruction" not in chosen and "messages" not in chosen:
            self.add_error(None, "Map a column (or a path) to the instruction, or one to chat messages.")
        return data

    def mapping(self, unstored: list[Unstored] | None = None) -> Mapping:
        """The keys and fields ("" leaves a key to no field) and the paths as chosen (even while the form is invalid,
        so that the preview shows what the lead chose; paths that cannot be read left out), else the defaults. With
        the keys `unstored` and the lead's confirmation of exactly those, they are dropped or kept."""
        if not self.is_bound:
            return Mapping(keys=importing.default_mapping(self.keys))
        chosen = {key: self.data.get(f"map_{i}", "") for i, key in enumerate(self.keys)}
        paths = {}
        for name in importing.FIELDS:
            text = str(self.data.get(f"path_{name}", "")).strip()
            with contextlib.suppress(PathError):
                if text and len(text) <= MAX_PATH_CHARS and parse_path(text):
                    paths[name] = text
        choice = self.unmapped_choice(unstored or [])
        labels = frozenset(u.key for u in unstored or [])
        return Mapping(
            keys={key: target if target in importing.FIELDS else "" for key, target in chosen.items()},
            paths=paths,
            drop=labels if choice == "drop" else frozenset(),
            keep=labels if choice == "keep" else frozenset(),
        )

    def unmapped_choice(self, unstored: list[Unstored]) -> str:
        """The lead's choice for the keys not stored ("drop", "keep"), when it was made for exactly the keys listed
        now (`unmapped_key`, sent back with the choice); else "" (a change of mapping that lists other keys asks
        again)."""
        if not self.is_bound or not unstored:
            return ""
        confirmed = set(self.data.getlist("unmapped_key")) if hasattr(self.data, "getlist") else set()
        choice = self.data.get("unmapped", "")
        return choice if choice in ("drop", "keep") and confirmed == {u.key for u in unstored} else ""


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


def _pending_make_room(request: HtmxHttpRequest) -> None:
    """Drop the session's oldest uploads (with their files) down to one less than MAX_PENDING: a new one replaces
    them. Other sessions of the user keep theirs: the user's quota (importing.pending) counts them all."""
    pending = _pending(request)
    while len(pending) >= MAX_PENDING:  # oldest first: dicts keep their order through the session's JSON
        token = next(iter(pending))
        importing.upload_path(token).unlink(missing_ok=True)
        pending_uploads.release(token)
        del pending[token]
    request.session[SESSION_KEY] = pending


def _pending_get(request: HtmxHttpRequest, task: Task, token: UUID) -> importing.Upload:
    """The session's upload `token` for `task`. Raise Http404 when it is unknown, another task's, or gone."""
    entry = _pending(request).get(str(token))
    if entry is None or entry["task"] != task.pk:
        raise Http404("No such upload: it was imported, replaced, or never made in this session.")
    upload = importing.Upload(
        token=str(token), filename=entry["filename"], size=entry["size"], file_format=entry["file_format"]
    )
    if not upload.path.is_file():
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
                _pending_make_room(request)
                try:  # per user, across sessions; refused, the file is deleted (handler.discard)
                    pending_uploads.reserve(user=request.user, token=accepted.token, size=accepted.size)
                except ValidationError as exc:
                    form.add_error("file", exc)
                else:
                    handler.kept = True
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
    unstored = previews.unstored_keys(**where, mapping=form.mapping())
    mapping = form.mapping(unstored)
    picks = previews.path_picks(**where, paths=mapping.paths | _typed_paths(form))
    return {
        "task": task,
        "upload": upload,
        "form": form,
        "mapping": mapping,
        "rows": importing.preview(**where, mapping=mapping),
        "path_rows": [(name, form[f"path_{name}"], _shown_picks(picks.get(name))) for name in importing.FIELDS],
        "unstored": unstored,
        "unmapped_choice": form.unmapped_choice(unstored),
        "large": upload.size > importing.limits.INLINE_MAX_BYTES,
        "inline_max_records": importing.limits.INLINE_MAX_RECORDS,
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
