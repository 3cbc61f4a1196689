"""The contamination check of an export: held-out prompts (validation or test) found again inside train.

A model trained on a test prompt, or on a prompt a few words away from one, is graded on what it memorised. The
check reuses the task-wide quality scan's notion of "the same prompt" and "nearly the same prompt":

- **Exact**: equal normalised prompt hashes (annotate.services.prompt_hash: case, punctuation and whitespace folded
  over instruction, context, input and prior chat turns), the hash every example stores.
- **Near**: the scan's MinHash signatures (annotate/quality/near_duplicates.py: folded word pairs per field, 64 8-bit
  minimums, 16 bands of 4) of prompts of at least NEAR_DUP_MIN_WORDS words, and an estimated similarity of at least
  NEAR_DUP_THRESHOLD; a train example that is an exact duplicate is reported as exact only.

Bounded work, whatever the task holds: each row is folded once and signed once (in a background thread, which numpy
runs without the GIL); held-out rows keep their hash and signature in memory (the held-out share of the task),
train rows only their hash and id, and their signatures go to a scratch file read back a block at a time. Matching
is by sorting: a held-out band index (one sort per band), then per train block one binary search per band and at
most WINDOW candidates per band and row, so the work is O(n log n) and never quadratic, even when thousands of
prompts share a band; a train row's search ends at its first verified match (the report names one held-out twin per
train example), so a task of look-alike prompts costs a few comparisons a row, not bands × WINDOW. Only the first
MAX_REPORTED pairs are kept (the counts cover all).
"""

from array import array
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from annotate.quality import near_duplicates
from annotate.quality.text import fold, prompt_key

MAX_REPORTED = 20  # pairs named in the manifest, on the row and on the page
WINDOW = 4  # held-out candidates compared per band and train row: neighbours in the sorted band, as the scan does
BLOCK = 16_384  # train signatures matched per step
VERIFY = 16_384  # candidate pairs verified at once
FIELDS = 4  # instruction, context, input, prior turns: the scan's field numbers


class Contamination:
    """Feed every exported row with `add`, then `finish` for the report. `scratch` is a file in the partial folder."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        # Typed arrays: 16 bytes a row, where lists of Python ints would take about 70.
        self.held_ids, self.held_sides, self.held_keys = array("q"), array("b"), array("Q")
        self.train_ids, self.train_keys = array("q"), array("Q")
        self._batch: list[tuple[int, bool, list[bytes]]] = []  # (row number in its side, held out?, folded fields)
        self._pending: list[tuple[Future, np.ndarray, np.ndarray]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._held_rows: list[np.ndarray] = []
        self._held_signatures: list[np.ndarray] = []
        self._train_rows: list[np.ndarray] = []
        self._train_file = None
        self.compared = 0  # candidate pairs verified: at most bands × WINDOW a train row, whatever the data

    def add(self, pk: int, side: int, stored_hash: str, fields: tuple[str, str, str], turns) -> None:
        """One exported example: its id, side (0 train, 1 validation, 2 test), stored prompt hash, prompt fields
        and prior turns (a list of {"role", "content"}, or None)."""
        folded = [fold(text or "") for text in fields]
        if turns:
            folded.append(b" ".join(fold(str(turn.get("content") or "")) for turn in turns))
        if stored_hash and len(stored_hash) >= 16:
            key = int(stored_hash[:16], 16)
        else:  # examples saved before prompt hashes were stored: the same hash, from the folded texts
            key = int(prompt_key(folded[:3], turns or ())[:16], 16)
        held = side != 0
        if held:
            row = len(self.held_ids)
            self.held_ids.append(pk)
            self.held_sides.append(side)
            self.held_keys.append(key)
        else:
            row = len(self.train_ids)
            self.train_ids.append(pk)
            self.train_keys.append(key)
        words = sum(part.count(b" ") + 1 for part in folded if part)
        if words >= near_duplicates.NEAR_DUP_MIN_WORDS:
            self._batch.append((row, held, folded))
            if len(self._batch) >= 2_000:
                self._sign()

    def _sign(self) -> None:
        """Sign the gathered rows on the background thread; collect what earlier batches finished."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        segments, segment_row, segment_field = [], [], []
        for local, (_, _, folded) in enumerate(batch):
            for field, part in enumerate(folded):
                if part:
                    segments.append(part)
                    segment_row.append(local)
                    segment_field.append(field)
        rows = np.fromiter((row for row, _, _ in batch), dtype=np.int64, count=len(batch))
        held = np.fromiter((h for _, h, _ in batch), dtype=bool, count=len(batch))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-minhash")
        future = self._pool.submit(
            near_duplicates.signatures, segments, np.asarray(segment_row), np.asarray(segment_field), len(batch)
        )
        self._pending.append((future, rows, held))
        while len(self._pending) > 2 or (self._pending and self._pending[0][0].done()):
            self._collect(*self._pending.pop(0))

    def _collect(self, future: Future, rows: np.ndarray, held: np.ndarray) -> None:
        signature = future.result()
        self._held_rows.append(rows[held])
        self._held_signatures.append(signature[held])
        if (~held).any():
            if self._train_file is None:
                self._train_file = open(self.scratch, "wb")  # noqa: SIM115 (closed in finish)
            self._train_rows.append(rows[~held])
            self._train_file.write(np.ascontiguousarray(signature[~held]).tobytes())

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
            self._sign()
            for pending in self._pending:
                self._collect(*pending)
            self._pending = []
            if self._train_file is not None:
                self._train_file.flush()
            matched = np.zeros(len(self.train_ids), dtype=bool)
            if self.held_ids:
                exact = self._exact(matched, pairs)
                if self._train_rows:
                    near = self._near(matched, pairs)
        finally:
            self.close()
            self.scratch.unlink(missing_ok=True)
        reported = [
            {
                "train": self.train_ids[row],
                "held_out": self.held_ids[held],
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
        held = np.frombuffer(self.held_keys, dtype=np.uint64)
        order = np.argsort(held, kind="stable")
        held_sorted = held[order]
        train = np.frombuffer(self.train_keys, dtype=np.uint64)
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


def contamination_summary(report: dict) -> str:
    """One line for errors and logs: "3 exact and 2 near duplicate(s) of held-out prompts in train"."""
    return f"{report['exact']} exact and {report['near']} near duplicate(s) of held-out prompts in train"
