"""Comparing a version with the previous one of the same format and filters, streamed from its manifest: which
examples were added, removed, changed (another content hash) or moved between splits."""

import heapq
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from pairsmith import filestore

from .models import Export, ExportChange
from .splits import SPLITS
from .storage import export_dir, export_key

BATCH = 2_000  # change rows per insert


def base_export(export: Export) -> Export | None:
    """The latest succeeded version before this one of the same format and filters, whose manifest is still on disk.
    (Against a version in another format every record would read "changed", which says nothing.)"""
    earlier = (
        Export.objects.available()
        .filter(task=export.task, version__lt=export.version, format=export.format)
        .select_related("task")
    )
    for base in earlier.order_by("-version")[:50]:
        if (base.filters or {}) == (export.filters or {}):
            if filestore.object_storage():
                return base if filestore.exists("exports", export_key(base, "manifest.json")) else None
            return base if (export_dir(base) / "manifest.json").exists() else None
    return None


ENTRY_FILE = re.compile(rb'^\s*"(train|validation|test)\.jsonl": \[(\])?,?\s*$')


def manifest_entries(path: Path) -> Iterator[tuple[int, str, str, str]]:
    """(id, uuid, content hash, split) of every example of a manifest, in id order, streamed from the file."""

    def entries(split: str, lines: Iterator[bytes]) -> Iterator[tuple[int, str, str, str]]:
        for line in lines:
            stripped = line.strip()
            if not stripped.startswith(b"["):
                return
            pk, uuid, content, *_ = orjson.loads(stripped.rstrip(b","))  # versions before warnings had 3 columns
            yield pk, uuid, content, split

    def read(split: str) -> Iterator[tuple[int, str, str, str]]:
        with open(path, "rb") as handle:
            in_examples = False
            for line in handle:
                if line.startswith(b'  "examples": {'):
                    in_examples = True
                    continue
                match = ENTRY_FILE.match(line) if in_examples else None
                if match and match.group(1).decode() == split:
                    if match.group(2) is None:  # "[]" is an empty list on one line
                        yield from entries(split, handle)
                    return

    return heapq.merge(*(read(split) for split in SPLITS))


class Diff:
    """Compare the records being written (in id order) with the previous manifest's entries (in id order), streaming:
    a merge join on the example id, so memory stays flat however many examples there are. Each change goes to `out`
    as a JSON line `[change, id, uuid, split]`; they reach the database when the export is published."""

    def __init__(self, previous: Iterator[tuple[int, str, str, str]], out: BinaryIO) -> None:
        self.previous = previous
        self.pending = next(previous, None)
        self.out = out
        self.counts = dict.fromkeys(ExportChange.Change.values, 0) | {"unchanged": 0}

    def _write(self, change: str, pk: int, uuid: str, split: str) -> None:
        self.counts[change] += 1
        self.out.write(b'["%s", %d, "%s", "%s"]\n' % (change.encode(), pk, uuid.encode(), split.encode()))

    def feed(self, pk: int, uuid: str, content: str, split: str) -> None:
        while self.pending is not None and self.pending[0] < pk:
            self._write("removed", self.pending[0], self.pending[1], self.pending[3])
            self.pending = next(self.previous, None)
        if self.pending is not None and self.pending[0] == pk:
            _, _, old_content, old_split = self.pending
            self.pending = next(self.previous, None)
            if old_content != content:
                self._write("changed", pk, uuid, split)
            elif old_split != split:
                self._write("moved", pk, uuid, split)
            else:
                self.counts["unchanged"] += 1
        else:
            self._write("added", pk, uuid, split)

    def finish(self) -> None:
        while self.pending is not None:
            self._write("removed", self.pending[0], self.pending[1], self.pending[3])
            self.pending = next(self.previous, None)


def insert_changes(export: Export, path: Path) -> None:
    """The changes a build wrote to `path`, into the database in batches."""
    batch: list[ExportChange] = []
    with open(path, "rb") as lines:
        for line in lines:
            change, pk, uuid, split = orjson.loads(line)
            batch.append(ExportChange(export=export, change=change, example_id=pk, example_uuid=uuid, split=split))
            if len(batch) == BATCH:
                ExportChange.objects.bulk_create(batch)
                batch.clear()
    ExportChange.objects.bulk_create(batch)
