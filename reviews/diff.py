"""The diffs of the review screens, with a bound on their work: word by word, else line by line, else whole blocks.

A page shows each text that went to review marked against the one before it. `difflib.SequenceMatcher` gives the
alignment reviewers read well (the longest common block first, then recursively on each side), but its work grows
with the product of the lengths on repeated tokens: "x" plus 50,000 lines of "a" against "y" plus the same lines
took minutes, and the page of that example never loaded. So:

1. The common head and tail of the two texts are cut off first (linear): most edits touch a small part of a text,
   and the hostile texts above differ in one word.
2. What remains is compared word by word with difflib's own matcher, driven here so that each call's work is known
   before it runs (one step per token of the range and per position of that token in the other text) and charged
   to a `Budget`. Within the budget the result is exactly `SequenceMatcher(autojunk=False).get_opcodes()`.
3. Past the budget, the texts are compared line by line: the lines found exactly once in each text anchor the
   alignment (patience diff: a longest increasing subsequence, n log n), the gaps between anchors go to the same
   budgeted matcher, and each changed block is refined word by word while the budget lasts.
4. A block left over is shown whole (removed, then added), and the diff opens with a note saying how many lines
   are shown so and why, instead of the page timing out.

Every piece of text is escaped; the result is safe HTML.
"""

import difflib
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Hashable, Sequence
from itertools import repeat

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

# The work one page's diffs may do, in matcher steps (one step: a token of a range, or one position of it in the
# other text; about 0.1 µs each in CPython, so ~0.2 s). Tokenising, cutting the common ends and anchoring are
# linear and not counted.
DIFF_STEPS = 2_000_000
# The word-by-word attempt on the whole changed middle may use this share of what is left, so that the line-by-line
# fallback still has a budget for refining its blocks word by word.
WORD_ATTEMPT_SHARE = 0.5

_TOKENS = re.compile(r"\s+|\S+")

Opcode = tuple[str, int, int, int, int]


class Budget:
    """Matcher steps a diff may still take: one per page, shared by its diffs (see DIFF_STEPS)."""

    def __init__(self, steps: int = DIFF_STEPS) -> None:
        self.left = steps
        self.spent = 0

    def take(self, steps: int) -> bool:
        """Spend `steps` if that many are left; False (and nothing spent) otherwise."""
        if steps > self.left:
            return False
        self.left -= steps
        self.spent += steps
        return True


def opcodes(a: Sequence[Hashable], b: Sequence[Hashable], budget: Budget) -> list[Opcode] | None:
    """`SequenceMatcher(None, a, b, autojunk=False).get_opcodes()`, or None when computing it would take more steps
    than `budget` has left (the steps of the calls already made stay spent)."""
    # difflib.get_matching_blocks, with each find_longest_match charged before it runs: it reads every token of
    # a[alo:ahi] and, for each, that token's positions in b (up to bhi): at most this many steps. The first call's
    # charge comes from a count of b's tokens, so that a diff far over the budget stops before difflib indexes b.
    counts = Counter(b)
    if not budget.take(len(a) + sum(map(counts.get, a, repeat(0)))):
        return None
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    positions = matcher.b2j  # each token of b: where it occurs in b, in order
    blocks: list[tuple[int, int, int]] = []
    queue = [(0, len(a), 0, len(b))]
    first = True
    while queue:
        alo, ahi, blo, bhi = queue.pop()
        if not first:
            steps = (ahi - alo) + sum(map(len, map(positions.get, a[alo:ahi], repeat(()))))
            if not budget.take(steps):
                return None
        first = False
        i, j, k = match = matcher.find_longest_match(alo, ahi, blo, bhi)
        if k:
            blocks.append(match)
            if alo < i and blo < j:
                queue.append((alo, i, blo, j))
            if i + k < ahi and j + k < bhi:
                queue.append((i + k, ahi, j + k, bhi))
    blocks.sort()
    # adjacent blocks become one, and the end is a block of size 0 (as in difflib)
    merged: list[tuple[int, int, int]] = []
    for i, j, k in blocks:
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + k)
        else:
            merged.append((i, j, k))
    merged.append((len(a), len(b), 0))
    found: list[Opcode] = []
    i = j = 0
    for ai, bj, size in merged:
        if i < ai and j < bj:
            found.append(("replace", i, ai, j, bj))
        elif i < ai:
            found.append(("delete", i, ai, j, bj))
        elif j < bj:
            found.append(("insert", i, ai, j, bj))
        i, j = ai + size, bj + size
        if size:
            found.append(("equal", ai, i, bj, j))
    return found


def _common_ends(a: Sequence, b: Sequence) -> tuple[int, int]:
    """(head, tail): how many items a and b share at their start, and at their end after that."""
    shortest = min(len(a), len(b))
    head = 0
    while head < shortest and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < shortest - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return head, tail


def _trimmed_opcodes(
    a: Sequence[Hashable], b: Sequence[Hashable], i1: int, i2: int, j1: int, j2: int, budget: Budget
) -> list[Opcode] | None:
    """The opcodes of a[i1:i2] against b[j1:j2] (positions in a and b), the common ends cut off first; None past
    the budget."""
    head, tail = _common_ends(a[i1:i2], b[j1:j2])
    middle = opcodes(a[i1 + head : i2 - tail], b[j1 + head : j2 - tail], budget)
    if middle is None:
        return None
    i, j = i1 + head, j1 + head
    found = [("equal", i1, i, j1, j)] if head else []
    found += [(tag, x1 + i, x2 + i, y1 + j, y2 + j) for tag, x1, x2, y1, y2 in middle]
    if tail:
        found.append(("equal", i2 - tail, i2, j2 - tail, j2))
    return found


def _anchors(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int]]:
    """Pairs (i, j) with a[i] == b[j] of the items found exactly once in a and once in b, as many as possible in an
    order both texts agree on (patience diff's anchors): a longest increasing subsequence, O(n log n)."""
    in_a, in_b = Counter(a), Counter(b)
    where_b = {item: j for j, item in enumerate(b) if in_b[item] == 1}
    pairs = [(i, where_b[item]) for i, item in enumerate(a) if in_a[item] == 1 and item in where_b]
    tails: list[int] = []  # tails[k]: the smallest j ending an increasing run of k + 1 pairs
    tail_pair: list[int] = []
    previous: list[int] = []
    for index, (_, j) in enumerate(pairs):
        k = bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_pair.append(index)
        else:
            tails[k] = j
            tail_pair[k] = index
        previous.append(tail_pair[k - 1] if k else -1)
    chain: list[tuple[int, int]] = []
    index = tail_pair[-1] if tail_pair else -1
    while index != -1:
        chain.append(pairs[index])
        index = previous[index]
    return chain[::-1]


def line_opcodes(a: Sequence[Hashable], b: Sequence[Hashable], budget: Budget) -> tuple[list[Opcode], bool]:
    """(opcodes, exact) of the lines a against the lines b (patience diff): the lines found once in each anchor
    the alignment, and each gap between anchors is treated the same way with the lines unique to it; a gap without
    such lines goes to the budgeted matcher. A gap the budget does not cover is one "replace" (exact is False)."""
    found: list[Opcode] = []
    exact = True
    gaps = [(0, len(a), 0, len(b))]  # a stack, not recursion: anchors found one at a time could nest deeply
    while gaps:
        i1, i2, j1, j2 = gaps.pop()
        head, tail = _common_ends(a[i1:i2], b[j1:j2])
        if head:
            found.append(("equal", i1, i1 + head, j1, j1 + head))
        if tail:
            found.append(("equal", i2 - tail, i2, j2 - tail, j2))
        i1, i2, j1, j2 = i1 + head, i2 - tail, j1 + head, j2 - tail
        if i1 == i2 or j1 == j2:
            if i1 < i2 or j1 < j2:
                found.append(("delete" if i1 < i2 else "insert", i1, i2, j1, j2))
            continue
        # finding the anchors reads the gap once: charged, so that nested gaps cannot add up past the budget
        anchors = _anchors(a[i1:i2], b[j1:j2]) if budget.take(i2 - i1 + j2 - j1) else None
        if anchors:
            i, j = i1, j1
            for ai, bj in anchors:
                found.append(("equal", i1 + ai, i1 + ai + 1, j1 + bj, j1 + bj + 1))
                gaps.append((i, i1 + ai, j, j1 + bj))
                i, j = i1 + ai + 1, j1 + bj + 1
            gaps.append((i, i2, j, j2))
            continue
        gap = opcodes(a[i1:i2], b[j1:j2], budget) if anchors is not None else None
        if gap is None:
            exact = False
            found.append(("replace", i1, i2, j1, j2))
        else:
            found += [(tag, x1 + i1, x2 + i1, y1 + j1, y2 + j1) for tag, x1, x2, y1, y2 in gap]
    found = [op for op in found if op[1] < op[2] or op[3] < op[4]]
    found.sort(key=lambda op: (op[1], op[3]))
    return found, exact


class _Pieces:
    """Equal and changed stretches of text, rendered as one escaped string with <del> and <ins>.

    Changes separated only by whitespace are shown as one change ("<del>any time.</del><ins>Unpair it</ins>"),
    which reads better than alternating single words.
    """

    def __init__(self) -> None:
        self.chunks: list[list] = []  # [changed?, removed, added]

    def add(self, changed: bool, removed: str, added: str) -> None:
        if not (removed or added):
            return
        chunks = self.chunks
        if chunks and changed and chunks[-1][0]:
            chunks[-1][1] += removed
            chunks[-1][2] += added
        elif len(chunks) >= 2 and changed and chunks[-2][0] and chunks[-1][1].isspace():
            space = chunks.pop()[1]  # fold "change, whitespace, change" into one change
            chunks[-1][1] += space + removed
            chunks[-1][2] += space + added
        else:
            chunks.append([changed, removed, added])

    def add_opcodes(self, a: Sequence[str], b: Sequence[str], found: list[Opcode]) -> None:
        for tag, i1, i2, j1, j2 in found:
            removed, added = "".join(a[i1:i2]), "".join(b[j1:j2])
            self.add(tag != "equal", removed, added)

    def html(self) -> str:
        parts: list[str] = []
        for changed, removed, added in self.chunks:
            if not changed:
                parts.append(escape(added))
                continue
            if removed:
                parts.append(format_html("<del>{}</del>", removed))
            if added:
                parts.append(format_html("<ins>{}</ins>", added))
        return "".join(parts)


def text_diff(old: str, new: str, *, budget: Budget | None = None) -> SafeString:
    """`new` marked against `old`: <del> for removed, <ins> for added, every piece of text escaped. Word by word
    where `budget` allows (a fresh DIFF_STEPS when not given), else line by line; what neither reaches is shown
    whole, with a note saying so."""
    budget = budget if budget is not None else Budget()
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    attempt = Budget(int(budget.left * WORD_ATTEMPT_SHARE))
    words = _trimmed_opcodes(a, b, 0, len(a), 0, len(b), attempt)
    budget.take(attempt.spent)
    if words is not None:
        pieces = _Pieces()
        pieces.add_opcodes(a, b, words)
        return mark_safe(pieces.html())  # noqa: S308 (escape() and format_html() output only)
    return _line_diff(old, new, budget)


def _line_diff(old: str, new: str, budget: Budget) -> SafeString:
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    found, _ = line_opcodes(a, b, budget)
    pieces = _Pieces()
    removed = added = 0
    for tag, i1, i2, j1, j2 in found:
        old_part, new_part = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal":
            pieces.add(False, old_part, new_part)
            continue
        x, y = _TOKENS.findall(old_part), _TOKENS.findall(new_part)
        words = _trimmed_opcodes(x, y, 0, len(x), 0, len(y), budget)
        if words is None:
            pieces.add(True, old_part, new_part)
            removed, added = removed + i2 - i1, added + j2 - j1
        else:
            pieces.add_opcodes(x, y, words)
    html = pieces.html()
    if removed or added:
        note = format_html(
            '<span class="muted small" data-testid="diff-note">{} shown as removed and {} as added: the texts are '
            "too long to compare word by word.</span>\n",
            _lines(removed),
            f"{added:,}",
        )
        html = note + html
    return mark_safe(html)  # noqa: S308 (escape() and format_html() output only)


def _lines(n: int) -> str:
    return f"{n:,} line" if n == 1 else f"{n:,} lines"
