"""Checking a whole file without importing it: every problem named (line or row, field), duplicate ids
included, and progress reports."""

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from ..models import Example, Task
from ..tools import ToolSet
from . import limits
from .common import IMPORT_STATUSES, ImportFailed, _forget_queries, _shown, human_size, max_import_rows
from .mapping import Mapping
from .reading import _Fatal, _Reader, _reader
from .records import Mapper, Record, _records

# --- problems and duplicate ids ------------------------------------------------------------------------------


UNMAPPED_ADVICE = "map them, or choose to drop them or to keep them on each example as metadata"


class _Problems:
    """Up to MAX_ERRORS problems in file order, and a count of the rest."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.kept: list[tuple[int, str]] = []
        self.count = 0

    def add(self, order: int, where: str, field_name: str | None, message: str) -> None:
        self.count += 1
        # A field's name is a key of the file: user text, quoted safely.
        text = f'{where}, field "{_shown(field_name, 100)}": {message}' if field_name else f"{where}: {message}"
        self.kept.append((order, text))
        if len(self.kept) > limits.MAX_ERRORS:  # keep the first ones in file order (duplicates are found a batch late)
            self.kept.sort(key=lambda item: item[0])
            self.kept.pop()

    def add_record(self, order: int, loc: Any, problems: list[tuple[str | None, str]]) -> None:
        where = self.reader.describe(loc)
        for field_name, message in problems:
            self.add(order, where, field_name, message)

    def raise_if_any(self, unmapped: list[str] | None = None) -> None:
        if self.count:
            self.kept.sort(key=lambda item: item[0])
            raise ImportFailed([text for _, text in self.kept], self.count - len(self.kept), unmapped)


class _IdChecker:
    """External ids seen so far, kept on disk in a private temporary SQLite database so memory stays bounded.

    Ids are checked in batches: against the earlier records of the file (SQLite), and against the task's existing
    examples (one query per batch on the unique index task + external_id).
    """

    def __init__(self, task: Task, problems: _Problems) -> None:
        self.task = task
        self.problems = problems
        self.pending: list[tuple[str, int, str, str]] = []
        self.db: sqlite3.Connection | None = None

    def add(self, external_id: str, order: int, where: str, key: str) -> None:
        self.pending.append((external_id, order, where, key))
        if len(self.pending) >= limits.BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        if self.db is None:
            self.db = sqlite3.connect("")  # "": a temporary on-disk database, deleted when closed
            self.db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY, at TEXT NOT NULL, ord INTEGER) WITHOUT ROWID")
        before = self.db.total_changes
        self.db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", [(i, w, o) for i, o, w, _ in self.pending])
        if self.db.total_changes - before < len(self.pending):  # a repeat inside the file: find which
            for external_id, order, where, key in self.pending:
                first_at, first_order = self.db.execute(
                    "SELECT at, ord FROM seen WHERE id = ?", (external_id,)
                ).fetchone()
                if first_order != order:
                    self.problems.add(order, where, key, f'"{_shown(external_id)}" repeats the id of {first_at}')
        ids = [external_id for external_id, _, _, _ in self.pending]
        existing = set()
        for start in range(0, len(ids), 1000):
            existing.update(
                self.task.examples.filter(external_id__in=ids[start : start + 1000]).values_list(
                    "external_id", flat=True
                )
            )
        for external_id, order, where, key in self.pending:
            if external_id in existing:
                self.problems.add(
                    order, where, key, f'"{_shown(external_id)}" is already the id of an example of this task'
                )
        self.pending.clear()
        _forget_queries()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


# --- progress ------------------------------------------------------------------------------------------------


@dataclass
class Progress:
    phase: str  # "insert" (the import), or "check" (after a problem: reading the whole file to name every problem)
    records: int
    position: int  # bytes of the file read so far
    size: int
    done: bool = False


class Reporter:
    """Receives progress; `finish` runs inside the import's transaction, just before it commits. No-op by default."""

    def progress(self, progress: Progress) -> None:
        """Report progress; raise ImportCancelled to stop (and roll back)."""

    def finish(self, counts: dict) -> None:
        """Called in the transaction that inserts the examples: raise to roll it all back."""

    def close(self) -> None:
        pass


def _check_file(path: Path) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImportFailed(["The file to import is gone (deleted before the import ran); upload it again."]) from None
    if size > settings.MAX_IMPORT_BYTES:
        limit = human_size(settings.MAX_IMPORT_BYTES)
        raise ImportFailed(
            [f"The file is {human_size(size)}, over the import limit of {limit}. Split it, or raise MAX_IMPORT_BYTES."]
        )
    return size


def _check_status(status: str) -> None:
    if status not in IMPORT_STATUSES:
        raise ValidationError(f"Cannot import as {status!r}; use {', '.join(IMPORT_STATUSES)}.")


class _Tally:
    """The counts of the records read so far, as `import_check` returns them."""

    def __init__(self, status: str) -> None:
        self.status = str(status)
        self.records = self.with_completion = 0
        self.kinds: Counter[str] = Counter()

    def add(self, record: Record) -> None:
        self.records += 1
        self.kinds[record.kind] += 1
        if record.completion:
            self.with_completion += 1

    def counts(self, mapper: Mapper) -> dict:
        return {
            "records": self.records,
            "with_completion": self.with_completion,
            "status": self.status,
            "kinds": dict(self.kinds),
            "ignored": sorted(_shown(key, 100) for key in mapper.ignored),  # stored on the job row: no NUL
            "kept": sorted(_shown(key, 100) for key in mapper.kept),
        }


def import_check(
    *,
    task: Task,
    path: Path,
    file_format: str,
    mapping: Mapping | dict[str, str] | None = None,
    status: str = Example.Status.NEW,
    reporter: Reporter | None = None,
) -> dict:
    """Read and check every record, streaming, without importing: return the counts, or raise ImportFailed naming
    every problem (line or row, field), up to MAX_ERRORS and a count of the rest."""
    _check_status(status)
    size = _check_file(path)
    from preferences.importing import is_preference_file, pairs_import  # late: that app builds on this package

    if is_preference_file(path, file_format):
        return pairs_import(task=task, path=path, file_format=file_format, mapping=mapping, status=status,
                            reporter=reporter, check_only=True)  # fmt: skip
    reporter = reporter or Reporter()
    reader = _reader(path, file_format)
    mapper = Mapper(mapping, tools=ToolSet.of(task.current_template))
    problems = _Problems(reader)
    ids = _IdChecker(task, problems)
    needs_completion = status != Example.Status.NEW
    max_rows = max_import_rows()
    tally = _Tally(status)
    order = 0
    last = time.monotonic()
    try:
        for order, loc, record, record_problems in _records(reader, mapper):
            if order > max_rows:
                # Reported first (order 0), whatever else was found; the rest of the file is not read.
                problems.add(
                    0,
                    reader.describe(loc),
                    None,
                    f"the file holds more than {max_rows:,} records, the import limit; "
                    "split it, or raise the MAX_IMPORT_ROWS setting",
                )
                break
            if record_problems is not None:
                problems.add_record(order, loc, record_problems)
                continue
            tally.add(record)
            if needs_completion and not record.completion:
                problems.add(order, reader.describe(loc), "completion", f"missing, and an example {status} needs one")
            if record.external_id:
                ids.add(record.external_id, order, reader.describe(loc), mapper.id_key)
            if not order & 1023 and time.monotonic() - last >= limits.PROGRESS_SECONDS:
                reporter.progress(Progress("check", tally.records, reader.position, size))
                last = time.monotonic()
        ids.flush()
    except _Fatal as exc:
        problems.add(order + 1, exc.where, None, exc.message)
    finally:
        ids.close()
    if mapper.refused:  # named once each at their first record; first, the list of them all
        listed = ", ".join(f"{_shown(label, 100)} (in {n:,} record{'s' if n != 1 else ''})" for label, n in
                           mapper.refused.items())  # fmt: skip
        problems.add(0, "Keys that no field takes", None, f"{listed}: {UNMAPPED_ADVICE}")
    problems.raise_if_any(list(mapper.refused))
    if not tally.records:
        raise ImportFailed(["The file holds no records."])
    reporter.progress(Progress("check", tally.records, size, size, done=True))
    return tally.counts(mapper)
