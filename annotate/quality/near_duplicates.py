"""Near-duplicate prompts at scale: MinHash signatures computed in bulk with numpy, LSH banding by sorting.

Why not datasketch (MinHash + MinHashLSH), the maintained reference and the first choice: measured on this project's
2-core machine with ~1 KB prompts, `MinHash.bulk` takes ~250 µs a prompt and `MinHashLSH` another ~90 µs to insert and
query, with ~2.6 KB of index per prompt: about 340 s and 2.6 GB for 1,000,000 prompts, against a budget of ~90 s and
1 GB for the whole task-wide scan. The same method done column-wise with numpy costs ~12-16 µs of CPU (in a
background thread: numpy releases the GIL, so it runs beside the Python-level scan) and 64 bytes a prompt:

- **Shingles**: the folded words of each prompt field (services.normalise_prompt rules), as word pairs (a one-word
  field is its word). Word pairs rather than the usual 3-word shingles because prompts are short: one word changed in
  a 20-word prompt leaves 81% of the pairs (Jaccard 0.81) but only 71% of the triples.
- **Per field, then combined**: each field (instruction, context, input, chat turns) gets its own 64 minimums; for
  each of the 64 permutations the field minimums are mixed into one 8-bit value (b-bit MinHash). Two prompts agree
  on a value with probability ≈ the product of their per-field Jaccard similarities, so two questions over one
  shared long context are *not* near duplicates (their question fields differ), while a constant instruction (a
  classification task's) neither helps nor hurts.
- **Banding (LSH)**: 16 bands of 4 values, each band read as one uint32; sorting a band groups equal keys, and each
  member is compared with its bucket's first member and its next 3 neighbours (linear even for huge buckets).
  P(candidate) = 1 - (1 - s⁴)¹⁶: 0.99 at s = 0.7, 0.64 at 0.5, 0.03 at 0.2.
- **Verification**: a candidate pair is a near duplicate when at least NEAR_DUP_THRESHOLD of its 64 values agree
  (the similarity estimate, corrected for the 1-in-256 chance agreement of 8-bit values; ±0.06 around 0.7). Pairs
  join into groups (union-find over row numbers), so A~B and B~C put A and C in one group even when A and C are less
  alike.

Every permutation and table comes from a fixed seed: the same prompts give the same groups on every run.
"""

import numpy as np

from .text import _ASCII_FOLD, fold

NEAR_DUP_THRESHOLD = 0.7
NEAR_DUP_MIN_WORDS = 8  # shorter prompts ("What is the capital of Spain?") differ meaningfully by one word
PERMUTATIONS = 64
SIGNATURE_BITS = 8  # b-bit MinHash: unequal minimums still agree 1 time in 256, corrected for in similarity()
BAND_ROWS = 4
BANDS = PERMUTATIONS // BAND_ROWS
_WINDOW = 3
_BATCH_BYTES = 500_000  # bounds the per-byte temporaries (~25 bytes per text byte, so ~12 MB)
_VERIFY_BLOCK = 65_536

_rng = np.random.default_rng(0x5EED_D0C5)
_PERM_A = _rng.integers(0, 2**32, size=PERMUTATIONS, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
_PERM_B = _rng.integers(0, 2**32, size=PERMUTATIONS, dtype=np.uint64).astype(np.uint32)
_FIELD_MIX = _rng.integers(0, 2**32, size=16, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
_PAIR_MIX = np.uint64(0x9E3779B97F4A7C15)
_WORD_BASE = np.uint64(0x100000001B3 | 1)
_FOLD_TABLE = np.frombuffer(_ASCII_FOLD, dtype=np.uint8)
_WORD_BASE_INVERSE = np.uint64(pow(int(_WORD_BASE), -1, 2**64))


def signatures(segments: list[bytes], segment_row: np.ndarray, segment_field: np.ndarray, n_rows: int) -> np.ndarray:
    """(n_rows, PERMUTATIONS) uint8 signatures from the folded, non-empty field texts of the rows.

    segments[k] is field segment_field[k] of row segment_row[k]; a row's fields are mixed per permutation, and a
    field a row lacks counts as one value, equal between two rows that both lack it.
    """
    combined = np.zeros((n_rows, PERMUTATIONS), dtype=np.uint32)
    segment_row = np.asarray(segment_row, dtype=np.int64)
    segment_field = np.asarray(segment_field, dtype=np.int64)
    start, size = 0, 0
    for end, segment in enumerate(segments, 1):
        size += len(segment) + 1
        if size >= _BATCH_BYTES or end == len(segments):
            _fold_minimums(combined, segments[start:end], segment_row[start:end], segment_field[start:end])
            start, size = end, 0
    return (combined >> np.uint32(32 - SIGNATURE_BITS)).astype(np.uint8)


_powers = np.ones(1, dtype=np.uint64)
_inverse_powers = np.ones(1, dtype=np.uint64)


def _powers_up_to(n: int) -> tuple[np.ndarray, np.ndarray]:
    """M^i and M^-i (mod 2^64) for i < n, grown on demand and kept (uint64 arithmetic wraps, M is odd)."""
    global _powers, _inverse_powers
    if len(_powers) < n:
        size = max(n, 2 * len(_powers), _BATCH_BYTES + 1)
        _powers = np.cumprod(np.r_[np.uint64(1), np.full(size - 1, _WORD_BASE, dtype=np.uint64)], dtype=np.uint64)
        _inverse_powers = np.cumprod(
            np.r_[np.uint64(1), np.full(size - 1, _WORD_BASE_INVERSE, dtype=np.uint64)], dtype=np.uint64
        )
    return _powers[:n], _inverse_powers[:n]


def _mix(h: np.ndarray) -> np.ndarray:
    """A 64-bit finaliser: every output bit depends on every input bit (a polynomial's low bits are weak)."""
    h = h ^ (h >> np.uint64(33))
    h *= np.uint64(0xFF51AFD7ED558CCD)
    return h ^ (h >> np.uint64(29))


def field_minimums(segments: list[bytes]) -> np.ndarray:
    """(len(segments), PERMUTATIONS) uint32: the 64 minimums of each folded, non-empty text's shingles. A row's
    signature mixes the minimums of its fields (contribution); equal texts have equal minimums, so a caller that sees
    one text many times (a shared context, a constant instruction) can compute them once."""
    out = np.empty((len(segments), PERMUTATIONS), dtype=np.uint32)
    start, size = 0, 0
    for end, segment in enumerate(segments, 1):
        size += len(segment) + 1
        if size >= _BATCH_BYTES or end == len(segments):
            out[start:end] = _minimums(segments[start:end])
            start, size = end, 0
    return out


def text_minimums(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(minimums, words) of raw texts, folded here: the field_minimums of [fold(t) for t in texts] (zeros for a text
    with no word) and each text's number of folded words. ASCII text is folded with numpy (the fold table, words
    split at runs of spaces), so a caller's thread holds the GIL very little; other text goes through text.fold."""
    minimums = np.zeros((len(texts), PERMUTATIONS), dtype=np.uint32)
    words = np.zeros(len(texts), dtype=np.int64)
    ascii_rows = [i for i, text in enumerate(texts) if text.isascii()]
    other_rows = [i for i, text in enumerate(texts) if not text.isascii()]
    for rows, raw in ((ascii_rows, True), (other_rows, False)):
        start, size = 0, 0
        for end, row in enumerate(rows, 1):
            size += len(texts[row]) + 1
            if size >= _BATCH_BYTES or end == len(rows):
                part = rows[start:end]
                encoded = [texts[i].encode() if raw else fold(texts[i]) for i in part]
                data = np.frombuffer(b"\n".join(encoded), dtype=np.uint8)
                if raw:  # the fold table maps every non-word byte, line breaks included, to a space
                    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
                    data = _FOLD_TABLE[data]
                    data[np.cumsum(lengths + 1)[:-1] - 1] = 0x0A
                minimums[part], words[part] = _loose_minimums(data, len(part))
                start, size = end, 0
    return minimums, words


def _loose_minimums(data: np.ndarray, n_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """_minimums of segments separated by line breaks whose words are separated by runs of spaces (leading and
    trailing spaces allowed); a segment without words gets zeros. Also each segment's number of words."""
    separators = np.flatnonzero((data == 0x20) | (data == 0x0A))
    starts = np.r_[0, separators + 1]
    ends = np.r_[separators, len(data)]
    segment_of = np.r_[0, np.cumsum(data[separators] == 0x0A, dtype=np.int64)]
    word = ends > starts  # between two spaces in a row: no word
    starts, ends, segment_of = starts[word], ends[word], segment_of[word]
    counted = np.bincount(segment_of, minlength=n_segments)
    out = np.zeros((n_segments, PERMUTATIONS), dtype=np.uint32)
    if not len(starts):
        return out, counted
    powers, inverse = _powers_up_to(len(data) + 1)
    prefix = np.zeros(len(data) + 1, dtype=np.uint64)
    np.cumsum(data * powers[: len(data)], out=prefix[1:])
    word_hash = _mix((prefix[ends] - prefix[starts]) * inverse[starts])
    pair = np.zeros(len(starts), dtype=bool)
    pair[:-1] = segment_of[:-1] == segment_of[1:]
    first = np.ones(len(starts), dtype=bool)
    first[1:] = segment_of[1:] != segment_of[:-1]
    keep = pair | first
    following = np.zeros_like(word_hash)
    following[:-1] = word_hash[1:]
    shingle = np.where(pair, word_hash * _PAIR_MIX + (following ^ (following >> np.uint64(29))), word_hash)[keep]
    shingle_segment = segment_of[keep]
    x = (shingle ^ (shingle >> np.uint64(32))).astype(np.uint32)
    segment_start = np.flatnonzero(np.r_[True, shingle_segment[1:] != shingle_segment[:-1]])
    present = shingle_segment[segment_start]
    permuted = np.empty_like(x)
    for j in range(PERMUTATIONS):
        np.multiply(x, _PERM_A[j], out=permuted)
        permuted += _PERM_B[j]
        out[present, j] = np.minimum.reduceat(permuted, segment_start)
    return out, counted


def contribution(minimums: np.ndarray, field: int) -> np.ndarray:
    """What a field's minimums add (by XOR) to its row's combined values before they are cut to SIGNATURE_BITS."""
    return minimums * _FIELD_MIX[field]


def combine(combined: np.ndarray) -> np.ndarray:
    """The uint8 signature of XOR-combined contributions."""
    return (combined >> np.uint32(32 - SIGNATURE_BITS)).astype(np.uint8)


def _fold_minimums(combined: np.ndarray, segments: list[bytes], rows: np.ndarray, fields: np.ndarray) -> None:
    minimums = _minimums(segments)
    for field in np.unique(fields):
        mask = fields == field  # a row has each field once, so the rows under this mask are distinct
        combined[rows[mask]] ^= minimums[mask] * _FIELD_MIX[field]


def _minimums(segments: list[bytes]) -> np.ndarray:
    """The minimums of each segment (all non-empty, folded: words joined by single spaces), in segment order: the
    same computation as _loose_minimums, whose tolerance of empty words and segments costs nothing here."""
    return _loose_minimums(np.frombuffer(b"\n".join(segments), dtype=np.uint8), len(segments))[0]


def similarity(signature: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The estimated similarity (share of agreeing values) of rows a[i] and b[i]."""
    out = np.empty(len(a), dtype=np.float32)
    for s in range(0, len(a), _VERIFY_BLOCK):
        e = s + _VERIFY_BLOCK
        out[s:e] = (signature[a[s:e]] == signature[b[s:e]]).sum(axis=1) / PERMUTATIONS
    chance = 2.0**-SIGNATURE_BITS
    return np.maximum(0, (out - chance) / (1 - chance))


def groups(signature: np.ndarray, *, threshold: float = NEAR_DUP_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """(group, best): each row's group (the smallest row number in it) and its best verified similarity (0: none)."""
    n = len(signature)
    group = np.arange(n, dtype=np.int64)
    best = np.zeros(n, dtype=np.float32)
    if n < 2:
        return group, best
    bands = np.ascontiguousarray(signature).view(np.uint32)  # 4 one-byte values a band
    positions = np.arange(n, dtype=np.int64)
    for band in range(bands.shape[1]):
        key = bands[:, band]
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        new_bucket = np.ones(n, dtype=bool)
        new_bucket[1:] = sorted_key[1:] != sorted_key[:-1]
        if new_bucket.all():
            continue
        bucket_first = order[np.maximum.accumulate(np.where(new_bucket, positions, 0))]
        a_parts, b_parts = [bucket_first[~new_bucket]], [order[~new_bucket]]
        for d in range(1, _WINDOW + 1):
            same = sorted_key[d:] == sorted_key[:-d]
            a_parts.append(order[:-d][same])
            b_parts.append(order[d:][same])
        a, b = np.concatenate(a_parts), np.concatenate(b_parts)
        open_pair = group[a] != group[b]  # pairs already in one group need no second look
        a, b = a[open_pair], b[open_pair]
        if not len(a):
            continue
        low, high = np.minimum(a, b), np.maximum(a, b)
        pair_code = np.unique(low * n + high)
        a, b = pair_code // n, pair_code % n
        sims = similarity(signature, a, b)
        ok = sims >= threshold
        a, b, sims = a[ok], b[ok], sims[ok]
        np.maximum.at(best, a, sims)
        np.maximum.at(best, b, sims)
        _union(group, a, b)
    return group, best


def _union(group: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Join the groups of a[i] and b[i]; `group` stays fully compressed (every row points at its root)."""
    while len(a):
        root_a, root_b = group[a], group[b]
        differ = root_a != root_b
        if not differ.any():
            return
        a, b, root_a, root_b = a[differ], b[differ], root_a[differ], root_b[differ]
        np.minimum.at(group, np.maximum(root_a, root_b), np.minimum(root_a, root_b))
        while True:
            compressed = group[group]
            if np.array_equal(compressed, group):
                break
            group[:] = compressed
