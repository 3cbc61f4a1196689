"""Bounded work in the quality checks (issue 12): the answers stay what the old code gave on ordinary text, and hostile
text (50,000 repeated words, a 60,000-letter label, 100,000 spaces) gets the right answer with bounded work.

Each hostile test counts the work where it can (the automaton's steps) and also runs under a CPU guard
(tests/guards.py) many times what the bounded code needs: the old code took from 30 s to many minutes on the same
input, so the guard stops it instead of letting the suite hang.
"""

import difflib
import math
import random
import re
from unittest.mock import patch

import pandas as pd
import pytest
from django.urls import reverse
from hypothesis import event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_django.asserts import assertContains

from annotate import services
from annotate.models import Example
from annotate.quality import TaskRules, check_example, check_task, checks, leaks
from annotate.quality import style as style_checks
from annotate.quality.longest_run import LongestRun
from annotate.quality.style import opener as _opener
from tests.guards import cpu_budget

TEXT = TaskRules(output_format="text")
QUOTES = TaskRules(output_format="text", input_reuse="quotes")
JSON = TaskRules(output_format="json")
HTMX = {"HX-Request": "true"}

# Finding 1: an instruction of repeated words and a completion of the same words plus one. 49,998 words keep the
# completion (99,997 characters) within the 100,000-character limit, so every way in accepts it.
REPEATED = " ".join(["a"] * 49_998)


def reference_longest_run(a: list, b: list) -> tuple[int, int]:
    """What the leak check used before: difflib's longest matching block, as (size, start in a)."""
    match = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size, match.a if match.size else 0


def reference_leak(rules: TaskRules, completion: str, sources: dict[str, str]) -> tuple[str, int, int] | None:
    """The leak check's rules 3 and 4 (leaks.py) computed the slow, obvious way, with difflib on every source (texts
    of lowercase words separated by single spaces, so folding changes nothing, and no colon, so no heading):
    (where, words, start in the completion)."""
    words = completion.split(" ") if completion else []
    n = len(words)
    mode = rules.input_reuse
    if not n or mode == leaks.TRANSFORMS:
        return None
    present = [(name, text) for name, text in sources.items() if text]
    if n >= leaks.LEAK_MIN_WORDS:
        need = max(leaks.LEAK_MIN_WORDS, math.ceil(leaks.LEAK_SHARE * n - 1e-9))
        best = None
        for name, text in present:
            if mode == leaks.QUOTES and name != "instruction":
                continue
            size, start = reference_longest_run(words, text.split(" "))
            if size >= need and (best is None or size > best[1]):
                best = (checks.FIELD_NAMES[name], size, start)
        if best is not None:
            return best
    for name, text in present:
        field = text.split(" ")
        if name == "instruction" or len(field) < leaks.WHOLE_FIELD_MIN_WORDS:
            continue
        size, start = reference_longest_run(words, field)
        if size >= math.ceil(leaks.WHOLE_FIELD_SHARE * len(field) - 1e-9):
            return checks.FIELD_NAMES[name], size, start
    return None


def leak_of(findings):
    return next((f for f in findings if f.code == "leak"), None)


# The longest run ------------------------------------------------------------------------------------------------

small_words = st.lists(st.integers(min_value=0, max_value=3), max_size=40)


@given(a=small_words, b=small_words)
@example(a=[0, 1, 0, 1], b=[1, 0, 1, 0])  # two longest runs: the one that starts first in a
@example(a=[], b=[0])
def test_longest_run_equals_difflibs_longest_match(a, b):
    assert LongestRun(a).longest_in(b) == reference_longest_run(a, b)


@given(a=st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=300), b=small_words)
def test_longest_run_work_is_linear(a, b):
    automaton = LongestRun(a)
    # at most 3n transitions are ever made, and moving them to split states is amortised linear (about 4n measured)
    assert automaton.steps <= 6 * len(a)
    built = automaton.steps
    automaton.longest_in(b)
    assert automaton.steps - built <= 2 * len(b)  # each word read: one step, plus walks paid for by earlier words


def test_longest_run_of_repeated_words_is_found_with_linear_work():
    words = REPEATED.split(" ")
    with cpu_budget(2):
        automaton = LongestRun(words)
        built = automaton.steps
        assert automaton.longest_in([*words, "b"]) == (49_998, 0)
    assert built == len(words)  # one transition a word: each state extends the last
    assert automaton.steps - built <= 2 * (len(words) + 1)


# The leak check: the fast search gives the slow, obvious answer ----------------------------------------------------

vocabulary = st.sampled_from(["a", "b", "c", "d", "e"])
words = st.lists(vocabulary, max_size=30)
filler = st.lists(vocabulary, max_size=10)


@st.composite
def leaky_example(draw) -> tuple[str, dict[str, str]]:
    """A completion, and prompt fields that often hold part of it (a run cut out and put among other words)."""
    completion = draw(words)
    sources = {}
    for name in ("instruction", "context", "input"):
        size = draw(st.integers(min_value=0, max_value=len(completion)))
        start = draw(st.integers(min_value=0, max_value=len(completion) - size))
        piece = completion[start : start + size] if draw(st.booleans()) else []
        sources[name] = " ".join(draw(filler) + piece + draw(filler))
    return " ".join(completion), sources


@hypothesis_settings(max_examples=400, deadline=None)
@given(example_=leaky_example(), rules=st.sampled_from([TEXT, QUOTES, JSON]), exact_only=st.booleans())
@example(
    example_=("a b c d e a b c d", {"instruction": "x a b c d e a b c y", "context": "", "input": ""}),
    rules=TEXT,
    exact_only=False,
)
def test_leak_findings_equal_the_obvious_check(example_, rules, exact_only):
    completion, sources = example_
    # exact_only: the C-level pre-filter switched off (as past its byte limit), so both paths are compared
    limit = 0 if exact_only else leaks._FILTER_BYTES
    with patch.object(leaks, "_FILTER_BYTES", limit):
        found = leak_of(check_example(rules, completion=completion, **sources))
    expected = reference_leak(rules, completion, sources)
    event("no leak" if expected is None else "a leaked run")  # both are reached
    if expected is None:
        assert found is None
        return
    where, size, start = expected
    assert (found.detail["where"], found.detail["words"]) == (where, size)
    quoted = " ".join(completion.split(" ")[start : start + size])
    quoted = quoted if len(quoted) <= leaks.QUOTE_CHARS else quoted[: leaks.QUOTE_CHARS - 1] + "…"
    assert found.message.endswith(f"“{quoted}”")
    # the evidence points at the run in both texts
    start_char, end_char = found.detail["completion_span"]
    assert completion[start_char:end_char] == " ".join(completion.split(" ")[start : start + size])
    field_start, field_end = found.detail["field_span"]
    assert sources[found.detail["field"]][field_start:field_end] == completion[start_char:end_char]


def test_a_leak_in_ordinary_text_is_quoted_and_located_as_written():
    completion = "The heating does NOT come on any more, what should I do? Call us."
    source = "My T3 blinks and the heating does not come on any more, what should I do?"
    found = leak_of(check_example(TEXT, instruction="Answer.", input=source, completion=completion))
    assert {k: found.detail[k] for k in ("field", "where", "words", "share")} == {
        "field": "input",
        "where": "the input",
        "words": 12,
        "share": 0.857,
    }
    assert found.message.endswith("“The heating does NOT come on any more, what should I do”")
    start, end = found.detail["field_span"]
    assert source[start:end] == "the heating does not come on any more, what should I do"
    start, end = found.detail["completion_span"]
    assert completion[start:end] == "The heating does NOT come on any more, what should I do"


# The leak check: hostile input (finding 1) -----------------------------------------------------------------------


def test_leak_of_50000_repeated_words_is_found_within_the_guard():
    with cpu_budget(2):
        found = leak_of(check_example(TEXT, instruction=REPEATED, completion=REPEATED + " b"))
    assert (found.detail["where"], found.detail["words"], found.detail["share"]) == ("the instruction", 49_998, 1.0)
    assert found.message.startswith("The instruction already holds 49998 of the 49999 words of the completion: “a a a")


def test_a_long_completion_against_a_long_prompt_skips_the_prefilter_and_finds_the_run():
    rng = random.Random(12)
    prompt = " ".join(rng.choice("abcdefgh") for _ in range(40_000))
    completion = " ".join(rng.choice("abcdefgh") for _ in range(2_000)) + " " + prompt[:19_999]  # 10,000 words of it
    with cpu_budget(2):
        found = leak_of(check_example(TEXT, instruction=prompt, completion=completion))
    assert found.detail["where"] == "the instruction"
    assert found.detail["words"] >= 10_000


def test_a_field_of_30000_headings_is_read_in_linear_time():
    # every "b:" is a heading whose passage ends at the next one: the passages never overlap, so the work is linear
    prompt = "Intro. " + "a. b: c " * 30_000
    with cpu_budget(2):
        assert leak_of(check_example(TEXT, instruction="Answer.", input=prompt, completion="c")) is None
        found = leak_of(
            check_example(TEXT, instruction="Answer.", input=prompt + "\nAnswer: c d e f", completion="c d e f")
        )
    assert found.detail["rule"] == "answer_heading"


def test_a_paragraph_in_a_label_task_gets_no_letter_by_letter_suggestion():
    # A 60,000-letter label (a lead can type one) and a 99,000-letter answer: "did you mean" compared them letter by
    # letter with difflib, 32 s of CPU for one autosave.
    rng = random.Random(3)
    letters = [chr(0x4E00 + i) for i in range(150)]
    label = "".join(rng.choice(letters) for _ in range(60_000))
    rules = TaskRules(output_format="label", labels=[label, "positive"])
    completion = "".join(rng.choice(letters) for _ in range(99_000))
    with cpu_budget(2):
        [problem] = check_example(rules, instruction="Classify.", completion=completion)
    assert problem.code == "format"
    assert problem.detail == {"suggestion": None}


def test_a_near_miss_of_a_label_still_gets_a_suggestion():
    rules = TaskRules(output_format="label", labels=["positive", "negative"])
    [problem] = check_example(rules, instruction="Classify.", completion="postive")
    assert problem.detail == {"suggestion": "positive"}


def test_three_feedback_requests_on_the_hostile_example_each_answer_with_the_leak(client, task, annotator):
    example = services.example_write_new(
        task=task, user=annotator, fields={"instruction": REPEATED}, completion="first draft", kind="happy"
    )
    client.force_login(annotator)
    url = reverse("annotate:feedback", args=[task.slug, example.uuid])
    with cpu_budget(6):
        for _ in range(3):
            response = client.post(url, {"completion": REPEATED + " b"}, headers=HTMX)
            assertContains(response, 'data-code="leak"')


def test_save_and_submit_of_the_hostile_example_store_the_leak(task, annotator):
    example = services.example_write_new(
        task=task, user=annotator, fields={"instruction": REPEATED}, completion="first draft", kind="happy"
    )
    with cpu_budget(4):
        example = services.example_save(
            example=example, user=annotator, completion=REPEATED + " b", kind="happy", expected_version=example.version
        )
        example = services.example_submit(
            example=example, user=annotator, completion=REPEATED + " b", kind="happy", expected_version=example.version
        )
    stored = Example.objects.get(pk=example.pk)
    assert stored.status == Example.Status.SUBMITTED
    [leak] = [w["detail"] for w in stored.warnings if w["code"] == "leak"]
    assert (leak["where"], leak["words"], leak["share"]) == ("the instruction", 49_998, 1.0)
    assert leak["field"] == "instruction"
    assert leak["completion_span"] == [0, len(REPEATED)]


def test_the_task_wide_scan_with_one_hostile_example_stays_linear():
    rows = [
        {
            "id": i,
            "instruction": f"Question {i} about the thermostat model T{i} and its blinking amber light?",
            "completion": f"Hold the reset button of the T{i} for ten seconds, then wait for the light.",
        }
        for i in range(2_000)
    ]
    hostile = " ".join(["a"] * 20_000)  # 40 KB
    rows.append({"id": 10**6, "instruction": hostile, "completion": hostile + " b"})
    with cpu_budget(10):
        report = check_task(pd.DataFrame(rows), TEXT)
    [leak] = [f for f in report.for_example(10**6) if f.code == "leak"]
    assert (leak.detail["where"], leak.detail["words"], leak.detail["share"]) == ("the instruction", 20_000, 1.0)
    assert report.counts().get("leak") == 1


# The task-wide patterns -----------------------------------------------------------------------------------------

OLD_OPENER = re.compile(r"\s*([^\n.!?,:;]{1,40}+)([,!:\n])")  # greedy "\s*": backtracks over spaces


@given(st.text(alphabet=" \t\n\r\x0b.!?,:;aHiyes", max_size=60))
@example("  \nHi, there")
@example(" ,Hi")
def test_the_opener_pattern_finds_what_the_backtracking_one_found(completion):
    found = _opener(completion)
    with patch.object(style_checks, "_OPENER", OLD_OPENER):  # the same rules with the pattern as it was
        assert found == _opener(completion)


@pytest.mark.parametrize("space", [" ", "\t", "\r "])
def test_an_opening_of_20_million_spaces_is_read_once(space):
    # the greedy pattern gave back each space and tried 40 more characters after it: 2 s or more for this text
    completion = space * (20_000_000 // len(space)) + "x"
    with cpu_budget(0.5):
        assert _opener(completion) == ""
