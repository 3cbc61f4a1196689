"""How much a person changed a model's draft: a similarity from 0 to 1 and a category, in time linear in the texts.

The similarity is the overlap of the two texts' multisets of consecutive word pairs (the Dice coefficient): 1 for
the same words in the same order, falling as words are replaced, added, removed or moved, 0 when no pair of
neighbouring words survives. It reads each text once, with a Counter (no quadratic alignment such as difflib's, and
no cap needed: a completion is at most MAX_COMPLETION_CHARS long), so a submit pays for it in microseconds.
"""

import re
from collections import Counter

_WORD = re.compile(r"\S+")
LIGHT_EDIT_MIN = 0.5  # at least half of the draft's word pairs kept: lightly edited; fewer: rewritten


def _pairs(text: str) -> Counter:
    words = _WORD.findall(text)
    if len(words) == 1:
        return Counter([(words[0], None)])  # a one-word text compares as its word
    return Counter(zip(words, words[1:], strict=False))


def similarity(draft: str, final: str) -> float:
    """The word-pair overlap of two texts, 0 to 1 (1 when both are empty)."""
    a, b = _pairs(draft), _pairs(final)
    total = sum(a.values()) + sum(b.values())
    if not total:
        return 1.0
    return 2 * sum((a & b).values()) / total


def categorise(draft: str, final: str) -> tuple[float, str]:
    """(similarity, "unchanged" | "light" | "rewritten"). Unchanged means the same text but for surrounding space."""
    if draft.strip() == final.strip():
        return 1.0, "unchanged"
    score = round(similarity(draft, final), 4)
    if score >= 1.0:  # only the spacing between words changed
        return 1.0, "light"
    return score, "light" if score >= LIGHT_EDIT_MIN else "rewritten"
