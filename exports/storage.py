"""Where an export's files live on disk, and how a version's folder goes away.

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
