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

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from annotate.quality import near_duplicates, prompt_signature
from annotate.quality.prompt_signature import SIZE
from annotate.quality.text import fold, prompt_key

MAX_REPORTED = 20  # pairs named in the manifest, on the row and on the page
WINDOW = 4  # held-out candidates compared per band and train row: neighbours in the sorted band, as the scan does
BLOCK = 16_384  # train signatures matched per step
VERIFY = 16_384  # candidate pairs verified at once
BATCH = 2_000  # rows handed to the background thread at once
# A train row in the scratch file: id, 64-bit prompt hash, signed (long enough to sign), signature (zeros if not).
TRAIN_ROW = np.dtype(
    [("id", "<i8"), ("key", "<u8"), ("signed", "u1"), ("signature", "u1", (near_duplicates.PERMUTATIONS,))]
)
# A held-out row in its scratch file: the same, with its side (1 validation, 2 test).
HELD_ROW = np.dtype(
    [("id", "<i8"), ("side", "i1"), ("key", "<u8"), ("signed", "u1"),
     ("signature", "u1", (near_duplicates.PERMUTATIONS,))]
)  # fmt: skip
# Held-out rows matched at once, whatever the export's size. Measured on 1,000,000 templated prompts (150,000 held
# out, nearly all near twins), the matching's CPU and its memory on top of the rest: 65,536 a chunk, 2.4 s and
# +31 MB; 32,768, 2.7 s and +21 MB; 16,384, 4.0 s and +15 MB.
HELD_CHUNK = 32_768


def _items(signatures: np.ndarray) -> np.ndarray:
    """(n, PERMUTATIONS) uint8 signatures as n items of PERMUTATIONS bytes: a gather by row numbers then copies one
    item a row instead of PERMUTATIONS one-byte items (about 3 times faster, measured on 16,384 rows)."""
    return signatures.view(f"V{near_duplicates.PERMUTATIONS}").reshape(-1)


def _rows(items: np.ndarray) -> np.ndarray:
    """Items (_items) back as (n, PERMUTATIONS) uint8 rows, without a copy."""
    return items.view(np.uint8).reshape(-1, near_duplicates.PERMUTATIONS)


_BYTE_SUM = np.uint64(0x0101010101010101)


def _equal_bytes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row of two (n, PERMUTATIONS) uint8 arrays, how many bytes are equal: the 0/1 bytes of the comparison added
    8 at a time as 64-bit words (each byte lane stays at most PERMUTATIONS / 8), then the lanes of each sum added by
    one multiplication (the top byte of x × 0x0101…01 is the sum of x's bytes): the counts of (a == b).sum(axis=1),
    faster."""
    words = (a == b).view(np.uint64).sum(axis=1, dtype=np.uint64)
    return (words * _BYTE_SUM) >> np.uint64(56)


class Contamination:
    """Feed every exported row with `add`, then `finish` for the report. `scratch` is a file in the partial folder
    (the held-out rows go to a second one beside it)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.held_scratch = scratch.with_name(f"{scratch.name}-held")
        self._batch: list[tuple] = []  # rows as given to add, until a batch goes to the background thread
        self._pending: list[Future] = []
        self._pool: ThreadPoolExecutor | None = None
        # Both sides go to scratch files (TRAIN_ROW, HELD_ROW) as they come, so that memory does not grow with the
        # export: finish matches a chunk of HELD_CHUNK held-out rows at a time against the train rows.
        self._held_count = 0
        self._train_count = 0
        self._train_file = None
        self._held_file = None
        self.compared = 0  # candidate pairs verified: at most bands × WINDOW a train row and held-out chunk

    def add(
        self, pk: int, side: int, stored_hash: str, fields: tuple[str, str, str], turns, signature: bytes | None = None
    ) -> None:
        """One exported example: its id, side (0 train, 1 validation, 2 test), stored prompt hash, prompt fields,
        prior turns (a list of {"role", "content"}, or None) and stored signature (None: not stored). Only kept
        here: the export's own thread does nothing more per row; a batch is read (or folded and signed, for rows
        without a stored signature) on the background thread."""
        self._batch.append((pk, side, stored_hash, fields, turns, signature))
        if len(self._batch) >= BATCH:
            self._submit()

    def _submit(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-contamination")
        self._pending.append(self._pool.submit(_prepare, batch))
        while len(self._pending) > 2 or (self._pending and self._pending[0].done()):
            self._collect(self._pending.pop(0).result())

    def _collect(self, prepared: tuple) -> None:
        """Write a prepared batch's held-out rows and train rows to their scratch files."""
        ids, sides, keys, signed, signature = prepared
        signatures = np.zeros((len(ids), near_duplicates.PERMUTATIONS), dtype=np.uint8)
        signatures[signed] = signature
        held = sides != 0
        if held.any():
            rows = np.zeros(int(held.sum()), dtype=HELD_ROW)
            rows["id"], rows["side"], rows["key"] = ids[held], sides[held], keys[held]
            rows["signed"], rows["signature"] = signed[held], signatures[held]
            if self._held_file is None:
                self._held_file = open(self.held_scratch, "wb")  # noqa: SIM115 (closed in finish)
            self._held_file.write(rows.tobytes())
            self._held_count += len(rows)
        train = ~held
        if train.any():
            rows = np.zeros(int(train.sum()), dtype=TRAIN_ROW)
            rows["id"], rows["key"] = ids[train], keys[train]
            rows["signed"], rows["signature"] = signed[train], signatures[train]
            if self._train_file is None:
                self._train_file = open(self.scratch, "wb")  # noqa: SIM115 (closed in finish)
            self._train_file.write(rows.tobytes())
            self._train_count += len(rows)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        for handle in (self._train_file, self._held_file):
            if handle is not None:
                handle.close()

    def finish(self) -> dict:
        """The report: counts of train examples that repeat a held-out prompt exactly or nearly, and the first
        MAX_REPORTED pairs (ids of the train and the held-out example, the held-out split, kind, similarity). Both
        sides are read back from their scratch files a chunk at a time; what stays in memory is one chunk of
        held-out rows and its band index, one block of train rows, and one byte of state a train row, however many
        rows there are and however many are found."""
        exact, near = 0, 0
        pairs: dict[int, tuple[int, int, str, float]] = {}  # train id -> (held-out id, side, kind, similarity)
        try:
            self._submit()
            for pending in self._pending:
                self._collect(pending.result())
            self._pending = []
            for handle in (self._train_file, self._held_file):
                if handle is not None:
                    handle.close()
            if self._held_count and self._train_count:
                exact, near = self._match(pairs)
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
            for train, (held_id, held_side, kind, similarity) in sorted(pairs.items())[:MAX_REPORTED]
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

    @staticmethod
    def _keep(pairs: dict, ids: np.ndarray, held: np.ndarray, kind: str, similarity: np.ndarray) -> None:
        """Add the pairs of the lowest train ids to `pairs` (`held`: HELD_ROW rows), keeping only the MAX_REPORTED
        lowest ids overall. An exact pair replaces a near one found in an earlier chunk (a train row counts as exact
        then); otherwise the first pair found stays."""
        first = np.argsort(ids, kind="stable")[:MAX_REPORTED]
        for i in first.tolist():
            entry = (int(held["id"][i]), int(held["side"][i]), kind, float(similarity[i]))
            if kind == "exact":
                pairs[int(ids[i])] = entry
            else:
                pairs.setdefault(int(ids[i]), entry)
        for train in sorted(pairs)[MAX_REPORTED:]:
            del pairs[train]

    def _match(self, pairs: dict) -> tuple[int, int]:
        """(exact, near): train prompts whose hash a held-out prompt has, and, of the others, those with a verified
        near duplicate held out; held-out rows a chunk at a time (HELD_CHUNK), each chunk against every block of train
        rows. State per train row: 2 exact, 1 near, 0 neither yet (a train row found near in one chunk and exact in a
        later one counts as exact, as it would in one pass; a near match ends its near search). Up to HELD_CHUNK
        held-out rows this is the one-pass check exactly; beyond, each chunk offers its own WINDOW neighbours per band,
        so in a crowded band the near count can differ slightly from one pass (on the prompts above: 835,262 near
        twins of 850,000 train rows with 32,768 a chunk, 830,875 with 65,536); exact counts are the same."""
        status = np.zeros(self._train_count, dtype=np.uint8)
        with open(self.held_scratch, "rb") as held_file:
            while chunk := held_file.read(HELD_CHUNK * HELD_ROW.itemsize):
                self._match_chunk(np.frombuffer(chunk, dtype=HELD_ROW), status, pairs)
        exact = int(np.count_nonzero(status & 2))
        return exact, int(np.count_nonzero(status)) - exact

    def _match_chunk(self, held: np.ndarray, status: np.ndarray, pairs: dict) -> None:
        order = np.argsort(held["key"], kind="stable")
        held_sorted = held["key"][order]
        signed_rows = np.flatnonzero(held["signed"])  # the chunk's rows long enough to sign
        held_signature = _items(np.ascontiguousarray(held["signature"][signed_rows]))
        bands = _rows(held_signature).view(np.uint32)
        index = []
        for band in range(bands.shape[1] if len(signed_rows) else 0):
            band_order = np.argsort(bands[:, band], kind="stable")
            # int32 row numbers: 8 bytes a held-out row and band instead of 12 (a chunk stays below 2**31 rows)
            index.append((bands[band_order, band], band_order.astype(np.int32)))
        last = len(held_sorted) - 1
        start = 0
        with open(self.scratch, "rb") as scratch:
            while block := scratch.read(BLOCK * TRAIN_ROW.itemsize):
                rows = np.frombuffer(block, dtype=TRAIN_ROW)
                state = status[start : start + len(rows)]  # a view: updates land in status
                start += len(rows)
                at = np.searchsorted(held_sorted, rows["key"])
                same = (at <= last) & (held_sorted[np.minimum(at, last)] == rows["key"])
                found = np.flatnonzero(same & (state & 2 == 0))
                state[found] |= 2
                self._keep(pairs, rows["id"][found], held[order[at[found]]], "exact", np.ones(len(found)))
                if index:  # exact ones are reported as exact only; a near match ends a row's search
                    hits, best_held, best_similarity = self._near_block(rows, state == 0, index, held_signature)
                    state[hits] |= 1
                    matched = held[signed_rows[best_held[hits]]]
                    self._keep(pairs, rows["id"][hits], matched, "near", best_similarity[hits])

    def _near_block(self, rows: np.ndarray, open_rows: np.ndarray, index: list, held_signature: np.ndarray):
        """(rows with a verified near duplicate, the best held-out signature row per row, its similarity) for one
        block of train rows; a match ends a row's search."""
        signature = np.ascontiguousarray(rows["signature"])
        keys, items = signature.view(np.uint32), _items(signature)
        open_rows = open_rows & rows["signed"].astype(bool)
        chance = 2.0**-near_duplicates.SIGNATURE_BITS
        width = near_duplicates.PERMUTATIONS
        best_held = np.full(len(rows), -1, dtype=np.int64)
        best_similarity = np.zeros(len(rows), dtype=np.float64)
        for band, (sorted_keys, order) in enumerate(index):
            todo = np.flatnonzero(open_rows)
            if not len(todo):
                break
            low = np.searchsorted(sorted_keys, keys[todo, band], side="left")
            high = np.searchsorted(sorted_keys, keys[todo, band], side="right")
            for offset in range(WINDOW):
                hit = low + offset < high
                if not hit.any():
                    break
                a, b = todo[hit], order[low[hit] + offset]
                self.compared += len(a)
                for s in range(0, len(a), VERIFY):  # bounded temporaries: VERIFY pairs × 64 bytes at a time
                    a_part, b_part = a[s : s + VERIFY], b[s : s + VERIFY]
                    agree = _equal_bytes(_rows(items[a_part]), _rows(held_signature[b_part])) / width
                    similarity = np.maximum(0, (agree - chance) / (1 - chance))
                    ok = similarity >= near_duplicates.NEAR_DUP_THRESHOLD
                    a_ok, b_ok, s_ok = a_part[ok], b_part[ok], similarity[ok]
                    better = s_ok > best_similarity[a_ok]
                    best_held[a_ok[better]] = b_ok[better]
                    best_similarity[a_ok[better]] = s_ok[better]
                    open_rows[a_ok] = False
        return np.flatnonzero(best_held >= 0), best_held, best_similarity


def _prepare(batch: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """On the background thread, for a batch of rows as given to Contamination.add: (ids, sides, 64-bit prompt
    hashes, which rows are signed (at least NEAR_DUP_MIN_WORDS folded words), their signatures).

    A row's stored signature (Example.prompt_signature: 64 bytes, or empty when the prompt is too short to sign) is
    read as it is; a row without one (stored before the column existed, or a preference pair) is signed here, as the
    example's save would have (annotate.quality.prompt_signature)."""
    n = len(batch)
    ids = np.fromiter((row[0] for row in batch), dtype=np.int64, count=n)
    sides = np.fromiter((row[1] for row in batch), dtype=np.int8, count=n)
    hashes = [row[2] or "" for row in batch]
    missing = [i for i, stored in enumerate(hashes) if len(stored) < 16]
    for i in missing:  # examples saved before prompt hashes were stored: the same hash, from the folded texts
        fields, turns = batch[i][3], batch[i][4]
        hashes[i] = prompt_key([fold(text or "") for text in fields], turns or ())
    keys = np.frombuffer(bytes.fromhex("".join(stored[:16] for stored in hashes)), dtype=">u8").astype(np.uint64)
    known = [row[5] for row in batch]
    if all(found.__class__ is bytes and len(found) == SIZE for found in known):  # the common case: all stored
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
        computed, signature = prompt_signature.signatures([(batch[row][3], batch[row][4]) for row in todo])
        signed[rows[computed]] = True
        full[rows[computed]] = signature
    return ids, sides, keys, signed, full[signed]


def contamination_summary(report: dict) -> str:
    """One line for errors and logs: "3 exact and 2 near duplicate(s) of held-out prompts in train"."""
    return f"{report['exact']} exact and {report['near']} near duplicate(s) of held-out prompts in train"
