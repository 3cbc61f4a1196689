"""The checks of a task's preference pairs, stored on each pair (`checks`: ",identical,short,") so that the pairs list
filters and counts them with plain queries:

- identical: chosen and rejected are the same text, or nearly (at most NEAR_CHANGE of the word pairs differ, or
  the same text but for case, spacing and punctuation);
- short: the chosen side is shorter than MIN_CHOSEN_CHARS characters (setting PAIR_MIN_CHOSEN_CHARS);
- repeated: the same prompt, chosen and rejected as an earlier pair;
- contradicts: for the same prompt, the chosen side of this pair is the rejected side of another, or its rejected
  side is chosen in another.

`pair_checks_run` reads the task's pairs once in id order (streamed) and keeps one 8-byte key per side and pair:
linear in the pairs, and each pair's texts are read once (the word-pair overlap is linear in a text's length).
"""

from collections import Counter
from hashlib import blake2b
from itertools import islice

from django.conf import settings
from django.db import transaction

from annotate.models import Task
from annotate.quality.text import fold
from models_loop.change import similarity

from .models import PreferencePair

CHECKS = {
    "identical": "Chosen and rejected (nearly) the same",
    "short": "Chosen too short",
    "repeated": "The same pair twice",
    "contradicts": "Chosen here, rejected in another pair",
}
NEAR_CHANGE = 0.05  # at most this share of word pairs differs: nearly identical
MIN_CHOSEN_CHARS = 5
CHUNK = 2_000


def min_chosen_chars() -> int:
    return int(getattr(settings, "PAIR_MIN_CHOSEN_CHARS", MIN_CHOSEN_CHARS))


def _key(*parts: bytes | str) -> bytes:
    digest = blake2b(digest_size=8)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x1f")
    return digest.digest()


def pair_problems(chosen: str, rejected: str, minimum: int | None = None) -> list[str]:
    """The checks one pair fails on its own (identical, short)."""
    found = []
    folded_chosen, folded_rejected = fold(chosen), fold(rejected)
    if folded_chosen == folded_rejected or 1 - similarity(chosen, rejected) <= NEAR_CHANGE:
        found.append("identical")
    if len(chosen.strip()) < (min_chosen_chars() if minimum is None else minimum):
        found.append("short")
    return found


def pair_checks_run(*, task: Task) -> dict[str, int]:
    """Check every pair of `task` and store what each fails; return the count per check."""
    minimum = min_chosen_chars()
    seen_pairs: set[bytes] = set()
    chosen_keys: Counter[bytes] = Counter()
    rejected_keys: Counter[bytes] = Counter()
    found: dict[int, list[str]] = {}
    sides: list[tuple[int, bytes, bytes]] = []
    rows = (
        PreferencePair.objects.filter(task=task)
        .order_by("id")
        .values_list("id", "prompt_hash", "chosen", "rejected", "checks")
        .iterator(chunk_size=CHUNK)
    )
    stored: dict[int, str] = {}
    for pk, prompt, chosen, rejected, checks in rows:
        problems = pair_problems(chosen, rejected, minimum)
        chosen_key, rejected_key = _key(prompt, fold(chosen)), _key(prompt, fold(rejected))
        pair_key = _key(chosen_key, rejected_key)
        if pair_key in seen_pairs:
            problems.append("repeated")
        seen_pairs.add(pair_key)
        chosen_keys[chosen_key] += 1
        rejected_keys[rejected_key] += 1
        sides.append((pk, chosen_key, rejected_key))
        if problems:
            found[pk] = problems
        if checks:
            stored[pk] = checks
    counts = dict.fromkeys(CHECKS, 0)
    changes: dict[int, str] = {}
    for pk, chosen_key, rejected_key in sides:
        problems = found.get(pk, [])
        itself = int(chosen_key == rejected_key)  # a pair whose sides are the same text: "identical", not this
        if rejected_keys[chosen_key] > itself or chosen_keys[rejected_key] > itself:
            problems = [*problems, "contradicts"]
        for name in problems:
            counts[name] += 1
        text = f",{','.join(problems)}," if problems else ""
        if stored.get(pk, "") != text:
            changes[pk] = text
    items = iter(changes.items())
    while batch := list(islice(items, CHUNK)):
        with transaction.atomic():
            PreferencePair.objects.bulk_update(
                [PreferencePair(pk=pk, checks=text) for pk, text in batch], ["checks"], batch_size=CHUNK
            )
    return counts


def check_counts(task: Task) -> dict[str, int]:
    """The stored count per check (one query each: four)."""
    pairs = PreferencePair.objects.filter(task=task)
    return {name: pairs.filter(checks__contains=f",{name},").count() for name in CHECKS}
