"""The contamination check of an export: held-out prompts (validation or test) found again inside train.

A model trained on a test prompt, or on a prompt a few words away from one, is graded on what it memorised. The
check reuses the task-wide quality scan's notion of "the same prompt" and "nearly the same prompt":

- **Exact**: equal normalised prompt hashes (annotate.services.prompt_hash: case, punctuation and whitespace folded
  over instruction, context, input and prior chat turns), the hash every example stores.
- **Near**: the scan's MinHash signatures (annotate/quality/near_duplicates.py: folded word pairs per field, 64 8-bit
  minimums, 16 bands of 4) of prompts of at least NEAR_DUP_MIN_WORDS words, and an estimated similarity of at least
  NEAR_DUP_THRESHOLD; a train example that is an exact duplicate is reported as exact only.

Bounded work, whatever the task holds: the export's thread only hands each row over (a reference to its texts), and a
background thread takes them a batch of BATCH rows at a time: the stored hashes read as 64-bit integers in one step, and
the stored signatures (Example.prompt_signature, written with the example) as one array; a row without one is signed
there (annotate.quality.prompt_signature: each distinct field text of the batch folded and signed once, ASCII text with
numpy, which runs without the GIL); so the check costs the export's own thread almost nothing. Both sides go to scratch
files as they come (id, hash, signature: 81 bytes a train row, 82 a held-out one with its side), and matching reads them
back a chunk of held-out rows (HELD_CHUNK) against a block of train rows at a time, with one byte of state per train
row, so memory does not grow with the export. Matching is by sorting: exact by one sorted array of a chunk's hashes and
a binary search per train hash; near by a chunk's band index (one sort per band), then per train block one binary search
per band and at most WINDOW candidates per band and row, so the work is O(n log n) and never quadratic, even when
thousands of prompts share a band; a train row's search ends at its first verified match (the report names one held-out
twin per train example), so a task of look-alike prompts costs a few comparisons a row, not bands × WINDOW. Only the
first MAX_REPORTED pairs are kept (the counts cover all).
"""

import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from operator import itemgetter
from pathlib import Path

import numpy as np
import orjson

from annotate.quality import near_duplicates, prompt_signature
from annotate.quality.prompt_signature import SIZE
from annotate.quality.text import fold, prompt_key

from . import matching
from .matching import HELD_ROW, TRAIN_ROW, Matcher

ROOT = Path(__file__).resolve().parent.parent  # where `python -m exports.matching` runs

BATCH = 2_000  # rows handed to the background thread at once
PENDING = 2  # batches handed over and not yet taken, at most (the export's thread waits beyond)


class Contamination:
    """Feed every exported row with `add_rows`, then `finish` for the report. `scratch` is a file in the partial folder
    (the held-out rows go to a second one beside it). With `process` (a large export: matching.PROCESS_MIN_ROWS) the
    matching runs in a process of its own while the rows come; otherwise `finish` matches in this one."""

    def __init__(self, scratch: Path, *, process: bool = False) -> None:
        self.scratch = scratch
        self.held_scratch = scratch.with_name(f"{scratch.name}-held")
        self.process = process
        self._batch: list[tuple] = []  # rows as given to add_rows, until a batch goes to the background thread
        self._pending: list[Future] = []
        self._pool: ThreadPoolExecutor | None = None
        # Both sides go to scratch files (matching.TRAIN_ROW, HELD_ROW) as they come, so that memory does not grow
        # with the export; the matcher reads them back. Written on the background thread only.
        self._held_count = 0
        self._train_count = 0
        self._train_file = open(scratch, "wb")  # noqa: SIM115 (closed by close)
        self._held_file = open(self.held_scratch, "wb")  # noqa: SIM115 (closed by close)
        self._matcher: subprocess.Popen | None = None
        self._errors = None  # the matching process's standard error, a temporary file
        self.compared = 0  # candidate pairs verified (matching.Matcher.compared)

    def add_rows(self, rows: list[tuple]) -> None:
        """A batch of exported rows in exports.reading.approved_rows' layout (id, uuid, template, instruction, context,
        input, completion, kind, prior turns, codes, metadata, stored prompt hash, reasoning, stored signature, side).
        Only kept here: the export's own thread does nothing per row; the batch is read (or folded and signed, for
        rows without a stored signature) and written on the background thread."""
        self._batch.extend(rows)
        if len(self._batch) >= BATCH:
            self._submit()

    def _submit(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-contamination")
        self._pending.append(self._pool.submit(self._take, batch))
        while len(self._pending) > PENDING or (self._pending and self._pending[0].done()):
            self._pending.pop(0).result()  # the background thread's error, if any, raised here

    def _take(self, batch: list[tuple]) -> None:
        """On the background thread: a batch's rows read (or signed) and written to the scratch files; the matching
        process, if any, told how many there are."""
        ids, sides, keys, signed, signature = _prepare(batch)
        signatures = np.zeros((len(ids), near_duplicates.PERMUTATIONS), dtype=np.uint8)
        signatures[signed] = signature
        held = sides != 0
        if held.any():
            rows = np.zeros(int(held.sum()), dtype=HELD_ROW)
            rows["id"], rows["side"], rows["key"] = ids[held], sides[held], keys[held]
            rows["signed"], rows["signature"] = signed[held], signatures[held]
            self._held_file.write(rows.tobytes())
            self._held_count += len(rows)
        train = ~held
        if train.any():
            rows = np.zeros(int(train.sum()), dtype=TRAIN_ROW)
            rows["id"], rows["key"] = ids[train], keys[train]
            rows["signed"], rows["signature"] = signed[train], signatures[train]
            self._train_file.write(rows.tobytes())
            self._train_count += len(rows)
        if self.process:
            self._tell(f"{self._train_count} {self._held_count}\n")

    def _tell(self, line: str) -> None:
        """Flush the scratch files, then tell the matching process (started on the first call) `line`."""
        self._train_file.flush()
        self._held_file.flush()
        if self._matcher is None:
            # Its errors go to a file, read once it has stopped: a pipe nobody reads could fill and stall it.
            self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close)
            self._matcher = subprocess.Popen(  # noqa: S603 (our own module, with this interpreter)
                [sys.executable, "-m", "exports.matching"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
                text=True,
            )
            paths = {"train": str(self.scratch.resolve()), "held": str(self.held_scratch.resolve())}
            start = {**paths, "tuning": matching.tuning()}
            self._matcher.stdin.write(orjson.dumps(start).decode() + "\n")
        try:
            self._matcher.stdin.write(line)
            self._matcher.stdin.flush()
        except BrokenPipeError:
            raise MatchingFailed(self._matcher_error()) from None

    def _matcher_error(self) -> str:
        self._matcher.wait()
        self._errors.seek(0)
        said = self._errors.read().decode(errors="replace").strip().splitlines()
        return f"the contamination check's matching stopped: {(said or [f'exit code {self._matcher.returncode}'])[-1]}"

    def close(self) -> None:
        self._stop_matcher()  # first: a batch being handed over then fails at once rather than wait on it
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self._stop_matcher()  # one the last batch may have started meanwhile
        self._train_file.close()
        self._held_file.close()

    def _stop_matcher(self) -> None:
        matcher, self._matcher = self._matcher, None
        if matcher is None:
            return
        if matcher.poll() is None:
            matcher.kill()
        matcher.wait()
        for stream in (matcher.stdin, matcher.stdout, self._errors):
            with suppress(OSError):
                stream.close()

    def finish(self) -> dict:
        """The report: counts of train examples that repeat a held-out prompt exactly or nearly, and the first
        MAX_REPORTED pairs (ids of the train and the held-out example, the held-out split, kind, similarity)."""
        try:
            self._submit()
            for pending in self._pending:
                pending.result()
            self._pending = []
            if self.process and self._train_count + self._held_count:
                self._tell("end\n")
                self._matcher.stdin.close()
                output = self._matcher.stdout.read()
                if self._matcher.wait() != 0:
                    raise MatchingFailed(self._matcher_error())
                found = orjson.loads(output)
                exact, near, pairs, self.compared = found["exact"], found["near"], found["pairs"], found["compared"]
            else:
                self._train_file.flush()
                self._held_file.flush()
                matcher = Matcher(self.scratch, self.held_scratch)
                matcher.grow(self._train_count, self._held_count)
                exact, near, pairs, self.compared = matcher.finish()
        finally:
            self.close()
            self.scratch.unlink(missing_ok=True)
            self.held_scratch.unlink(missing_ok=True)
        reported = [
            {
                "train": train,
                "held_out": held_id,
                "split": "validation" if held_side == 1 else "test",
                "kind": kind,
                "similarity": round(float(similarity), 2),
            }
            for train, held_id, held_side, kind, similarity in pairs
        ]
        return {
            "held_out": self._held_count,
            "train": self._train_count,
            "exact": exact,
            "near": near,
            "threshold": near_duplicates.NEAR_DUP_THRESHOLD,
            "min_words": near_duplicates.NEAR_DUP_MIN_WORDS,
            "pairs": reported,
        }


class MatchingFailed(Exception):
    """The matching process stopped without a report (killed, out of memory, a full disk)."""


_IDS, _SIDES, _HASHES, _SIGNATURES = itemgetter(0), itemgetter(14), itemgetter(11), itemgetter(13)


def _texts(row: tuple) -> tuple[tuple[str, str, str], list | None]:
    """A row's prompt fields and prior turns (JSON text from PostgreSQL, parsed here)."""
    turns = row[8]
    if turns.__class__ is str:
        turns = orjson.loads(turns)
    return (row[3], row[4], row[5]), turns or None


def _prepare(batch: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """On the background thread, for a batch of rows as given to Contamination.add_rows: (ids, sides, 64-bit prompt
    hashes, which rows are signed (at least NEAR_DUP_MIN_WORDS folded words), their signatures). Read column by
    column (itemgetter over the batch, no Python per row but where a hash or signature is missing).

    A row's stored signature (Example.prompt_signature: 64 bytes, or empty when the prompt is too short to sign) is
    read as it is; a row without one (stored before the column existed, or a preference pair) is signed here, as the
    example's save would have (annotate.quality.prompt_signature)."""
    n = len(batch)
    ids = np.fromiter(map(_IDS, batch), dtype=np.int64, count=n)
    sides = np.fromiter(map(_SIDES, batch), dtype=np.int8, count=n)
    hashes = list(map(_HASHES, batch))
    lengths = set(map(len, hashes)) if None not in hashes else {0}
    if len(lengths) == 1 and min(lengths) >= 16 and min(lengths) % 16 == 0:  # the common case: all stored, alike
        keys = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=">u8")[:: min(lengths) // 16]  # the first 16 digits
    else:
        for i, stored in enumerate(hashes):
            if len(stored or "") < 16:  # examples saved before prompt hashes were stored: the same hash, from the texts
                fields, turns = _texts(batch[i])
                hashes[i] = prompt_key([fold(text or "") for text in fields], turns or ())
        keys = np.frombuffer(bytes.fromhex("".join(stored[:16] for stored in hashes)), dtype=">u8")
    keys = keys.astype(np.uint64)
    known = list(map(_SIGNATURES, batch))
    if set(map(type, known)) == {bytes} and set(map(len, known)) == {SIZE}:  # the common case: all stored
        signed = np.ones(n, dtype=bool)
        return ids, sides, keys, signed, np.frombuffer(b"".join(known), dtype=np.uint8).reshape(n, SIZE)
    full = np.zeros((n, SIZE), dtype=np.uint8)
    signed = np.zeros(n, dtype=bool)
    todo = []
    for row, found in enumerate(known):
        if found is not None and found.__class__ is not bytes:
            found = bytes(found)  # a memoryview, from Django's connection
        if found is None or len(found) not in (0, SIZE):
            todo.append(row)
        elif found:
            signed[row] = True
            full[row] = np.frombuffer(found, dtype=np.uint8)
    if todo:
        rows = np.asarray(todo, dtype=np.int64)
        computed, signature = prompt_signature.signatures([_texts(batch[row]) for row in todo])
        signed[rows[computed]] = True
        full[rows[computed]] = signature
    return ids, sides, keys, signed, full[signed]


def contamination_summary(report: dict) -> str:
    """One line for errors and logs: "3 exact and 2 near duplicate(s) of held-out prompts in train"."""
    return f"{report['exact']} exact and {report['near']} near duplicate(s) of held-out prompts in train"
