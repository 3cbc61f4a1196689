"""Where an export's files live, on disk or in the object store, and how a version's folder goes away.

In the object store (STORAGE_URL, pairsmith/filestore.py) a version is the prefix <slug>/v<N>/ of the "exports" area,
and a build in progress writes under <slug>/.partial-v<N>-…/; a version is visible only through its row (state
succeeded, not deleted), so deleting one marks the row first and removes its objects after.

A published version is the folder EXPORT_ROOT/<slug>/v<N>. Hidden folders beside it belong to builds in progress
(`.partial-v<N>-…`, see services) and to versions being deleted (`.deleted-v<N>-…`): a folder is renamed out of
the way first, so a reader finds either the whole version or none of it, and then removed.
"""

import os
import re
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

from pairsmith import filestore
from pairsmith.jobs import LIVE_STATES

from .models import FILE_NAMES, Export

_VERSION_DIR = re.compile(r"v([0-9]+)")


def export_dir(export: Export) -> Path:
    """Where a succeeded export's files are: EXPORT_ROOT/<slug>/v<N>."""
    return Path(settings.EXPORT_ROOT) / export.task.slug / f"v{export.version}"


def export_file_path(export: Export, name: str) -> Path:
    """The path of one of the export's own four files. Raise ValueError for any other name (no path traversal)."""
    if name not in FILE_NAMES:
        raise ValueError(f"{name!r} is not a file of an export; use one of {', '.join(FILE_NAMES)}.")
    return export_dir(export) / name


def fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def version_dirs_remove(task_dir: Path, versions: Iterable[int]) -> list[int]:
    """Remove the folders v<N> of `versions` under `task_dir` (those present), and what an earlier removal that died
    half-way left (`.deleted-*`); return the versions whose folder was there. Each folder is renamed away first, in
    one step, so a download either gets the whole version or a 404, never half of it (a file already open stays
    readable until it is closed)."""
    wanted = set(versions)
    removed = []
    for folder in (task_dir / f"v{version}" for version in sorted(wanted)):
        doomed = task_dir / f".deleted-{folder.name}-{secrets.token_hex(4)}"
        try:
            folder.rename(doomed)
        except FileNotFoundError:
            continue
        removed.append(int(folder.name[1:]))
        shutil.rmtree(doomed, ignore_errors=True)
    for leftover in task_dir.glob(".deleted-v*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return removed


def version_dirs(task_dir: Path) -> list[int]:
    """The versions that have a published folder under `task_dir` (hidden folders aside)."""
    try:
        names = [entry.name for entry in os.scandir(task_dir) if entry.is_dir()]
    except FileNotFoundError:
        return []
    return sorted(int(match.group(1)) for name in names if (match := _VERSION_DIR.fullmatch(name)))


def export_key(export: Export, name: str) -> str:
    """The name of one of the export's files in the "exports" storage: <slug>/v<N>/<name>."""
    if name not in FILE_NAMES:
        raise ValueError(f"{name!r} is not a file of an export; use one of {', '.join(FILE_NAMES)}.")
    return f"{export.task.slug}/v{export.version}/{name}"


def export_location(export: Export, name: str) -> str:
    """Where a file of the export is, for people and scripts: its path, or its s3:// URI with object storage."""
    if filestore.object_storage():
        return filestore.uri("exports", export_key(export, name))
    return str(export_dir(export) / name)


def remote_versions(slug: str) -> list[int]:
    """The versions that have objects under <slug>/ in the store (temporary prefixes aside)."""
    names = filestore.folders("exports", slug)
    return sorted(int(match.group(1)) for name in names if (match := _VERSION_DIR.fullmatch(name)))


def remote_versions_remove(slug: str, versions: Iterable[int]) -> list[int]:
    """Delete the objects of `versions` under <slug>/; return the versions that had some."""
    return [version for version in sorted(set(versions)) if filestore.delete_prefix("exports", f"{slug}/v{version}")]


_PARTIAL = re.compile(r"\.partial-v([0-9]+)-")


def remote_partials_remove(export: Export) -> int:
    """Delete the temporary prefixes that killed workers left under the task's prefix (and their unfinished multipart
    uploads): earlier attempts at this version, and those of versions no longer in progress. Return how many."""
    slug = export.task.slug
    live = set(
        Export.objects.filter(task=export.task, state__in=LIVE_STATES)
        .exclude(pk=export.pk)
        .values_list("version", flat=True)
    )
    removed = 0
    # A worker killed mid-upload may leave only the parts of a multipart upload, which no listing of objects shows.
    for name in sorted(set(filestore.folders("exports", slug)) | filestore.unfinished_folders("exports", slug)):
        match = _PARTIAL.match(name)
        if match and (int(match.group(1)) == export.version or int(match.group(1)) not in live):
            filestore.delete_prefix("exports", f"{slug}/{name}")
            removed += 1
    return removed
