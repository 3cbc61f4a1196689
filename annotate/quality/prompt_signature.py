"""The MinHash signature of a prompt (instruction, context, input and prior turns), as the contamination check of an
export compares held-out prompts with train (exports/contamination.py).

Each example stores its signature beside its prompt hash (Example.prompt_signature), computed where the hash is:
when the example is written (services, the import). An export then reads 64 bytes a row instead of folding and
signing every prompt again, which was about half of its work per record. A row stored before the column existed
(NULL) is signed by the export, as before; a prompt too short to sign (fewer than NEAR_DUP_MIN_WORDS folded words)
stores b"".

The signature is near_duplicates' (folded word pairs per field, 64 8-bit minimums, the fields mixed): each distinct
field text of a batch is folded and signed once (a shared context, a constant instruction), with numpy for ASCII.
"""

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from . import near_duplicates
from .text import fold

FIELDS = 4  # instruction, context, input, prior turns: the scan's field numbers
SIZE = near_duplicates.PERMUTATIONS  # bytes of a stored signature
PROMPT_FIELDS = ("instruction", "context", "input")


def signatures(prompts: Sequence[tuple[Sequence[str], Iterable[Mapping] | None]]) -> tuple[np.ndarray, np.ndarray]:
    """(signed, signatures) of prompts given as ((instruction, context, input), prior turns or None): which are long
    enough to sign, and the (signed.sum(), SIZE) uint8 signatures of those, in order."""
    n = len(prompts)
    contributions = []
    segment = np.empty((n, FIELDS), dtype=np.int64)  # each row's text per field, numbered across fields
    words = np.zeros(n, dtype=np.int64)
    offset = 0
    for field in range(FIELDS):
        if field < 3:
            texts = [prompt[0][field] or "" for prompt in prompts]
        else:  # prior turns: their contents folded and joined (already folded: ASCII or not, folding again keeps it)
            texts = [
                b" ".join(fold(str(turn.get("content") or "")) for turn in prompt[1]).decode() if prompt[1] else ""
                for prompt in prompts
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
    return signed, near_duplicates.combine(combined)


def stored(prompts: Sequence[tuple[Sequence[str], Iterable[Mapping] | None]]) -> list[bytes]:
    """Each prompt's signature as Example.prompt_signature stores it: SIZE bytes, or b"" when too short to sign."""
    signed, found = signatures(prompts)
    out = [b""] * len(prompts)
    for row, signature in zip(np.flatnonzero(signed).tolist(), found, strict=True):
        out[row] = signature.tobytes()
    return out


def prompt_signature(fields: Mapping[str, str], messages: Iterable[Mapping] | None = ()) -> bytes:
    """The stored signature of one prompt (services.prompt_hash's arguments)."""
    return stored([(tuple(fields.get(name, "") or "" for name in PROMPT_FIELDS), list(messages or ()) or None)])[0]
