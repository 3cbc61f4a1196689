"""Publishing a built export version: its files into place (a local rename, or an object store's copy from
temporary keys) and its row marked succeeded, in one transaction under the row's lock; and the cleaning of what
killed workers left behind. exports.services builds the files and calls these."""

import logging
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from pairsmith import filestore
from pairsmith.jobs import LIVE_STATES, JobState, job_finish, job_heartbeat

from .changes import insert_changes
from .models import Export
from .storage import export_dir, export_key, fsync_dir

logger = logging.getLogger(__name__)


class ExportCancelled(Exception):
    """The export was cancelled (or taken over by another worker) while it was being written."""


@dataclass
class Built:
    """What building a version's files produced: the figures its row and manifest hold."""

    counts: dict
    files: dict
    templates: list
    changes: dict
    base_version: int | None
    warnings: dict
    contamination: dict
    preflight: dict


def lock_if_ours(export: Export) -> None:
    """Lock the row, inside the publishing transaction. The lock makes a concurrent cancel wait for this step; the
    attempt number fences off a worker whose lease ran out and whose export another worker took over. Raise
    ExportCancelled when the row is no longer this attempt's."""
    still_ours = Export.objects.select_for_update().filter(
        pk=export.pk, state=JobState.RUNNING, attempts=export.attempts
    )
    if not still_ours.exists():
        raise ExportCancelled


def finished(built: Built) -> dict:
    """What the row holds once its files are published: one list for both ways of publishing (a field added to one
    and not the other lost the preflight's figures on object storage)."""
    return {
        "counts": built.counts,
        "files": built.files,
        "changes": built.changes,
        "base_version": built.base_version,
        "contamination": built.contamination,
        "preflight": built.preflight,
        "progress": built.counts["total"],
        "total": built.counts["total"],
        "error": "",
    }


def publish(export: Export, partial: Path, built: Built) -> None:
    """Store the changes, rename the partial folder into place and mark the row succeeded: one transaction, under
    the row's lock."""
    final = export_dir(export)
    with transaction.atomic():
        lock_if_ours(export)
        insert_changes(export, partial / ".changes")
        (partial / ".changes").unlink()
        fsync_dir(partial)
        if final.exists():  # published by an attempt that died before its row was marked: never seen by a reader
            stale = final.with_name(f".partial-v{export.version}-stale-{secrets.token_hex(4)}")
            final.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        partial.rename(final)
        fsync_dir(final.parent)
        marked = job_finish(export, **finished(built))
        if not marked:  # cannot happen under the lock; never leave files of an unfinished row in place
            shutil.rmtree(final, ignore_errors=True)
            raise ExportCancelled


def send(export: Export, partial: Path, temporary: str, built: Built) -> None:
    """Upload the version's files to temporary keys (multipart, a part at a time), the row's lease kept alive between
    files. Raise ExportCancelled when the export was cancelled meanwhile, StoreUnavailable when the store fails."""
    for name in built.files:
        filestore.upload_file("exports", f"{temporary}/{name}", partial / name)
        if not job_heartbeat(export, progress=built.counts["total"]):
            raise ExportCancelled


def publish_remote(export: Export, partial: Path, temporary: str, built: Built) -> None:
    """Copy the files from their temporary keys to their final ones (inside the store) and mark the row succeeded,
    in one transaction under the row's lock. A version is visible only through its row: until the row says
    succeeded no page, download or command offers it, and a worker killed before leaves only temporary keys (and
    perhaps final keys of an attempt that no row names, overwritten by the next attempt)."""
    with transaction.atomic():
        lock_if_ours(export)
        insert_changes(export, partial / ".changes")
        for name, meta in built.files.items():
            filestore.copy("exports", f"{temporary}/{name}", export_key(export, name), size=meta["size"])
        marked = job_finish(export, **finished(built))
        if not marked:
            raise ExportCancelled


def forget_remote(temporary: str) -> None:
    """Delete the temporary keys; when the store is down, the next build of the task or the sweep does it."""
    try:
        filestore.delete_prefix("exports", temporary)
    except filestore.StoreUnavailable:
        logger.warning("Could not delete %s from the object store; the next export of the task will.", temporary)


_PARTIAL = re.compile(r"\.partial-v([0-9]+)-")


def remove_partials(task_dir: Path, export: Export) -> None:
    """Remove what killed workers left: earlier attempts at this version, and the hidden folders of versions that
    ended (cancelled, or failed after their last attempt) while a dead worker's folder was still there. A folder of
    another version still in progress is that build's own and stays."""
    live = set(
        Export.objects.filter(task=export.task, state__in=LIVE_STATES)
        .exclude(pk=export.pk)
        .values_list("version", flat=True)
    )
    for stale in task_dir.glob(".partial-v*-*"):
        match = _PARTIAL.match(stale.name)
        if match and (int(match.group(1)) == export.version or int(match.group(1)) not in live):
            shutil.rmtree(stale, ignore_errors=True)
