"""Where an export's files live on disk. A published version is the folder EXPORT_ROOT/<slug>/v<N>; hidden folders
beside it belong to builds in progress (`.partial-v<N>-…`, see services)."""

import os
from pathlib import Path

from django.conf import settings

from .models import FILE_NAMES, Export


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
