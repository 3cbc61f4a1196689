"""The quality check library at task scale: 1,000,000 synthetic examples (~1 KB each) through check_task.

`python -m benchmarks quality` (or `python -m benchmarks quality --n 100000` for a shorter run). Pure
in-process, no database. The examples come in chunks of 20,000 rows, as a server-side cursor would deliver them,
with planted issues at known rows: exact duplicates (changed case and punctuation), near duplicates (one word
changed), leaks (the answer left in the input after "Answer:"), contradictions (approved duplicates with different
answers), stray whitespace, an unusual opening, a missing sign-off and length outliers. Prints the seconds per check,
rows/s, peak RSS and, per planted issue, how many were found (recall) and how many other rows got that warning.

Target: the whole task-wide pipeline, database read included, within 120 s and 1 GB for 1M examples, so the library
should stay well under ~90 s on the 2-core machine.
"""

import argparse
import sys
import time

import numpy as np
import pandas as pd

from annotate.quality import check_example, check_task
from annotate.quality.checks import TaskRules
from annotate.quality.text import fold, prompt_key
from benchmarks.common import peak_rss

N = 1_000_000
CHUNK = 20_000
SIGNOFF = "\n\nBest regards,\nSkylark Support"

# planted issues: row number modulo 100 (and the copy's source, 50 or 40 rows earlier in the same chunk)
DUPLICATE, NEAR, LEAK, WHITESPACE, OPENER, NO_SIGNOFF = 7, 13, 29, 41, 53, 61
CONTRADICTION_EVERY = 200  # every other planted duplicate: both approved, different answers
OUTLIER_EVERY, OUTLIER_AT = 1000, 77


def _vocabulary(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-English words and their cumulative Zipf-like frequencies; some words carry punctuation."""
    function = [
        "the",
        "of",
        "and",
        "to",
        "a",
        "in",
        "is",
        "that",
        "it",
        "for",
        "on",
        "was",
        "with",
        "as",
        "be",
        "at",
        "by",
        "this",
        "have",
        "from",
        "or",
        "an",
        "are",
        "not",
        "but",
        "you",
        "your",
        "can",
        "will",
        "if",
        "my",
        "do",
        "how",
        "what",
        "when",
        "should",
        "after",
        "before",
    ]
    syllables = [
        "ther",
        "mo",
        "stat",
        "light",
        "am",
        "ber",
        "re",
        "set",
        "sched",
        "ule",
        "app",
        "wi",
        "fi",
        "pro",
        "gram",
        "heat",
        "cool",
        "sen",
        "sor",
        "bat",
        "ter",
        "y",
        "hub",
        "zone",
        "mode",
        "dis",
        "play",
    ]
    content = {"".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(30_000)}
    words = function + sorted(content)
    words += [w + "," for w in words[40:2040:4]] + [w + "." for w in words[41:2041:4]]
    ranks = np.arange(1, len(words) + 1, dtype=np.float64)
    p = 1 / ranks**1.07
    return np.array(words, dtype=object), np.cumsum(p / p.sum())


def _texts(rng, vocab, cdf, n: int, lengths: tuple[int, int]) -> list[str]:
    """n texts of a random number of words in `lengths`; one join and one split for the whole batch."""
    sizes = rng.integers(*lengths, size=n)
    drawn = vocab[np.searchsorted(cdf, rng.random(int(sizes.sum())), side="right").clip(max=len(vocab) - 1)]
    drawn = np.insert(drawn, np.cumsum(sizes)[:-1], "\x00")
    return " ".join(drawn.tolist()).split(" \x00 ")


def generate(n: int, seed: int = 6):
    """Chunks of synthetic examples and the planted row numbers per issue."""
    rng = np.random.default_rng(seed)
    vocab, cdf = _vocabulary(rng)
    planted: dict[str, set[int]] = {
        k: set()
        for k in (
            "duplicate",
            "near_duplicate",
            "leak",
            "contradiction",
            "whitespace",
            "inconsistent_prefix",
            "inconsistent_signoff",
            "length_outlier",
        )
    }

    def chunks():
        for base in range(0, n, CHUNK):
            m = min(CHUNK, n - base)
            instruction = [t[0].upper() + t[1:] + "?" for t in _texts(rng, vocab, cdf, m, (10, 22))]
            context = _texts(rng, vocab, cdf, m, (40, 90))
            for i in range(0, m, 2):
                context[i] = ""  # half the tasks' examples come without context
            source_input = _texts(rng, vocab, cdf, m, (30, 60))
            completion = [t[0].upper() + t[1:] + "." + SIGNOFF for t in _texts(rng, vocab, cdf, m, (30, 70))]
            status = rng.choice(["approved", "submitted", "draft"], size=m, p=[0.7, 0.2, 0.1]).astype(object)
            kind = rng.choice(["happy", "edge", "negative", "ambiguous"], size=m, p=[0.8, 0.1, 0.05, 0.05])
            for i in range(m):
                row, slot = base + i, (base + i) % 100
                if slot == DUPLICATE and i >= 50:
                    j = i - 50
                    instruction[i] = instruction[j].upper().replace("?", " ?!")
                    context[i], source_input[i] = context[j], source_input[j].replace(",", " ,  ")
                    planted["duplicate"].update((row, row - 50))
                    if row % CONTRADICTION_EVERY == DUPLICATE:
                        status[i] = status[j] = "approved"
                        planted["contradiction"].update((row, row - 50))
                    else:
                        completion[i] = completion[j]
                elif slot == NEAR and i >= 40:
                    j = i - 40
                    words = source_input[j].split()
                    words[len(words) // 2] = "replacementword"
                    instruction[i], context[i], source_input[i] = instruction[j], context[j], " ".join(words)
                    completion[i] = completion[j]
                    planted["near_duplicate"].update((row, row - 40))
                elif slot == LEAK:
                    # the answer left in the input under a heading (issue 14: quoting part of the input is no leak)
                    source_input[i] += "\nAnswer: " + completion[i].removesuffix(SIGNOFF)
                    planted["leak"].add(row)
                elif slot == WHITESPACE:
                    completion[i] += "  \n"
                    planted["whitespace"].add(row)
                elif slot == OPENER:
                    completion[i] = "Sure! " + completion[i]
                    planted["inconsistent_prefix"].add(row)
                elif slot == NO_SIGNOFF:
                    completion[i] = completion[i].removesuffix(SIGNOFF)
                    planted["inconsistent_signoff"].add(row)
                elif row % OUTLIER_EVERY == OUTLIER_AT:
                    completion[i] = "Fine." if row % 2000 == OUTLIER_AT else completion[i] * 25
                    planted["length_outlier"].add(row)
            # the stored services.prompt_hash, as the database read delivers it
            hashes = [prompt_key((fold(instruction[i]), fold(context[i]), fold(source_input[i]))) for i in range(m)]
            yield pd.DataFrame(
                {
                    "id": np.arange(base, base + m),
                    "prompt_hash": hashes,
                    "instruction": instruction,
                    "context": context,
                    "input": source_input,
                    "completion": completion,
                    "kind": kind,
                    "status": status,
                }
            )

    return chunks(), planted


def _per_call_microseconds(rules: TaskRules) -> float:
    rng = np.random.default_rng(1)
    vocab, cdf = _vocabulary(rng)
    texts = _texts(rng, vocab, cdf, 400, (40, 60))
    started = time.perf_counter()
    for i in range(0, 400, 4):
        check_example(rules, instruction=texts[i], context=texts[i + 1], input=texts[i + 2], completion=texts[i + 3])
    return (time.perf_counter() - started) / 100 * 1e6


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks quality", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N, help=f"examples to generate (default {N:,})")
    n = parser.parse_args(argv or []).n
    task = TaskRules(output_format="text", coverage_targets={"negative": 0.1}, blocking_checks=["leak"])
    print(f"   check_example on ~1 KB: {_per_call_microseconds(task):.0f} µs a call")
    chunks, planted = generate(n)
    generated = [0.0, 0.0]  # wall, cpu

    def timed():
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            frame = next(chunks, None)
            generated[0] += time.perf_counter() - wall
            generated[1] += time.process_time() - cpu
            if frame is None:
                return
            yield frame

    wall, cpu = time.perf_counter(), time.process_time()
    report = check_task(timed(), task)
    wall = time.perf_counter() - wall - generated[0]
    cpu = time.process_time() - cpu - generated[1]
    peak_mb = peak_rss() / 2**20
    print(
        f"   {n:,} examples: {wall:.1f} s wall ({n / wall:,.0f} rows/s), {cpu:.1f} s cpu; generating them took "
        f"{generated[0]:.1f} s more (not counted)"
    )
    print("   seconds per step: " + " · ".join(f"{name} {seconds:.1f}" for name, seconds in report.timings.items()))
    print(f"   peak RSS {peak_mb:,.0f} MB (whole process: generator chunk, compact columns, signatures, findings)")
    found = report.findings.groupby("code")["example_id"].agg(lambda ids: set(ids.tolist()))
    for code, rows in planted.items():
        got = found.get(code, set())
        hit = len(rows & got)
        recall = hit / len(rows) if rows else 1.0
        other = len(got - rows)
        print(f"   {code:<21} planted {len(rows):>7,} · found {hit:>7,} (recall {recall:.1%}) · other rows {other:>7,}")
    others = {code: len(rows) for code, rows in found.items() if code not in planted}
    print(f"   other warnings: {others} · task: {[f.message for f in report.task_findings]}")
    print(f"   tokens: prompt {report.totals['prompt_tokens']:,} · completion {report.totals['completion_tokens']:,}")


if __name__ == "__main__":
    run(sys.argv[1:])
