"""The answer-leak check (issue 14): the prompt already holds the answer the model should produce.

A model trained on such a pair learns to copy from its prompt instead of answering. But a completion that transforms,
quotes or extracts from its input repeats that input by design (fill in a blank, paraphrase, fix grammar, anonymise,
comment code, extract JSON, quote the customer), so the check asks *where* the copy sits and what the task does with
its input (Task.input_reuse, "The completion": new text, quotes, transforms):

1. **An answer written into the prompt** (every task): a field holds, after a short heading that ends in a colon and
   follows other text ("Answer:", "Expected output:", "TL;DR:", "Label:", "Draft reply:", "(ES:"), a passage that is
   (nearly, LEAK_SHARE both ways) the completion. A heading at the very start of a field names the field's own
   material ("Name: Ana Lima, Age: 31" is the record to extract from), so it does not count. A completion of fewer
   than LEAK_MIN_WORDS words counts only under a heading that names an answer (ANSWER_HEADINGS): one word or number
   under any heading is too often a record's own value ("Age: 31").
2. **An earlier reply repeated** (chat, every task): the completion is (nearly) one of the assistant's earlier turns.
3. **The whole answer already in the prompt** (tasks that write new text; in tasks that quote, the instruction and
   system turns only): one field holds a run of at least LEAK_SHARE of the completion's words (and at least
   LEAK_MIN_WORDS). An extractive answer quoting its context is the job of a task that quotes, so not there.
4. **The whole context handed back** (tasks that write new text or quote): the completion holds, as one run, at
   least WHOLE_FIELD_SHARE of a field of WHOLE_FIELD_MIN_WORDS words or more: an answer that is the passage itself.

A task that transforms its input gets rules 1 and 2 only: its completion may repeat the input whole (a sentence
that needed no fix, a text without names to anonymise, a key-value record turned into the same JSON).

Bounded work: every rule is linear in the completion and the prompt. Rule 1 finds headings with one regex pass that
never backtracks and compares each heading's passage, which ends at the next heading, so passages never overlap;
rules 2-4 use a few C-level substring probes and, on a hit, the suffix automaton of longest_run.py.
"""

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from .longest_run import LongestRun
from .text import fold, word_spans

NEW, QUOTES, TRANSFORMS = "new", "quotes", "transforms"
# What "automatic" means: by output format (a JSON task extracts or restructures its input), then by preset.
FORMAT_INPUT_REUSE = {"json": TRANSFORMS}
PRESET_INPUT_REUSE = {
    "qa-context": QUOTES,
    "extraction-json": TRANSFORMS,
    "classification": NEW,
    "summarisation": NEW,
    "chat-persona": NEW,
}
INPUT_REUSE_LABELS = {NEW: "writes new text", QUOTES: "quotes its prompt", TRANSFORMS: "transforms its input"}

# "Nearly the whole completion": the share of its words one run must cover (a sign-off or a greeting added around a
# pasted draft still leaves it above this).
LEAK_SHARE = 0.8
# Below this many words a completion leaks only under an answer heading: "Yes", "Paris", "The answer is 42" occur
# in prompts by chance (a choice question names its options).
LEAK_MIN_WORDS = 4
# Rule 4: the completion holds this share of a field, of at least this many words, as one run.
WHOLE_FIELD_SHARE = 0.9
WHOLE_FIELD_MIN_WORDS = 20
# A heading: 1 to 3 words before a colon, starting a line, a sentence or a bracket (the pattern _HEADING below).
# Headings that name an answer (compared lower-case, letters only: "TL;DR" is "tldr").
ANSWER_HEADINGS = frozenset(
    {
        "answer", "answers", "label", "labels", "solution", "output", "result", "reply", "response", "summary",
        "tldr", "translation", "rewrite", "category", "class", "correct", "expected", "target", "gold", "key",
    }
)  # fmt: skip
# The probes of rule 3 run while (probes x prompt bytes) stays under this; beyond it the linear exact search runs.
_FILTER_BYTES = 1_000_000
_PROBE_WORDS = 4
QUOTE_CHARS = 80
# A heading: at a line start, after "(" or "[", or after a sentence's end; a first token starting with a letter and
# up to two more; then a colon.
_HEADING = re.compile(
    r"(?:^|(?<=[(\[])|(?<=[.!?] ))[ \t]*+([^\W\d_][\w;&/'\u2019-]*+(?:[ \t]++[\w;&/'\u2019-]++){0,2}+)[ \t]*+:",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Source:
    """One text of the prompt: a field (instruction, context, input) or a chat turn (field "messages", turn its index).
    role: "instruction" (asks), "material" (the text worked on: context, input, a user turn), "reply" (an earlier
    assistant turn)."""

    field: str
    turn: int | None
    role: str
    where: str  # for people: "the input", "turn 3 (assistant)"
    text: str
    folded: bytes


def input_reuse_of(value: str, output_format: str) -> str:
    """The task's setting, with "" (automatic) resolved by output format."""
    return value if value in (NEW, QUOTES, TRANSFORMS) else FORMAT_INPUT_REUSE.get(output_format, NEW)


class _Completion:
    """The completion's folded words, their offsets and (built on first use) their suffix automaton."""

    def __init__(self, text: str, folded: bytes) -> None:
        self.text = text
        self.folded = folded
        self.words = folded.split(b" ")
        self.n = len(self.words)
        self.padded = b" " + folded + b" "
        self._cum: list[int] | None = None
        self._automaton: LongestRun | None = None

    @property
    def cum(self) -> list[int]:
        if self._cum is None:
            self._cum = list(accumulate(map(len, self.words), initial=0))
        return self._cum

    @property
    def automaton(self) -> LongestRun:
        if self._automaton is None:
            self._automaton = LongestRun(self.words)
        return self._automaton

    def window(self, start: int, size: int) -> bytes:
        """Words start..start+size of the completion, with a space on each side."""
        cum = self.cum
        return self.padded[cum[start] + start : cum[start + size] + start + size + 1]


@dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    source: Source
    size: int  # words of the run
    completion_start: int  # first word of the run in the completion
    source_start: int  # first word of the run in the source text (offset by `offset` characters)
    offset: int = 0  # where the folded words of the source begin in its text (a heading's passage)
    segment: str = ""  # that passage (empty: the whole source text)
    heading: str = ""


def find_leak(rules, completion: str, completion_folded: bytes, sources: Sequence[Source]):
    """The first leak of the rules above, as a Finding, or None."""
    if not completion_folded or not sources:
        return None
    mode = input_reuse_of(getattr(rules, "input_reuse", ""), rules.output_format)
    c = _Completion(completion, completion_folded)
    hit = None
    for source in sources:
        hit = _answer_heading(c, source)
        if hit is not None:
            break
    if hit is None and c.n >= LEAK_MIN_WORDS:
        need = max(LEAK_MIN_WORDS, math.ceil(LEAK_SHARE * c.n - 1e-9))
        replies = [s for s in sources if s.role == "reply"]
        hit = _run_of(c, replies, need, "earlier_reply") if replies else None
        if hit is None and mode != TRANSFORMS:
            holders = [s for s in sources if s.role == "instruction" or (mode == NEW and s.role == "material")]
            hit = _run_of(c, holders, need, "answer_in_prompt") if holders else None
    if hit is None and mode != TRANSFORMS:
        for source in sources:
            if source.role == "material" and (hit := _whole_field(c, source)) is not None:
                break
    return None if hit is None else _finding(rules, c, hit)


def _headings(text: str) -> list[tuple[int, int, str, str]]:
    """(start, colon, heading, bracket) of each heading of `text`: 1-3 word-like tokens before a colon, at a line,
    sentence or bracket start (`bracket`: the "(" or "[" before the heading, where its passage may close). One pass
    of a regex whose quantifiers are all possessive: it never backtracks, so the scan is linear in the text."""
    found = []
    # Every heading ends with a colon: the scan stops at the last one (a prompt's colon is often near its start).
    for match in _HEADING.finditer(text, 0, text.rfind(":") + 1):
        start = match.start(1)
        before = text[match.start() - 1] if match.start() else ""
        found.append((start, match.end() - 1, " ".join(match.group(1).split()), before if before in "([" else ""))
    return found


def _answer_heading(c: _Completion, source: Source) -> Hit | None:
    text = source.text
    if ":" not in text:
        return None
    headings = _headings(text)
    first = len(text) - len(text.lstrip())  # where the field's text begins
    for k, (start, colon, heading, bracket) in enumerate(headings):
        if start <= first:
            continue  # the field's own first heading: its material, not an answer added to it
        if c.n < LEAK_MIN_WORDS and _letters(heading.split()[-1]) not in ANSWER_HEADINGS:
            continue
        # the passage ends at the next heading, the end of its line, or the bracket that opened before the heading;
        # each search stops at the next heading, so all of them together read the text once
        end = headings[k + 1][0] if k + 1 < len(headings) else len(text)
        for stop in ("\n", ")" if bracket == "(" else "]" if bracket == "[" else ""):
            found = text.find(stop, colon, end) if stop else -1
            end = found if found != -1 else end
        if end - colon - 1 < LEAK_SHARE * c.n:
            continue  # too few characters for LEAK_SHARE of the completion's words
        segment = text[colon + 1 : end]
        folded = fold(segment)
        if not folded:
            continue
        m = folded.count(b" ") + 1
        if not (LEAK_SHARE * c.n <= m and LEAK_SHARE * m <= c.n):
            continue
        if folded == c.folded:
            size, completion_start, segment_start = m, 0, 0
        else:
            size, completion_start = c.automaton.longest_in(folded.split(b" "))
            segment_start = c.automaton.source_end - size
            if size < LEAK_SHARE * c.n or size < LEAK_SHARE * m:
                continue
        return Hit("answer_heading", source, size, completion_start, segment_start, colon + 1, segment, heading)
    return None


def _letters(token: str) -> str:
    return "".join(ch for ch in token.casefold() if ch.isalpha())


def _run_of(c: _Completion, sources: list[Source], need: int, rule: str) -> Hit | None:
    """The longest run of completion words found in one of `sources`, when it has at least `need` words.

    Any run of `need` words holds a probe of 4 words starting at a multiple of (need - 3): when no probe occurs in
    any source (one C-level substring search each), there is no such run, and the exact search (linear, a suffix
    automaton) runs only on the rare hits. "|" never occurs in a probe, so no probe spans two sources."""
    sources = [s for s in sources if s.folded]
    if not sources:
        return None
    n = c.n
    stride = need - _PROBE_WORDS + 1
    words = c.words  # a probe joins its 4 words (c.window would first sum every word's length, ~2 µs a completion)
    probes = [b" " + b" ".join(words[m : m + _PROBE_WORDS]) + b" " for m in range(0, n - _PROBE_WORDS + 1, stride)]
    haystack = b" " + b" | ".join(s.folded for s in sources) + b" "
    candidates = sources
    if len(probes) * len(haystack) <= _FILTER_BYTES:
        hits = [m * stride for m, probe in enumerate(probes) if probe in haystack]
        if not hits:
            return None
        # a probe can occur by chance (four common words): a run of `need` words is one of the windows around a hit
        windows = {
            c.window(s, need) for m in hits for s in range(max(0, m + _PROBE_WORDS - need), min(m, n - need) + 1)
        }
        if 2 * len(windows) * len(haystack) <= _FILTER_BYTES:
            if not any(window in haystack for window in windows):
                return None
            candidates = [s for s in sources if any(window in b" " + s.folded + b" " for window in windows)]
    best: Hit | None = None
    for source in candidates:
        size, start = c.automaton.longest_in(source.folded.split(b" "))
        if size >= need and (best is None or size > best.size):
            best = Hit(rule, source, size, start, c.automaton.source_end - size)
    return best


def _whole_field(c: _Completion, source: Source) -> Hit | None:
    folded = source.folded
    m = folded.count(b" ") + 1 if folded else 0
    if m < WHOLE_FIELD_MIN_WORDS:
        return None
    need = math.ceil(WHOLE_FIELD_SHARE * m - 1e-9)
    if c.n < need:
        return None
    # Any run of `need` field words covers field words [m - need, need): its first 4 must be in the completion.
    words = folded.split(b" ")
    probe = b" " + b" ".join(words[m - need : m - need + _PROBE_WORDS]) + b" "
    if probe not in c.padded:
        return None
    size, start = c.automaton.longest_in(words)
    if size < need:
        return None
    return Hit("whole_field", source, size, start, c.automaton.source_end - size)


def _spans(text: str, folded: bytes, first: int, size: int) -> list[int]:
    """[start, end) characters in `text` of its folded words first..first+size-1 (the whole text when the folded
    words cannot be mapped back: NFKC moved a boundary)."""
    n = folded.count(b" ") + 1 if folded else 0
    spans = word_spans(text, n)
    if spans is None or first + size > len(spans) or size <= 0:
        return [0, len(text)]
    return [spans[first][0], spans[first + size - 1][1]]


def _finding(rules, c: _Completion, hit: Hit):
    source = hit.source
    if hit.segment:
        field_span = _spans(hit.segment, fold(hit.segment), hit.source_start, hit.size)
        field_span = [field_span[0] + hit.offset, field_span[1] + hit.offset]
    else:
        field_span = _spans(source.text, source.folded, hit.source_start, hit.size)
    completion_span = _spans(c.text, c.folded, hit.completion_start, hit.size)
    quote = _quote(c.text[completion_span[0] : completion_span[1]])
    what = "all the" if hit.size == c.n else f"{hit.size} of the {c.n}"
    where = source.where
    if hit.rule == "answer_heading":
        message = f"{where.capitalize()} already holds the answer, after “{hit.heading}:”: “{quote}”"
    elif hit.rule == "earlier_reply":
        message = f"The completion repeats an earlier reply of the assistant ({where}): “{quote}”"
    elif hit.rule == "whole_field":
        message = f"The completion hands back {where} whole ({hit.size} of its words): “{quote}”"
    else:
        message = f"{where.capitalize()} already holds {what} words of the completion: “{quote}”"
    detail = {
        "field": source.field,
        "field_span": field_span,
        "completion_span": completion_span,
        "where": where,
        "rule": hit.rule,
        "words": hit.size,
        "share": round(hit.size / c.n, 3),
    }
    if source.turn is not None:
        detail["turn"] = source.turn
    return rules.finding("leak", message, **detail)


def _quote(text: str) -> str:
    text = " ".join(unicodedata.normalize("NFC", text).split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
