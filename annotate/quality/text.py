"""Text folding and token estimates shared by every check: pure Python, no Django.

`normalise` has the semantics of `annotate.services.normalise_prompt` (NFKC, casefold, apostrophes dropped, other
punctuation to a space, whitespace collapsed), so a prompt key computed here equals the `prompt_hash` the app
stores; the regexes are repeated here because importing services needs a configured Django, and the check library
must also run without one (benchmarks, a worker's pure step). A test pins the two implementations together.
"""

import hashlib
import re
import unicodedata
from collections.abc import Iterable

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
# Apostrophes are dropped rather than turned into a space, so "What's" and "whats", "don't" and "dont" fold to one
# word (issue 14: an apostrophe typed or left out is the same prompt). A quote mark made of apostrophes ('word')
# drops too, which changes nothing: the spaces around it still separate the words.
APOSTROPHES = "'\u2019\u02bc"
_APOSTROPHE = re.compile(f"[{APOSTROPHES}]")
# A word as `fold` sees it in the raw text: word characters joined by apostrophes ("What's" is one word). Used to map
# folded words back to character offsets of the text as written (the evidence of a finding).
_RAW_WORD = re.compile(f"\\w+(?:[{APOSTROPHES}]+\\w+)*")

# ASCII fast path: one C-level table maps letters to lower case, keeps digits and "_" (the ASCII \w), and turns
# every other byte (punctuation, whitespace, control characters) into a space. For ASCII text this is exactly
# normalise(text).encode() once the spaces are collapsed, several times faster than the two regex passes.
_ASCII_FOLD = bytes(
    (ord(chr(b).lower()) if re.fullmatch(r"\w", chr(b)) else 0x20) if b < 128 else 0x20 for b in range(256)
)


def normalise(text: str) -> str:
    """Case, whitespace and punctuation folded (the rules of services.normalise_prompt)."""
    text = _APOSTROPHE.sub("", unicodedata.normalize("NFKC", text).casefold())
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def fold(text: str) -> bytes:
    """`normalise(text)` as UTF-8 bytes: words separated by single spaces; fast for ASCII text."""
    if text.isascii():
        return b" ".join(text.encode().translate(_ASCII_FOLD, b"'").split())
    return normalise(text).encode()


def word_spans(text: str, n_words: int) -> list[tuple[int, int]] | None:
    """The [start, end) character offsets in `text` (as written) of each of its folded words, or None when they cannot
    be told apart from the raw text (NFKC changed the word boundaries: "½" folds to two words). Linear in the text;
    only called to show a finding's evidence."""
    spans = [m.span() for m in _RAW_WORD.finditer(text)]
    return spans if len(spans) == n_words else None


def prompt_key(folded_fields: Iterable[bytes], messages: Iterable[dict] = ()) -> str:
    """The prompt hash of services.prompt_hash, from already folded instruction, context and input."""
    parts = list(folded_fields)
    parts += [f"{m.get('role')}:".encode() + fold(str(m.get("content", ""))) for m in messages]
    return hashlib.sha256(b"\x1f".join(parts)).hexdigest()


# Token estimate. No exact tokenizer is available offline (tiktoken downloads its BPE ranks at run time), so the
# count blends two views of the text that bracket a BPE tokenizer on English: the pieces a pre-tokenizer would split
# (words and punctuation marks, each at least one token) and the character count / 4 (OpenAI's rule of thumb:
# about 4 characters or 0.75 words a token). CJK characters are about a token each, other non-ASCII characters
# (Cyrillic, Greek, accents, emoji) cost extra bytes-level tokens, so they add on top.
TOKEN_PIECE_WEIGHT = 0.5
TOKEN_CHARS_PER_TOKEN = 4.0
TOKEN_CJK_WEIGHT = 1.0
TOKEN_OTHER_NON_ASCII_WEIGHT = 0.25
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def _token_estimate(chars: int, pieces: int, cjk: int = 0, other_non_ascii: int = 0) -> int:
    if chars == 0:
        return 0
    blend = TOKEN_PIECE_WEIGHT * pieces + (1 - TOKEN_PIECE_WEIGHT) * chars / TOKEN_CHARS_PER_TOKEN
    return max(1, round(blend + TOKEN_CJK_WEIGHT * cjk + TOKEN_OTHER_NON_ASCII_WEIGHT * other_non_ascii))


def fold_counted(text: str) -> tuple[bytes, int, int]:
    """(fold(text), its number of words, count_tokens(text)) in one pass (the task-wide scan folds each text once)."""
    if not text.isascii():
        folded = normalise(text).encode()
        return folded, folded.count(b" ") + 1 if folded else 0, count_tokens(text)
    raw = text.encode()
    words = raw.translate(_ASCII_FOLD, b"'").split()
    n_words = len(words)
    folded = b" ".join(words)
    whitespace = raw.count(b" ") + raw.count(b"\n") + raw.count(b"\t") + raw.count(b"\r")
    # pieces = words + punctuation marks, and punctuation = bytes that are neither word characters nor whitespace
    pieces = n_words + len(raw) - (len(folded) - n_words + 1 if words else 0) - whitespace
    if not raw:
        return folded, 0, 0
    blend = TOKEN_PIECE_WEIGHT * pieces + (1 - TOKEN_PIECE_WEIGHT) * len(raw) / TOKEN_CHARS_PER_TOKEN
    return folded, n_words, max(1, round(blend))  # _token_estimate, inlined: this runs for every text of a task


def count_tokens(text: str) -> int:
    """An estimate of the tokens a GPT-style BPE tokenizer (cl100k/o200k) gives `text`; not an exact count.

    tokens ≈ 0.5 × (words + punctuation marks) + 0.5 × characters / 4, plus 1 per CJK character and 0.25 per other
    non-ASCII character. Calibrated on published BPE ratios (≈4 characters, ≈0.75 words a token for English) and on
    hand-tokenised samples, not on a real tokenizer: none can be loaded offline here. Expected error: English prose
    about ±15% (100 words, 560 characters: 126 estimated, about 130 real); JSON and code about ±25%; Chinese,
    Japanese, Korean about ±30%; other scripts (Cyrillic, Arabic, Devanagari) are the roughest and tend to come out
    low. Good for budgets and cost estimates; keep a 30% margin against a hard context limit.
    """
    if not text:
        return 0
    if text.isascii():
        return fold_counted(text)[2]
    text = unicodedata.normalize("NFKC", text)
    pieces = len(_WORD.findall(text)) + len(_PUNCTUATION.findall(text))
    cjk = len(_CJK.findall(text))
    other = sum(1 for char in text if ord(char) > 127) - cjk
    return _token_estimate(len(text), pieces, cjk, other)


def estimate_training_cost(total_tokens: int, *, price_per_million: float, epochs: int = 1) -> float:
    """The cost of fine-tuning on `total_tokens` for `epochs`, at `price_per_million` tokens. Raise ValueError."""
    if total_tokens < 0 or price_per_million < 0 or epochs < 1:
        raise ValueError("tokens and price must not be negative, and epochs must be at least 1")
    return total_tokens * epochs * price_per_million / 1_000_000
