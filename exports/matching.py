"""The contamination check's matching (exports/contamination.py): held-out rows against train rows, read from the
check's two scratch files as they grow, and, on a large export, in a process of its own while the export runs.

Rows (TRAIN_ROW, HELD_ROW) come in the order the export reads them. Held-out rows gather into chunks of
HELD_CHUNK; a full chunk is indexed (its hashes sorted; per band of its signatures, the band values sorted) and then
meets the train rows as they come, a block of BLOCK at a time, and the train rows before it, CATCH_UP blocks for each
new block, the oldest chunk's first. So every train row meets the chunks in id order, as one pass over the chunks
would, and the report is the same however the rows arrive. `finish` matches what is left: the catch-up not yet done
and the last, partial chunk. The first LIVE_CHUNKS chunks are kept in memory for that; later ones are left in the
held-out file and matched by `finish`, so memory stays bounded however large the export (one byte of state per train
row besides).

The export's own process is bound by its one thread of Python (it renders, hashes and writes every record), so above
PROCESS_MIN_ROWS rows the matching runs in a process of its own (`python -m exports.matching`, told the files' paths
and then each new pair of row counts on its standard input; its report on its standard output as JSON): it reads the
scratch files the export writes anyway, and costs the export's thread nothing. Below that, and at the end of a small
export, the same Matcher runs in the export's process.
"""

import sys
from pathlib import Path

import numpy as np
import orjson

from annotate.quality import near_duplicates

MAX_REPORTED = 20  # pairs named in the manifest, on the row and on the page
WINDOW = 4  # held-out candidates compared per band and train row: neighbours in the sorted band, as the scan does
BLOCK = 16_384  # train rows matched per step
CATCH_UP = 4  # blocks of earlier train rows a chunk meets for each block of new ones (what is left waits for finish)
VERIFY = 16_384  # candidate pairs verified at once
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
LIVE_CHUNKS = 4  # chunks kept in memory while rows come (about 7 MB each); later ones are matched by finish
PROCESS_MIN_ROWS = 50_000  # rows (train and held out) from which the matching runs in a process of its own

_BYTE_SUM = np.uint64(0x0101010101010101)


def _items(signatures: np.ndarray) -> np.ndarray:
    """(n, PERMUTATIONS) uint8 signatures as n items of PERMUTATIONS bytes: a gather by row numbers then copies one
    item a row instead of PERMUTATIONS one-byte items (about 3 times faster, measured on 16,384 rows)."""
    return signatures.view(f"V{near_duplicates.PERMUTATIONS}").reshape(-1)


def _rows(items: np.ndarray) -> np.ndarray:
    """Items (_items) back as (n, PERMUTATIONS) uint8 rows, without a copy."""
    return items.view(np.uint8).reshape(-1, near_duplicates.PERMUTATIONS)


def _equal_bytes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row of two (n, PERMUTATIONS) uint8 arrays, how many bytes are equal: the 0/1 bytes of the comparison added
    8 at a time as 64-bit words (each byte lane stays at most PERMUTATIONS / 8), then the lanes of each sum added by
    one multiplication (the top byte of x × 0x0101…01 is the sum of x's bytes): the counts of (a == b).sum(axis=1),
    faster."""
    words = (a == b).view(np.uint64).sum(axis=1, dtype=np.uint64)
    return (words * _BYTE_SUM) >> np.uint64(56)


class _Chunk:
    """One chunk of held-out rows (HELD_ROW), indexed: its hashes sorted, and per band of its signed rows'
    signatures the band values sorted with their rows. Keeps only what matching and the report read."""

    def __init__(self, held: np.ndarray) -> None:
        self.ids = held["id"].copy()
        self.sides = held["side"].copy()
        order = np.argsort(held["key"], kind="stable")
        self.order = order.astype(np.int32)  # a chunk stays below 2**31 rows
        self.keys = held["key"][order]
        self.signed_rows = np.flatnonzero(held["signed"]).astype(np.int32)  # the rows long enough to sign
        signature = np.ascontiguousarray(held["signature"][self.signed_rows])
        self.items = _items(signature)
        bands = signature.view(np.uint32)
        self.index = []
        for band in range(bands.shape[1] if len(self.signed_rows) else 0):
            band_order = np.argsort(bands[:, band], kind="stable")
            # int32 row numbers: 8 bytes a held-out row and band instead of 12
            self.index.append((bands[band_order, band], band_order.astype(np.int32)))

    def match(self, rows: np.ndarray, state: np.ndarray, matcher: "Matcher") -> None:
        """Match a block of train rows (TRAIN_ROW) against this chunk. `state` is their slice of the matcher's status
        (a view: updates land there): 2 exact, 1 near, 0 neither yet. Exact ones are reported as exact only; a near
        match ends a row's near search."""
        last = len(self.keys) - 1
        at = np.searchsorted(self.keys, rows["key"])
        same = (at <= last) & (self.keys[np.minimum(at, last)] == rows["key"])
        found = np.flatnonzero(same & (state & 2 == 0))
        state[found] |= 2
        held = self.order[at[found]]
        matcher.keep(rows["id"][found], self.ids[held], self.sides[held], "exact", np.ones(len(found)))
        if self.index:
            hits, best_held, best_similarity = self._near_block(rows, state == 0, matcher)
            state[hits] |= 1
            matched = self.signed_rows[best_held[hits]]
            matcher.keep(rows["id"][hits], self.ids[matched], self.sides[matched], "near", best_similarity[hits])

    def _near_block(self, rows: np.ndarray, open_rows: np.ndarray, matcher: "Matcher"):
        """(rows with a verified near duplicate, the best held-out signature row per row, its similarity) for one
        block of train rows: per band a binary search, and at most WINDOW candidates per band and row."""
        signature = np.ascontiguousarray(rows["signature"])
        keys, items = signature.view(np.uint32), _items(signature)
        open_rows = open_rows & rows["signed"].astype(bool)
        chance = 2.0**-near_duplicates.SIGNATURE_BITS
        width = near_duplicates.PERMUTATIONS
        best_held = np.full(len(rows), -1, dtype=np.int64)
        best_similarity = np.zeros(len(rows), dtype=np.float64)
        for band, (sorted_keys, order) in enumerate(self.index):
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
                matcher.compared += len(a)
                for s in range(0, len(a), VERIFY):  # bounded temporaries: VERIFY pairs × 64 bytes at a time
                    a_part, b_part = a[s : s + VERIFY], b[s : s + VERIFY]
                    agree = _equal_bytes(_rows(items[a_part]), _rows(self.items[b_part])) / width
                    similarity = np.maximum(0, (agree - chance) / (1 - chance))
                    ok = similarity >= near_duplicates.NEAR_DUP_THRESHOLD
                    a_ok, b_ok, s_ok = a_part[ok], b_part[ok], similarity[ok]
                    better = s_ok > best_similarity[a_ok]
                    best_held[a_ok[better]] = b_ok[better]
                    best_similarity[a_ok[better]] = s_ok[better]
                    open_rows[a_ok] = False
        return np.flatnonzero(best_held >= 0), best_held, best_similarity


class Matcher:
    """Reads the rows of the two scratch files as `grow` announces them, matches as they come; `finish` gives
    (exact, near, pairs, compared)."""

    def __init__(self, train_path: Path, held_path: Path) -> None:
        self.train_path, self.held_path = Path(train_path), Path(held_path)
        self.train_count = 0  # train rows read so far
        self.held_count = 0  # held-out rows read so far
        self.compared = 0  # candidate pairs verified: at most bands × WINDOW a train row and held-out chunk
        self._status = np.zeros(BLOCK, dtype=np.uint8)  # per train row: 2 exact, 1 near, 0 neither yet
        self._pairs: dict[int, tuple[int, int, str, float]] = {}  # train id -> (held id, side, kind, similarity)
        self._fresh: list[np.ndarray] = []  # train rows not yet matched against the live chunks
        self._fresh_count = 0
        self._filling: list[np.ndarray] = []  # held-out rows of the chunk being gathered
        self._filling_count = 0
        self._live: list[_Chunk] = []
        self._behind: list[list] = []  # [chunk, next train row, end]: live chunks still to meet earlier train rows
        self._waiting: list[tuple[int, int]] = []  # (first row, rows) of held-out chunks left for finish

    def grow(self, train_count: int, held_count: int) -> None:
        """Take the train rows up to `train_count` and the held-out rows up to `held_count` from the files."""
        if train_count > self.train_count:
            with open(self.train_path, "rb") as train:
                while self.train_count < train_count:
                    start = self.train_count
                    rows = _read(train, TRAIN_ROW, start, min(BLOCK, train_count - start))
                    self._take_train(rows)
        if held_count > self.held_count:
            with open(self.held_path, "rb") as held:
                while self.held_count < held_count:
                    rows = _read(held, HELD_ROW, self.held_count, min(HELD_CHUNK, held_count - self.held_count))
                    self._take_held(rows)

    def _take_train(self, rows: np.ndarray) -> None:
        start = self.train_count
        self.train_count += len(rows)
        if self.train_count > len(self._status):
            grown = np.zeros(max(self.train_count, 2 * len(self._status)), dtype=np.uint8)
            grown[:start] = self._status[:start]
            self._status = grown
        if not self._live:  # nothing to meet yet: the chunks to come catch up with these rows
            return
        self._fresh.append(rows)
        self._fresh_count += len(rows)
        if self._fresh_count >= BLOCK:
            self._match_fresh()
            self._catch_up(CATCH_UP * BLOCK)

    def _take_held(self, rows: np.ndarray) -> None:
        self.held_count += len(rows)
        self._filling.append(rows)
        self._filling_count += len(rows)
        while self._filling_count >= HELD_CHUNK:
            gathered = np.concatenate(self._filling)
            self._filling = [gathered[HELD_CHUNK:]]
            self._filling_count = len(self._filling[0])
            self._chunk_full(gathered[:HELD_CHUNK], self.held_count - len(gathered))  # its first row in the file

    def _chunk_full(self, held: np.ndarray, first: int) -> None:
        """A full chunk: kept to meet the next train rows as they come and the train rows before it (after the
        chunks before it); or, beyond LIVE_CHUNKS, left in the file for finish."""
        if len(self._live) >= LIVE_CHUNKS:
            self._waiting.append((first, len(held)))
            return
        self._match_fresh()  # the train rows so far meet the chunks before this one first
        chunk = _Chunk(held)
        self._live.append(chunk)
        if self.train_count:
            self._behind.append([chunk, 0, self.train_count])

    def _match_fresh(self) -> None:
        """Match the train rows taken since the last block against the live chunks, in order."""
        if not self._fresh_count:
            return
        rows = self._fresh[0] if len(self._fresh) == 1 else np.concatenate(self._fresh)
        start = self.train_count - len(rows)
        for chunk in self._live:
            chunk.match(rows, self._status[start : self.train_count], self)
        self._fresh, self._fresh_count = [], 0

    def _catch_up(self, budget: int | None) -> None:
        """The chunks behind meet the earlier train rows they have not met, the oldest chunk first, up to `budget`
        train rows (None: all), a block at a time from the train file."""
        if not self._behind:
            return
        with open(self.train_path, "rb") as train:
            while self._behind and (budget is None or budget > 0):
                entry = self._behind[0]
                chunk, start, end = entry
                count = min(BLOCK, end - start) if budget is None else min(BLOCK, end - start, budget)
                rows = _read(train, TRAIN_ROW, start, count)
                chunk.match(rows, self._status[start : start + count], self)
                entry[1] = start + count
                if budget is not None:
                    budget -= count
                if entry[1] >= end:
                    self._behind.pop(0)

    def finish(self) -> tuple[int, int, list, int]:
        """(exact, near, the first MAX_REPORTED pairs as (train id, held-out id, side, kind, similarity), candidate
        pairs compared) once every row was taken: the catch-up left, then the chunks left for the end (beyond
        LIVE_CHUNKS, and the last, partial one) against every train row."""
        self._match_fresh()
        self._catch_up(None)
        self._live = []
        if self.train_count:
            for first, count in self._waiting:
                with open(self.held_path, "rb") as held:
                    chunk = _Chunk(_read(held, HELD_ROW, first, count))
                self._behind.append([chunk, 0, self.train_count])
                self._catch_up(None)
            if self._filling_count:
                self._behind.append([_Chunk(np.concatenate(self._filling)), 0, self.train_count])
                self._catch_up(None)
        self._filling, self._waiting = [], []
        status = self._status[: self.train_count]
        exact = int(np.count_nonzero(status & 2))
        near = int(np.count_nonzero(status)) - exact
        pairs = [(train, *entry) for train, entry in sorted(self._pairs.items())[:MAX_REPORTED]]
        return exact, near, pairs, self.compared

    def keep(self, ids: np.ndarray, held_ids: np.ndarray, sides: np.ndarray, kind: str, similarity) -> None:
        """Add the pairs of the lowest train ids (with their held-out ids and sides), keeping only the MAX_REPORTED
        lowest ids overall. An exact pair replaces a near one found in an earlier chunk (a train row counts as exact
        then); otherwise the first pair found stays."""
        pairs = self._pairs
        first = np.argsort(ids, kind="stable")[:MAX_REPORTED]
        for i in first.tolist():
            entry = (int(held_ids[i]), int(sides[i]), kind, float(similarity[i]))
            if kind == "exact":
                pairs[int(ids[i])] = entry
            else:
                pairs.setdefault(int(ids[i]), entry)
        for train in sorted(pairs)[MAX_REPORTED:]:
            del pairs[train]


def _read(handle, dtype: np.dtype, first: int, count: int) -> np.ndarray:
    """`count` rows of `dtype` from row `first` of an open scratch file."""
    handle.seek(first * dtype.itemsize)
    data = handle.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise OSError(f"{Path(handle.name).name}: {len(data) // dtype.itemsize} rows where {count} were announced")
    return np.frombuffer(data, dtype=dtype)


TUNING = ("HELD_CHUNK", "LIVE_CHUNKS", "BLOCK", "CATCH_UP", "VERIFY", "WINDOW")


def tuning() -> dict[str, int]:
    """This process's sizes, for the matching process (the same report whichever process matches)."""
    return {name: globals()[name] for name in TUNING}


def main() -> None:
    """The matching's own process: the files' paths and tuning() on the first line of standard input (JSON), then a
    line "<train rows> <held-out rows>" each time the export has written more, then "end"; the report (JSON) on
    standard output."""
    start = orjson.loads(sys.stdin.readline())
    globals().update({name: int(start["tuning"][name]) for name in TUNING})
    matcher = Matcher(Path(start["train"]), Path(start["held"]))
    for line in sys.stdin:
        if line.strip() == "end":
            exact, near, pairs, compared = matcher.finish()
            sys.stdout.buffer.write(orjson.dumps({"exact": exact, "near": near, "pairs": pairs, "compared": compared}))
            return
        train, held = map(int, line.split())
        matcher.grow(train, held)
    raise SystemExit("the export stopped before its last rows")


if __name__ == "__main__":
    main()
