"""The contamination check of an export: held-out prompts (validation or test) found again inside train.

A model trained on a test prompt, or on a prompt a few words away from one, is graded on what it memorised. The
check reuses the task-wide quality scan's notion of "the same prompt" and "nearly the same prompt":

- **Exact**: equal normalised prompt hashes (annotate.services.prompt_hash: case, punctuation and whitespace folded
  over instruction, context, input and prior chat turns), the hash every example stores.
- **Near**: the scan's MinHash signatures (annotate/quality/near_duplicates.py: folded word pairs per field, 64 8-bit
  minimums, 16 bands of 4) of prompts of at least NEAR_DUP_MIN_WORDS words, and an estimated similarity of at least
  NEAR_DUP_THRESHOLD; a train example that is an exact duplicate is reported as exact only.

Bounded work, whatever the task holds: the export's thread only hands each row over (a reference to its texts), and
a background thread takes them a batch of BATCH rows at a time: the stored hashes read as 64-bit integers in one
step, each distinct field text of the batch folded and signed once (a shared context or a constant instruction costs
one text a batch, not one a row), ASCII text folded with numpy, which runs without the GIL; so the check costs the
export's own thread almost nothing. Held-out rows keep their hash and signature in memory (the held-out share of the
task), train rows only their hash and id (16 bytes), and their signatures go to a scratch file read back a block at a
time. Matching is by sorting: exact by one sorted array of held-out hashes and a binary search per train hash; near
by a held-out band index (one sort per band), then per train block one binary search per band and at
most WINDOW candidates per band and row, so the work is O(n log n) and never quadratic, even when thousands of
prompts share a band; a train row's search ends at its first verified match (the report names one held-out twin per
train example), so a task of look-alike prompts costs a few comparisons a row, not bands × WINDOW. Only the first
MAX_REPORTED pairs are kept (the counts cover all).
"""

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from annotate.quality import near_duplicates
from annotate.quality.text import fold, prompt_key

MAX_REPORTED = 20  # pairs named in the manifest, on the row and on the page
WINDOW = 4  # held-out candidates compared per band and train row: neighbours in the sorted band, as the scan does
BLOCK = 16_384  # train signatures matched per step
VERIFY = 16_384  # candidate pairs verified at once
BATCH = 2_000  # rows handed to the background thread at once
FIELDS = 4  # instruction, context, input, prior turns: the scan's field numbers


class Contamination:
    """Feed every exported row with `add`, then `finish` for the report. `scratch` is a file in the partial folder."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self._batch: list[tuple] = []  # rows as given to add, until a batch goes to the background thread
        self._pending: list[Future] = []
        self._pool: ThreadPoolExecutor | None = None
        # Per batch, numpy arrays: 17 bytes a train row (id, hash, row number), 81 a held-out row (with its signature).
        self._held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # ids, sides, hashes
        self._train: list[tuple[np.ndarray, np.ndarray]] = []  # ids, hashes
        self._held_rows: list[np.ndarray] = []
        self._held_signatures: list[np.ndarray] = []
        self._train_rows: list[np.ndarray] = []
        self._counts = [0, 0]  # train rows, held-out rows so far
        self._train_file = None
        self.compared = 0  # candidate pairs verified: at most bands × WINDOW a train row, whatever the data

    def add(self, pk: int, side: int, stored_hash: str, fields: tuple[str, str, str], turns) -> None:
        """One exported example: its id, side (0 train, 1 validation, 2 test), stored prompt hash, prompt fields
        and prior turns (a list of {"role", "content"}, or None). Only kept here: the export's own thread does
        nothing more per row; a batch is folded, hashed and signed on the background thread."""
        self._batch.append((pk, side, stored_hash, fields, turns))
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
        """Number the rows of a prepared batch in their side, keep held-out signatures, spill train ones to disk."""
        ids, sides, keys, signed, signature = prepared
        held = sides != 0
        train_count, held_count = int((~held).sum()), int(held.sum())
        row = np.empty(len(ids), dtype=np.int64)
        row[~held] = np.arange(self._counts[0], self._counts[0] + train_count)
        row[held] = np.arange(self._counts[1], self._counts[1] + held_count)
        self._counts[0] += train_count
        self._counts[1] += held_count
        self._held.append((ids[held], sides[held], keys[held]))
        self._train.append((ids[~held], keys[~held]))
        signed_held = held[signed]
        self._held_rows.append(row[signed][signed_held])
        self._held_signatures.append(signature[signed_held])
        if (~signed_held).any():
            if self._train_file is None:
                self._train_file = open(self.scratch, "wb")  # noqa: SIM115 (closed in finish)
            self._train_rows.append(row[signed][~signed_held])
            self._train_file.write(np.ascontiguousarray(signature[~signed_held]).tobytes())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._train_file is not None:
            self._train_file.close()

    def finish(self) -> dict:
        """The report: counts of train examples that repeat a held-out prompt exactly or nearly, and the first
        MAX_REPORTED pairs (ids of the train and the held-out example, the held-out split, kind, similarity). Memory
        stays bounded however many are found: a flag a train row, and the pairs of the first MAX_REPORTED rows."""
        exact, near = 0, 0
        pairs: dict[int, tuple[int, str, float]] = {}  # train row -> (held-out row, kind, similarity): the first ones
        try:
            self._submit()
            for pending in self._pending:
                self._collect(pending.result())
            self._pending = []
            if self._train_file is not None:
                self._train_file.flush()
            self.held_ids, self.held_sides, self.held_keys = (
                np.concatenate([chunk[i] for chunk in self._held]) if self._held else np.zeros(0, dtype=dtype)
                for i, dtype in enumerate((np.int64, np.int8, np.uint64))
            )
            self.train_ids, self.train_keys = (
                np.concatenate([chunk[i] for chunk in self._train]) if self._train else np.zeros(0, dtype=dtype)
                for i, dtype in enumerate((np.int64, np.uint64))
            )
            self._held, self._train = [], []
            matched = np.zeros(len(self.train_ids), dtype=bool)
            if len(self.held_ids):
                exact = self._exact(matched, pairs)
                if self._train_rows:
                    near = self._near(matched, pairs)
        finally:
            self.close()
            self.scratch.unlink(missing_ok=True)
        reported = [
            {
                "train": int(self.train_ids[row]),
                "held_out": int(self.held_ids[held]),
                "split": "validation" if self.held_sides[held] == 1 else "test",
                "kind": kind,
                "similarity": round(float(similarity), 2),
            }
            for row, (held, kind, similarity) in sorted(pairs.items())[:MAX_REPORTED]
        ]
        return {
            "held_out": len(self.held_ids),
            "train": len(self.train_ids),
            "exact": exact,
            "near": near,
            "threshold": near_duplicates.NEAR_DUP_THRESHOLD,
            "min_words": near_duplicates.NEAR_DUP_MIN_WORDS,
            "pairs": reported,
        }

    @staticmethod
    def _keep(pairs: dict, rows: np.ndarray, held: np.ndarray, kind: str, similarity: np.ndarray) -> None:
        """Add the pairs of the lowest train rows to `pairs`, keeping only the MAX_REPORTED lowest rows overall."""
        first = np.argsort(rows, kind="stable")[:MAX_REPORTED]
        for i in first.tolist():
            pairs.setdefault(int(rows[i]), (int(held[i]), kind, float(similarity[i])))
        for row in sorted(pairs)[MAX_REPORTED:]:
            del pairs[row]

    def _exact(self, matched: np.ndarray, pairs: dict) -> int:
        """Flag every train prompt whose hash a held-out prompt has; return how many."""
        held = self.held_keys
        order = np.argsort(held, kind="stable")
        held_sorted = held[order]
        train = self.train_keys
        at = np.searchsorted(held_sorted, train)
        found = np.flatnonzero((at < len(held_sorted)) & (held_sorted[np.minimum(at, len(held_sorted) - 1)] == train))
        matched[found] = True
        self._keep(pairs, found, order[at[found]], "exact", np.ones(len(found)))
        return len(found)

    def _near(self, matched: np.ndarray, pairs: dict) -> int:
        """Flag every train prompt not matched exactly that has a verified near duplicate held out, by the held-out
        band index; return how many."""
        if not sum(len(rows) for rows in self._held_rows):
            return 0
        held_rows = np.concatenate(self._held_rows)
        held_signature = np.concatenate(self._held_signatures)
        self._held_signatures = []
        bands = np.ascontiguousarray(held_signature).view(np.uint32)
        index = []
        for band in range(bands.shape[1]):
            order = np.argsort(bands[:, band], kind="stable")
            index.append((bands[order, band], order))
        train_rows = np.concatenate(self._train_rows)
        chance = 2.0**-near_duplicates.SIGNATURE_BITS
        width = near_duplicates.PERMUTATIONS
        found = 0
        with open(self.scratch, "rb") as scratch:
            start = 0
            while block := scratch.read(BLOCK * width):
                signature = np.frombuffer(block, dtype=np.uint8).reshape(-1, width)
                rows = train_rows[start : start + len(signature)]
                start += len(signature)
                keys = signature.view(np.uint32)
                open_rows = ~matched[rows]  # exact ones are reported as exact; a match ends a row's search
                best_held = np.full(len(signature), -1, dtype=np.int64)
                best_similarity = np.zeros(len(signature), dtype=np.float64)
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
                            agree = (signature[a_part] == held_signature[b_part]).sum(axis=1) / width
                            similarity = np.maximum(0, (agree - chance) / (1 - chance))
                            ok = similarity >= near_duplicates.NEAR_DUP_THRESHOLD
                            a_ok, b_ok, s_ok = a_part[ok], b_part[ok], similarity[ok]
                            better = s_ok > best_similarity[a_ok]
                            best_held[a_ok[better]] = held_rows[b_ok[better]]
                            best_similarity[a_ok[better]] = s_ok[better]
                            open_rows[a_ok] = False
                hit_rows = np.flatnonzero(best_held >= 0)
                matched[rows[hit_rows]] = True
                found += len(hit_rows)
                self._keep(pairs, rows[hit_rows], best_held[hit_rows], "near", best_similarity[hit_rows])
        return found


def _prepare(batch: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """On the background thread, for a batch of rows as given to Contamination.add: (ids, sides, 64-bit prompt
    hashes, which rows are signed (at least NEAR_DUP_MIN_WORDS folded words), their signatures).

    Signatures are near_duplicates.signatures of the folded fields; each distinct field text of the batch is folded
    and signed once (a shared context, a constant instruction), with numpy for ASCII text."""
    n = len(batch)
    ids = np.fromiter((row[0] for row in batch), dtype=np.int64, count=n)
    sides = np.fromiter((row[1] for row in batch), dtype=np.int8, count=n)
    hashes = [row[2] or "" for row in batch]
    missing = [i for i, stored in enumerate(hashes) if len(stored) < 16]
    for i in missing:  # examples saved before prompt hashes were stored: the same hash, from the folded texts
        fields, turns = batch[i][3], batch[i][4]
        hashes[i] = prompt_key([fold(text or "") for text in fields], turns or ())
    keys = np.frombuffer(bytes.fromhex("".join(stored[:16] for stored in hashes)), dtype=">u8").astype(np.uint64)
    contributions = []
    segment = np.empty((n, FIELDS), dtype=np.int64)  # each row's text per field, numbered across fields
    words = np.zeros(n, dtype=np.int64)
    offset = 0
    for field in range(FIELDS):
        if field < 3:
            texts = [row[3][field] or "" for row in batch]
        else:  # prior turns: their contents folded and joined (already folded: ASCII or not, folding again keeps it)
            texts = [
                b" ".join(fold(str(turn.get("content") or "")) for turn in row[4]).decode() if row[4] else ""
                for row in batch
            ]
        distinct: dict[str, int] = {}
        numbers = [distinct.setdefault(text, len(distinct)) for text in texts]
        minimums, counted = near_duplicates.text_minimums(list(distinct))
        local = np.fromiter(numbers, dtype=np.int64, count=n)
        segment[:, field] = local + offset
        words += counted[local]
        contributions.append(near_duplicates.contribution(minimums, field))
        offset += len(distinct)
    signed = words >= near_duplicates.NEAR_DUP_MIN_WORDS
    table = np.concatenate(contributions)  # a text without words has zero minimums: it adds nothing, as if absent
    rows = segment[signed]
    combined = table[rows[:, 0]]
    for field in range(1, FIELDS):
        combined ^= table[rows[:, field]]
    return ids, sides, keys, signed, near_duplicates.combine(combined)


def contamination_summary(report: dict) -> str:
    """One line for errors and logs: "3 exact and 2 near duplicate(s) of held-out prompts in train"."""
    return f"{report['exact']} exact and {report['near']} near duplicate(s) of held-out prompts in train"
