"""The task-wide checks judged against the task's own completions (issue 14): very short answers, length outliers,
unusual openings and sign-offs. Fixed numbers cried wolf on real data (one-word labels flagged as "short", a letter's
"Dear Hannah," flagged on a varied task), so each rule compares a completion with the task's distribution and
says which part of it a reviewer should look at (`typical`, `typical_share`, `typical_words` in the finding).

The scan (task.py) gives each function the compact per-row columns it kept (numpy arrays over all rows):
completion (0: none), in_play, words (folded words of the completion), inst (a key of the folded instruction),
input_words, question, explain, opener and signoff (small codes, see OpeningCodes). Work: a sort or a group-by over
the rows, linear in the rows up to the log factor.
"""

import math
import re

import numpy as np
import pandas as pd

from .text import fold

# --- very short --------------------------------------------------------------------------------------------------

# "Very short" means a few words at most: longer answers are never called that, whatever the task.
SHORT_MAX_WORDS = 3
# ... and it is wrong for the prompt when it is under this share of the typical length (and of its input's length:
# a translation or rewrite follows its input, so "Gracias." for "Thank you." is right) ...
SHORT_SHARE = 0.25
# ... where "typical" is the median of the answers to the same instruction, when it has this many, else the task's
# median, once the task has SHORT_MIN_TASK completions (fewer: no distribution to judge against).
SHORT_MIN_PEERS = 5
SHORT_MIN_TASK = 20
# A question ("What does this print?", "How many ...?") may be answered in a word when at least this share of the
# task's other completions are very short too: the task shows that such answers are its normal.
SHORT_QUESTION_SHARE = 0.05
# Instructions that ask for an explanation or a description want sentences, whatever the task's other answers
# (a mixed task of one-word answers and explanations has no useful median): judged by the instruction's first word.
SHORT_PROSE_VERBS = frozenset({"explain", "describe", "discuss", "compare", "elaborate", "justify"})

# --- length outliers ---------------------------------------------------------------------------------------------

# Long: over this many times the upper quartile of the task's word counts (a pasted document, an answer twice).
LENGTH_LONG_FACTOR = 4.0
# Short: under this share of the lower quartile, and (nearly) alone down there: fewer than LENGTH_SHORT_CLUSTER of
# the other completions within twice its length (a cluster of one-word answers is a kind of answer the task has, not
# an accident; in a small task one such neighbour is a cluster, in a million rows it takes 10,000).
LENGTH_SHORT_FACTOR = 0.2
LENGTH_SHORT_CLUSTER = 0.01
# Judged once the task has this many non-empty completions. Label tasks are skipped: labels are short by design.
LENGTH_MIN_EXAMPLES = 30

# --- openings and sign-offs --------------------------------------------------------------------------------------

# A way of opening (or signing off) that this share of completions share is the task's house style ...
CONSISTENCY_MAJORITY = 0.7
# ... judged only once the task has this many completions.
CONSISTENCY_MIN_EXAMPLES = 20
# An opener is a first clause of at most this many words ending in "," "!" ":" or a line break ("Sure!", "Hi Anna,")
# and followed by more text. Only two kinds count: a greeting and filler. Anything else (a code line, a poem's first
# line, "However,") is the answer itself; "Yes," and "No," are the answer.
OPENER_MAX_WORDS = 3
GREETING_WORDS = frozenset({"hi", "hello", "hey", "dear", "greetings", "welcome", "hiya", "howdy"})
GREETING_TIMES = frozenset({"morning", "afternoon", "evening", "day"})  # "Good morning," is a greeting
# Filler: openers that acknowledge or praise instead of answering; a model trained on them learns a tic.
FILLER_OPENERS = frozenset(
    {"sure", "certainly", "absolutely", "okay", "ok", "great", "good", "of", "happy", "glad", "alright", "thanks",
     "thank", "excellent", "fantastic", "wonderful", "interesting"}
)  # fmt: skip
_NOT_OPENERS = frozenset({"yes", "no"})
# A sign-off is a last line of at most this many words (with a short "Best regards," line before it), or a last
# sentence that short ending in "!" ("Hope this helps!"); its first two words name it.
SIGNOFF_MAX_WORDS = 4
_SIGNOFF_MAX_CHARS = 80  # longer lines cannot be a sign-off of 4 words; no need to split them
# Filler sign-offs: offers and wishes that close an answer without adding to it (first words, folded).
FILLER_SIGNOFFS = ("hope", "i hope", "let me know", "feel free", "happy to help", "glad to help", "any other question")

# Both quantifiers possessive: no backtracking on a miss. With a greedy "\s*", a completion of 100,000 spaces cost
# 40 tries for each space given back (30 ms); giving spaces back never finds an opener with words anyway.
_OPENER = re.compile(r"\s*+([^\n.!?,:;]{1,40}+)([,!:\n])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
NONE, GREETING, FILLER = "", "greeting", "filler"
NO_OPENING, NO_SIGNOFF = "no opening phrase", "no sign-off"


def opener(completion: str) -> str:
    """The completion's opening phrase ("Sure!", "Hi Anna,"), or ""."""
    match = _OPENER.match(completion)
    if match is None:
        return ""
    words = match.group(1).split()
    mark = match.group(2)
    if not 1 <= len(words) <= OPENER_MAX_WORDS or not completion[match.end() :].strip():
        return ""
    if words[0].casefold() in _NOT_OPENERS or (mark in ",:" and opening_kind(" ".join(words)) == NONE):
        return ""  # "However," and "First," start the answer itself
    return " ".join(words) + (mark if mark != "\n" else "")


def opening_kind(phrase: str) -> str:
    """greeting ("Hi Anna,", "Good morning,"), filler ("Sure!", "Great question!") or "" (anything else)."""
    words = fold(phrase).split(b" ")
    first = words[0].decode() if words and words[0] else ""
    if first in GREETING_WORDS or (first == "good" and len(words) > 1 and words[1].decode() in GREETING_TIMES):
        return GREETING
    second = words[1] if len(words) > 1 else b""
    if (first in ("happy", "glad") and second != b"to") or (first == "of" and second != b"course"):
        return NONE  # "Happy to help!" and "Of course!" are filler, "Happy birthday," is the toast itself
    return FILLER if first in FILLER_OPENERS else NONE


def signoff(completion: str) -> str:
    """The completion's closing phrase ("Best regards, Skylark Support", "Hope this helps!"), or ""."""
    text = completion.rstrip()
    cut = text.rfind("\n")
    last_line = text[cut + 1 :].strip()
    if cut > 0 and len(last_line) <= _SIGNOFF_MAX_CHARS and len(last_line.split()) <= SIGNOFF_MAX_WORDS:
        before = text[:cut].rstrip()
        cut = before.rfind("\n")
        previous = before[cut + 1 :].strip()
        if cut > 0 and previous.endswith(",") and len(previous.split()) <= OPENER_MAX_WORDS:
            return previous + " " + last_line
        return last_line
    if text.endswith("!"):
        sentences = _SENTENCE_END.split(last_line[-_SIGNOFF_MAX_CHARS:])
        if len(sentences) >= 2 and len(sentences[-1].split()) <= SIGNOFF_MAX_WORDS:
            return sentences[-1]
    return ""


def signoff_key(phrase: str) -> str:
    """What makes two sign-offs the same: filler, or their first two words ("best regards")."""
    folded = fold(phrase).decode()
    if not folded:
        return NONE
    if folded.startswith(FILLER_SIGNOFFS):
        return FILLER
    return " ".join(folded.split(" ")[:2])


class Codes:
    """Small integer codes for the kinds of opening or sign-off (0: none), with the first spelling of each kept to
    show people. Phrases repeat (that is the point of a house style), so each is classified once."""

    def __init__(self, key) -> None:
        self.key = key
        self.codes: dict[str, int] = {NONE: 0}
        self.shown: list[str] = [""]
        self._phrases: dict[str, int] = {"": 0}

    def code(self, phrase: str) -> int:
        code = self._phrases.get(phrase)
        if code is None:
            key = self.key(phrase) if phrase else NONE
            code = self.codes.get(key)
            if code is None:
                code = self.codes[key] = len(self.shown)
                self.shown.append(phrase)
            self._phrases[phrase] = code
        return code

    def is_filler(self, code: int) -> bool:
        return code != 0 and self.codes.get(FILLER) == code


def opening_codes() -> Codes:
    return Codes(opening_kind)


def signoff_codes() -> Codes:
    return Codes(signoff_key)


def _share(n: float, total: int) -> str:
    return f"{100 * n / total:.0f}%" if total else "0%"


def consistency(rules, col: dict, name: str, codes: Codes, check: str, rows: list, found: list) -> None:
    """Openings (name "opener") or sign-offs ("signoff") that break the task's house style.

    Where at least CONSISTENCY_MAJORITY of the completions share a kind (a greeting; the same sign-off), every
    completion of another kind is flagged. Elsewhere (most have none, or the task is varied) only filler is: a
    greeting or a sign-off there is content (a letter, a toast, a reply to "hi", a poem's last line)."""
    has_completion = (col["completion"] != 0) & col["in_play"]
    values = col[name][has_completion]
    total = len(values)
    if total < CONSISTENCY_MIN_EXAMPLES:
        return
    counts = np.bincount(values, minlength=len(codes.shown))
    top = int(counts.argmax())
    if counts[top] < CONSISTENCY_MAJORITY * total:
        top = 0  # no house style: only filler is a problem (a varied task's endings are its content)
    opening = name == "opener"
    verb, thing = ("open", "opening") if opening else ("end", "sign-off")
    typical = codes.shown[top] or (NO_OPENING if opening else NO_SIGNOFF)
    kind_of = " a greeting such as" if opening and top and codes.codes.get(GREETING) == top else ""
    made: dict[int, object] = {}
    for row in np.flatnonzero(has_completion & (col[name] != top)).tolist():
        value = int(col[name][row])
        if top == 0 and not codes.is_filler(value):
            continue  # no house style: only filler is a problem
        finding = made.get(value)
        if finding is None:
            this = codes.shown[value]
            if top == 0:
                message = (
                    f"“{this}” is filler: {_share(total - counts[value], total)} of completions in this task do "
                    f"not {verb} with such a phrase."
                )
            else:
                how = f"{verb}s with “{this}”" if this else f"has no {thing}"
                most = _share(counts[top], total)
                message = f"{most} of completions {verb} with{kind_of} “{typical}”; this one {how}."
            # the share of the typical kind; with no house style, of the completions without such filler
            share = round(float(counts[top] if top else total - counts[value]) / total, 3)
            finding = made[value] = rules.finding(
                check, message, typical=typical, typical_share=share, this=this or None
            )
        rows.append(row)
        found.append(finding)


def short(rules, col: dict, rows: list, found: list) -> None:
    """Very short text completions that the prompt wants longer (see the constants above)."""
    has = (col["completion"] != 0) & col["in_play"]
    written = np.flatnonzero(has)
    words = col["words"]
    candidates = np.flatnonzero(has & (words <= SHORT_MAX_WORDS))
    if not len(candidates):
        return
    task_median = float(np.median(words[written])) if len(written) >= SHORT_MIN_TASK else None
    typical_words = round(float(np.median(words[written])))
    groups = pd.DataFrame({"inst": col["inst"][written], "words": words[written]}).groupby("inst")["words"]
    peer_median, peer_count = groups.median(), groups.size()
    others_short = (len(candidates) - 1) / max(1, len(written) - 1)
    for row in candidates.tolist():
        n = int(words[row])
        key = col["inst"][row]
        peers = int(peer_count.get(key, 0))
        if col["explain"][row]:
            message = f"Only {_words(n)}, and the instruction asks for an explanation or a description."
        else:
            if peers >= SHORT_MIN_PEERS:
                typical, basis = float(peer_median[key]), "answers to the same instruction"
            elif task_median is not None:
                typical, basis = task_median, "completions in this task"
            else:
                continue
            input_words = int(col["input_words"][row])
            if n >= SHORT_SHARE * typical or (input_words and n >= SHORT_SHARE * input_words):
                continue
            if col["question"][row] and others_short >= SHORT_QUESTION_SHARE:
                continue  # a question answered in a word, in a task where such answers are common
            message = f"Only {_words(n)}, where {basis} have {typical:.0f} (median)"
            message += f" and the input has {input_words}." if input_words else "."
        rows.append(row)
        found.append(rules.finding("short", message, words=n, typical_words=typical_words, peers=peers))


def length_outliers(rules, col: dict, rows: list, found: list) -> None:
    """Completions far longer than the task's upper quartile, or far shorter than its lower one and alone there."""
    written = np.flatnonzero((col["completion"] != 0) & col["in_play"] & (col["words"] > 0))
    if len(written) < LENGTH_MIN_EXAMPLES:
        return
    words = col["words"][written].astype(np.int64)
    q1, median, q3 = np.percentile(words, [25, 50, 75])
    ordered = np.sort(words)
    high, low = LENGTH_LONG_FACTOR * q3, LENGTH_SHORT_FACTOR * q1
    typical = f"most in this task have {q1:.0f}–{q3:.0f} (median {median:.0f})"
    for row, n in zip(written.tolist(), words.tolist(), strict=True):
        if n > high:
            how = "long"
        elif n < low and np.searchsorted(ordered, 2 * n, side="right") - 1 < LENGTH_SHORT_CLUSTER * (len(ordered) - 1):
            how = "short"  # (nearly) nothing else within twice its length
        else:
            continue
        rows.append(row)
        found.append(
            rules.finding(
                "length_outlier",
                f"Unusually {how}: {_words(n)}; {typical}.",
                words=n,
                typical_words=round(float(median)),
                q1=round(float(q1)),
                q3=round(float(q3)),
                low=math.floor(low),
                high=math.ceil(high),
            )
        )


def _words(n: int) -> str:
    return f"{n} word" if n == 1 else f"{n} words"
