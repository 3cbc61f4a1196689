"""The deterministic split of DESIGN.md: u, the hash of (split seed, example UUID) read as a fraction, puts an example
in validation when u < the validation ratio, in test when validation ratio ≤ u < validation + test ratio, else in
train. u depends on nothing but the seed and the UUID, so an example stays on its side from one version to the next
as long as the seed and both ratios stay; the bounds are exact rationals (the two ratios added as fractions), never
rounded floats.

u is the first 8 bytes of sha256("<seed>:<uuid>") as a big-endian integer over 2**64: the database computes it in
SQL while the worker renders (same bytes: the UUID as lowercase hyphenated text, UTF-8), and Python computes it the
same way where there is no PostgreSQL.
"""

import math
from collections.abc import Callable
from fractions import Fraction
from hashlib import sha256

from django.db.models import IntegerField
from django.db.models.expressions import RawSQL

SPLITS = ("train", "validation", "test")
SIDES = SPLITS  # the side code of a row (0, 1, 2) -> its split
SPLIT_FILES = {split: f"{split}.jsonl" for split in SPLITS}
RULE = (
    'u = the first 8 bytes of sha256("<seed>:<uuid>") as a big-endian integer / 2**64; validation when '
    "u < validation_ratio, test when validation_ratio <= u < validation_ratio + test_ratio, else train"
)


def _limit(fraction: Fraction) -> bytes:
    """fraction × 2**64, rounded up, as 8 big-endian bytes: the first 8 bytes of a hash (as a big-endian integer) are
    below fraction × 2**64 exactly when, compared as bytes, they are below this. Ratios stay below 1, so it fits."""
    return min(math.ceil(fraction * 2**64), 2**64 - 1).to_bytes(8, "big")


def _bounds(validation_ratio: float, test_ratio: float) -> tuple[bytes, bytes]:
    validation = Fraction(validation_ratio)
    return _limit(validation), _limit(validation + Fraction(test_ratio))


def split_of(*, seed: str, uuid: str, ratio: float, test_ratio: float = 0.0) -> str:
    """The split of one example: "validation", "test" or "train" (`ratio` is the validation ratio)."""
    return SIDES[splitter(seed, ratio, test_ratio)(uuid)]


def splitter(seed: str, validation_ratio: float, test_ratio: float = 0.0) -> Callable[[str], int]:
    """uuid -> its side code (0 train, 1 validation, 2 test), with what does not depend on the example worked out
    once."""
    prefix = f"{seed}:".encode()
    validation, held_out = (bound + bytes(24) for bound in _bounds(validation_ratio, test_ratio))  # whole digests

    def side(uuid: str) -> int:
        digest = sha256(prefix + uuid.encode()).digest()
        if digest < validation:
            return 1
        return 2 if digest < held_out else 0

    return side


def side_sql(seed: str, validation_ratio: float, test_ratio: float = 0.0, table: str = "annotate_example") -> RawSQL:
    """splitter as SQL, for PostgreSQL: the side code of each row of `table` (a model's table name, not user text),
    by its uuid column (bytea compares bytewise, like Python bytes)."""
    u = f'substring(sha256(convert_to(%s || "{table}"."uuid"::text, \'UTF8\')) from 1 for 8)'
    validation, held_out = _bounds(validation_ratio, test_ratio)
    prefix = f"{seed}:"
    if held_out == validation:  # no test split: one hash a row
        return RawSQL(f"CASE WHEN {u} < %s THEN 1 ELSE 0 END", (prefix, validation), output_field=IntegerField())
    return RawSQL(
        f"CASE WHEN {u} < %s THEN 1 WHEN {u} < %s THEN 2 ELSE 0 END",
        (prefix, validation, prefix, held_out),
        output_field=IntegerField(),
    )
