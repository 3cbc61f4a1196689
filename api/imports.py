"""Start an import from a file sent to the API: the same steps as the import pages, in one request.

The file streams to its place through the pages' own upload handler (stopping at MAX_IMPORT_BYTES), is checked and
counted against the user's upload quota, and becomes an import job at once: the mapping comes with the request
instead of from the mapping page. A small file is imported in this request (all or nothing: refused, nothing is
stored and the file is deleted); a large one is queued for a worker and followed by its job's URL.
"""

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from annotate import importing
from annotate.forms_import import ImportUploadHandler, StoredUpload
from annotate.importing import pending as pending_uploads
from annotate.importing.mapping import Mapping, PathError, key_list, key_list_text
from annotate.models import ImportJob, Task

FILE_FORMATS = ("", *ImportJob.FileFormat.values)
MAX_MAPPING_BYTES = 20_000


class Refused(Exception):
    """The request cannot be carried out; nothing was stored. `problems`: (field, message) pairs."""

    def __init__(self, detail: str, problems: list[tuple[str, str]] | None = None, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problems = problems or []
        self.status = status


def _mapping(text: str, allow_unmapped: str, keep_unmapped: str) -> Mapping:
    """The mapping of the request: JSON {"keys": {key: field or ""}, "paths": {field: path}} (both optional), with
    comma-separated keys the lead allows to be dropped or keeps as metadata. Raise Refused naming the field."""
    value: dict = {}
    if text.strip():
        if len(text) > MAX_MAPPING_BYTES:
            raise Refused("The mapping is too long.", [("mapping", f"over {MAX_MAPPING_BYTES:,} characters")])
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise Refused("The mapping is not JSON.", [("mapping", str(exc))]) from None
        if not isinstance(value, dict) or set(value) - {"keys", "paths"}:
            raise Refused("The mapping must be an object with `keys` and/or `paths`.", [("mapping", "unexpected")])
    keys, paths = value.get("keys") or {}, value.get("paths") or {}
    for name, part in (("keys", keys), ("paths", paths)):
        if not isinstance(part, dict) or not all(isinstance(v, str) for v in part.values()):
            raise Refused(f"mapping.{name} must map names to strings.", [(f"mapping.{name}", "not an object of text")])
    for key, target in keys.items():
        if target and target not in importing.FIELDS:
            known = ", ".join(importing.FIELDS)
            raise Refused(f"Unknown field {target!r} for key {key!r}.", [(f"mapping.keys.{key}", f"use {known}")])
    drop, keep = key_list(allow_unmapped), key_list(keep_unmapped)
    if both := drop & keep:
        raise Refused("Keys both dropped and kept.", [("keep_unmapped", ", ".join(sorted(both)))])
    mapping = Mapping(keys=dict(keys), paths=dict(paths), drop=drop, keep=keep)
    try:
        mapping.parsed_paths(importing.FIELDS)
    except PathError as exc:
        raise Refused(f"A path cannot be read: {exc}.", [("mapping.paths", str(exc))]) from None
    return mapping


def import_from_request(request: HttpRequest, *, task: Task) -> ImportJob:
    """Read the multipart body (file, file_format, status, mapping, allow_unmapped, keep_unmapped) and start the
    import as the request's user. Raise Refused (nothing stored, the file deleted) for any problem."""
    handler = ImportUploadHandler(request)
    request.upload_handlers = [handler]  # before anything reads the body
    try:
        return _start(request, task, handler)
    finally:
        handler.discard()  # unless the job took the file


def _start(request: HttpRequest, task: Task, handler: ImportUploadHandler) -> ImportJob:
    stored = request.FILES.get("file")
    if handler.too_big:
        limit = importing.human_size(settings.MAX_IMPORT_BYTES)
        raise Refused("The file is too big.", [("file", f"over the import limit of {limit} (MAX_IMPORT_BYTES)")])
    if not isinstance(stored, StoredUpload):
        raise Refused("Send the file as the multipart field `file`.", [("file", "missing")])
    form = request.POST
    file_format = form.get("file_format", "")
    status = form.get("status", "new")
    if file_format not in FILE_FORMATS:
        raise Refused("Unknown file format.", [("file_format", f"use one of {', '.join(FILE_FORMATS[1:])} or none")])
    if status not in [str(s) for s in importing.IMPORT_STATUSES]:
        allowed = ", ".join(str(s) for s in importing.IMPORT_STATUSES)
        raise Refused("Unknown status to import as.", [("status", f"use one of {allowed}")])
    mapping = _mapping(form.get("mapping", ""), form.get("allow_unmapped", ""), form.get("keep_unmapped", ""))
    try:
        upload = importing.upload_accept(token=stored.token, filename=stored.name, file_format=file_format)
    except ValidationError as exc:
        raise Refused("The file cannot be imported.", [("file", m) for m in exc.messages]) from None
    try:  # the same per-user quota as uploads on the pages
        pending_uploads.reserve(user=request.user, token=upload.token, size=upload.size)
    except ValidationError as exc:
        raise Refused("Upload quota reached.", [("file", m) for m in exc.messages], status=429) from None
    try:
        job = importing.import_start(task=task, upload=upload, mapping=mapping, status=status, user=request.user)
    except ValidationError as exc:  # ImportFailed: every problem with its line and field; nothing was imported
        problems = [("file", m) for m in exc.messages]
        if unmapped := getattr(exc, "unmapped", None):
            listed = key_list_text(unmapped)
            problems.append(("allow_unmapped", f"to import without them, send allow_unmapped={listed}"))
        raise Refused("Nothing was imported.", problems) from None
    finally:
        pending_uploads.release(upload.token)
    handler.kept = True  # the job owns the file now
    return job
