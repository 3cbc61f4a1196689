"""Writing an export's files: a full disk named by the file, and each split's JSONL written and hashed a chunk at a
time on a thread of its own."""

import errno
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # no space left, or over the quota


class ExportDiskFull(Exception):
    """The filesystem of EXPORT_ROOT ran out of space (or quota) while `name` was being written."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"The disk is full while writing {name}: no space left on the device of EXPORT_ROOT. Nothing of this "
            "version was kept; free some space there and export again."
        )


@contextmanager
def writing(name: str) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) while writing `name` into ExportDiskFull, which names the file."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise ExportDiskFull(name) from exc
        raise


@dataclass
class SplitWriter:
    """One split's JSONL file and its manifest index (one `[id, uuid, hash]` entry per record), in id order.

    Lines gather in memory and go out a chunk at a time. Writing and hashing a chunk happen on `pool`'s thread:
    both release the GIL, so they overlap with rendering the next records. One chunk is in flight at most.
    """

    data: BinaryIO
    index: BinaryIO
    pool: ThreadPoolExecutor
    lines: list = field(default_factory=list)
    entries: list = field(default_factory=list)
    digest: object = field(default_factory=sha256)
    size: int = 0
    records: int = 0
    pending: Future | None = None

    def flush(self) -> None:
        if not self.lines:
            return
        records = len(self.lines)
        self.lines.append(b"")  # so that the join ends with a newline, without copying the chunk again
        chunk = b"\n".join(self.lines)
        index = ((",\n      " if self.records else "      ") + ",\n      ".join(self.entries)).encode()
        self.wait()
        self.pending = self.pool.submit(self._write, chunk, index)
        self.size += len(chunk)
        self.records += records
        self.lines.clear()
        self.entries.clear()

    def _write(self, chunk: bytes, index: bytes) -> None:
        with writing(Path(self.data.name).name):
            self.data.write(chunk)
            self.digest.update(chunk)
            self.index.write(index)

    def wait(self) -> None:
        """Wait for the chunk in flight; raise its error, if any (a full disk)."""
        if self.pending is not None:
            self.pending.result()
            self.pending = None


def write_small(path: Path, data: bytes) -> dict:
    with writing(path.name), open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return {"size": len(data), "sha256": sha256(data).hexdigest()}
