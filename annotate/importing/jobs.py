"""The browser's side: uploads waiting for the lead's mapping, the preview, and imports as jobs."""

import logging
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection

from pairsmith import filestore
from pairsmith.jobs import job_cancel, job_claim, job_fail, job_finish, job_heartbeat, job_send

from ..models import ImportJob, Task
from ..tools import ToolSet
from . import limits
from .checking import Progress, Reporter, _check_file, _check_status, _Problems, import_check
from .common import _UNSTORABLE, ImportCancelled, _shown
from .limits import PREVIEW_RECORDS, UPLOAD_MAX_AGE_SECONDS
from .loading import examples_import
from .mapping import Mapping
from .reading import _CsvReader, _Fatal, _reader, detect_format
from .records import NAME_MATCHES, Mapper, _records

logger = logging.getLogger(__name__)


class JobReporter(Reporter):
    """Progress on the ImportJob row, in bytes of the file read (total = its size). After a problem, the pass that
    names every problem counts again from 0, with a notice on the row that says so.

    The inserts run in one long transaction; a heartbeat written in it would stay invisible (no progress bar, and an
    expired lease lets the sweep start the job again). So on PostgreSQL, outside any caller's transaction, heartbeats
    go through a thread of their own, with its own connection, committed at once. Finishing the job happens in the
    import's transaction, so the examples and the "succeeded" row commit together.
    """

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        own_connection = connection.vendor == "postgresql" and not connection.in_atomic_block
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="import-heartbeat") if own_connection else None

    def _call(self, function: Callable, *args, **kwargs):
        if self._thread is None:
            return function(*args, **kwargs)
        return self._thread.submit(function, *args, **kwargs).result()

    def progress(self, progress: Progress) -> None:
        notice = LISTING_PROBLEMS if progress.phase == "check" else ""
        if not self._call(job_heartbeat, self.job, progress=progress.position, total=progress.size, notice=notice):
            raise ImportCancelled

    def finish(self, counts: dict) -> None:
        if not job_finish(self.job, counts=counts, progress=self.job.size, total=self.job.size, notice=""):
            raise ImportCancelled

    def close(self) -> None:
        if self._thread is not None:
            self._thread.submit(lambda: connection.close()).result()  # the thread's own connection
            self._thread.shutdown()


# What a running import's row says while it reads the file again to name every problem.
LISTING_PROBLEMS = "The import stopped at a problem and kept nothing. Reading the whole file to list every problem:"


_TOKEN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def upload_dir() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def upload_path(token: str) -> Path:
    """Where an upload is kept: a generated name under VAR_DIR/imports, never the name it was uploaded with."""
    if not _TOKEN.fullmatch(token):
        raise ValueError("not an upload token")
    return upload_dir() / f"{token}.upload"


def upload_token() -> str:
    return str(uuid.uuid4())


# With object storage (STORAGE_URL) an upload is kept in the store's "imports" area as <token>.upload, so that any web
# node can show its mapping page and any worker can import it; VAR_DIR/imports on each node is then a cache of the
# uploads that node has read (fetched whole, a part at a time, never into memory), pruned with the uploads.


def _stored_name(token: str) -> str:
    return upload_path(token).name


def upload_share(token: str) -> None:
    """Put the upload into the object store (multipart when large). Nothing to do with local folders. Raise
    ValidationError saying the store failed."""
    if not filestore.object_storage():
        return
    try:
        filestore.upload_file("imports", _stored_name(token), upload_path(token))
    except filestore.StoreUnavailable as exc:
        raise ValidationError(str(exc)) from exc


def upload_local(token: str) -> Path:
    """The upload as a local file to read: its own path, or (object storage) a copy fetched from the store into this
    node's cache when missing. A path that does not exist when the upload is gone."""
    path = upload_path(token)
    if filestore.object_storage() and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        filestore.download_file("imports", _stored_name(token), path)
    return path


def upload_discard(token: str) -> None:
    """Delete the upload: this node's file and, with object storage, the stored one (a store that is down keeps it
    until the prune, which deletes what is older than a day)."""
    upload_path(token).unlink(missing_ok=True)
    if filestore.object_storage():
        try:
            filestore.delete("imports", _stored_name(token))
        except filestore.StoreUnavailable:
            logger.warning("Could not delete the upload %s from the object store; the prune will.", token)


def _token_of(job_path: str) -> str | None:
    """The upload token of a job's path (VAR_DIR/imports/<token>.upload on the node that took the upload)."""
    stem = Path(job_path).stem
    return stem if _TOKEN.fullmatch(stem) else None


def _job_file(job: ImportJob) -> Path:
    """The job's file to read on this node: its path, or with object storage this node's copy from the store."""
    token = _token_of(job.path)
    return upload_local(token) if filestore.object_storage() and token else Path(job.path)


def _job_file_discard(job: ImportJob) -> None:
    Path(job.path).unlink(missing_ok=True)
    token = _token_of(job.path)
    if filestore.object_storage() and token:
        upload_discard(token)


@dataclass
class Upload:
    """A file uploaded for import, waiting for the lead's mapping and go-ahead."""

    token: str
    filename: str
    size: int
    file_format: str

    @property
    def path(self) -> Path:
        return upload_local(self.token)


def upload_accept(*, token: str, filename: str, file_format: str = "") -> Upload:
    """Check an uploaded file: its size, its format, that records can be read. Raise ValidationError (file deleted)."""
    path = upload_path(token)
    try:
        size = _check_file(path)
        if size == 0:
            raise ValidationError("The file is empty.")
        file_format = file_format or detect_format(path=path, filename=filename)
        reader = _reader(path, file_format)
        keys = source_keys(path=path, file_format=file_format)
        if not keys:
            problems = _Problems(reader)
            try:
                for order, loc, _, record_problems in _records(reader, Mapper(refuse=False)):
                    if record_problems:
                        problems.add_record(order, loc, record_problems)
                    break
            except _Fatal as exc:
                problems.add(0, exc.where, None, exc.message)
            problems.raise_if_any()
            raise ValidationError("The file holds no records.")
    except ValidationError:
        path.unlink(missing_ok=True)
        raise
    return Upload(token=token, filename=filename[:255], size=size, file_format=file_format)


def source_keys(*, path: Path, file_format: str) -> list[str]:
    """The keys a file's records use (CSV: its header; JSON: those of its first records), in order of appearance.

    Up to MAX_KEYS, each one that can be mapped: the mapping is stored on the job row (JSON), where a NUL or an
    unpaired surrogate cannot go, and a key of a megabyte has no business in a form.
    """
    reader = _reader(path, file_format)
    if isinstance(reader, _CsvReader):
        found = reader.columns()
    else:
        keys: dict[str, None] = {}
        try:
            for number, (_, raw, _) in enumerate(reader):
                if isinstance(raw, dict):
                    keys.update(dict.fromkeys(str(key) for key in raw))
                if number >= limits.SAMPLE_RECORDS or len(keys) > limits.MAX_KEYS:
                    break
        except _Fatal:
            pass
        found = list(keys)
    storable = [key for key in found if len(key) <= limits.MAX_KEY_CHARS and not _UNSTORABLE.search(key)]
    return storable[: limits.MAX_KEYS]


def default_mapping(keys: list[str]) -> dict[str, str]:
    """Each key mapped to the field of its name (or alias: prompt, output, id), else ignored (""). Two keys may name
    one field ("prompt" and "instruction"): records of a JSON file may take either shape, just not both at once."""
    return {key: NAME_MATCHES.get(key.strip().lower(), "") for key in keys}


def preview(
    *,
    path: Path,
    file_format: str,
    mapping: Mapping | dict[str, str],
    limit: int = PREVIEW_RECORDS,
    tools: ToolSet | None = None,
) -> list[dict]:
    """The first records as they will be stored (`record`), or their problems (`problems`, messages). Keys that no
    field takes are not problems here: `previews.unstored_keys` lists them. Raise ImportFailed for a bad path."""
    reader = _reader(path, file_format)
    rows = []
    try:
        for order, loc, record, problems in _records(reader, Mapper(mapping, refuse=False, tools=tools)):
            messages = [f'field "{_shown(f, 100)}": {m}' if f else m for f, m in problems or ()]
            rows.append({"where": reader.describe(loc), "record": record, "problems": messages})
            if order >= limit:
                break
    except _Fatal as exc:
        rows.append({"where": exc.where, "record": None, "problems": [exc.message]})
    return rows


def import_start(*, task: Task, upload: Upload, mapping: Mapping | dict[str, str], status: str, user) -> ImportJob:
    """Record the import as a job. A small file is imported now, in this request; a large one (over
    INLINE_MAX_BYTES or INLINE_MAX_RECORDS) is queued for a worker. Raise ImportFailed (small file: nothing was
    imported and the upload is kept for another try) or ValidationError for a bad status.
    """
    from ..tasks import import_run_task

    _check_status(status)
    small = upload.size <= limits.INLINE_MAX_BYTES
    if small:
        counts = import_check(
            task=task, path=upload.path, file_format=upload.file_format, mapping=mapping, status=status
        )
        small = counts["records"] <= limits.INLINE_MAX_RECORDS
    job = ImportJob.objects.create(
        task=task,
        filename=upload.filename[:255],
        path=str(upload.path),
        file_format=upload.file_format,
        size=upload.size,
        status_on_import=status,
        mapping=Mapping.of(mapping).as_json(),
        created_by=user,
    )
    if small:
        import_run(job_id=job.pk)
        job.refresh_from_db()
    else:
        job_send(import_run_task, job)
    return job


def import_run(*, job_id: int) -> None:
    """Run an import job (a worker's side, or inline for a small file): claim it, import, mark the row.

    Problems and cancellation are recorded on the row and the upload deleted. Transient database errors are raised
    with the upload kept: the lease expires and the sweep runs the job again (up to its attempts).
    """
    job = job_claim(ImportJob, job_id)
    if job is None:
        return  # another worker has it, or it is finished or cancelled
    reporter = JobReporter(job)
    done = True
    try:
        path = _job_file(job)  # with object storage, fetched into this worker's cache; a store that is down fails it
        examples_import(
            task=job.task,
            path=path,
            file_format=job.file_format,
            mapping=job.mapping or None,
            status=job.status_on_import,
            actor=job.created_by,
            reporter=reporter,
            filename=job.filename,
            job_id=job.pk,
        )
    except ValidationError as exc:
        # The problems quote the file (escaped by _shown); the net catches what else could hold a NUL.
        job_fail(job, _UNSTORABLE.sub("\ufffd", "\n".join(exc.messages)))
    except ImportCancelled:
        pass
    except filestore.StoreUnavailable as exc:
        job_fail(job, f"{exc} Nothing was imported.")
    except (OperationalError, InterfaceError):
        done = False
        raise
    except Exception as exc:
        logger.exception("Import job %s failed", job.pk)
        job_fail(job, f"The import stopped on an unexpected error ({type(exc).__name__}); nothing was imported.")
    finally:
        reporter.close()
        if done:
            _job_file_discard(job)


def uploads_prune(*, max_age: float = UPLOAD_MAX_AGE_SECONDS) -> int:
    """Delete uploads older than `max_age` seconds that no live import job needs. Returns how many."""
    folder = upload_dir()
    live = {
        Path(path).stem
        for path in ImportJob.objects.filter(state__in=["queued", "running"]).values_list("path", flat=True)
    }
    cutoff = time.time() - max_age
    removed = 0
    for path in folder.glob("*.upload") if folder.is_dir() else ():
        try:
            if path.stat().st_mtime < cutoff and path.stem not in live:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    if filestore.object_storage():
        removed += _stored_uploads_prune(cutoff=cutoff, live=live)
    return removed


def _stored_uploads_prune(*, cutoff: float, live: set[str]) -> int:
    """Delete the stored uploads older than `cutoff` that no live job needs (a store that is down: next time)."""
    removed = 0
    try:
        _, names = filestore.store("imports").listdir("")
        for name in names:
            stale = name.endswith(".upload") and Path(name).stem not in live
            if stale and filestore.store("imports").get_modified_time(name).timestamp() < cutoff:
                filestore.delete("imports", name)
                removed += 1
    except (filestore.StoreUnavailable, *filestore.STORE_ERRORS):
        logger.warning("Could not prune the uploads in the object store; the next upload retries.", exc_info=True)
    return removed


def import_cancel(*, job: ImportJob) -> bool:
    """Cancel a queued or running import and delete its upload; a running worker stops at its next heartbeat and
    rolls back. Returns whether it was cancelled (False: it had already finished)."""
    if not job_cancel(job):
        return False
    # A worker still reading the file keeps its open handle; one about to open it finds it gone and stops.
    _job_file_discard(job)
    return True
