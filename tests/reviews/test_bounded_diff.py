"""Bounded diffs on the review screens (issue 12): word by word as before on ordinary edits, and on hostile texts a
correct diff (or a coarse one that says so) within a fixed number of matcher steps, and pages that answer.

Finding 2: an annotator submits "x" plus 49,999 lines of "a", gets it flagged and resubmits "y" plus the same lines;
the review page, the timeline and the reviewer's "next" timed out (a quadratic line diff). The budget counts are
deterministic; the CPU guard (tests/guards.py) only stops the old code, which took many minutes, from hanging.
"""

import difflib
import html
import random
import re

import pytest
from django.urls import reverse
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_django.asserts import assertContains

from annotate import services as annotate_services
from annotate.models import Example, Revision
from reviews import services
from reviews.diff import DIFF_STEPS, Budget, line_opcodes, opcodes, text_diff
from tests.guards import cpu_budget

OLD = "x\n" + "a\n" * 49_999  # 100,000 characters: the longest completion there may be
NEW = "y\n" + "a\n" * 49_999
NOTE = re.compile(r'<span class="muted small" data-testid="diff-note">[^<]*</span>\n')


def sides(diff: str) -> tuple[str, str]:
    """The old and the new text a diff shows: without the note, the old without <ins>, the new without <del>."""
    body = NOTE.sub("", diff, count=1)
    old = re.sub(r"<ins>.*?</ins>", "", body, flags=re.S).replace("<del>", "").replace("</del>", "")
    new = re.sub(r"<del>.*?</del>", "", body, flags=re.S).replace("<ins>", "").replace("</ins>", "")
    return html.unescape(old), html.unescape(new)


# The matcher -----------------------------------------------------------------------------------------------------

tokens = st.lists(st.integers(min_value=0, max_value=4), max_size=30)


@given(a=tokens, b=tokens)
@example(a=[0, 0, 0, 1], b=[1, 0, 0, 0])
def test_opcodes_within_the_budget_are_difflibs(a, b):
    expected = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    assert opcodes(a, b, Budget(10**9)) == expected


@given(a=tokens, b=tokens, steps=st.integers(min_value=0, max_value=200))
def test_opcodes_past_the_budget_give_up_without_overspending(a, b, steps):
    budget = Budget(steps)
    found = opcodes(a, b, budget)
    assert budget.spent <= steps
    assert found is None or found == difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


lines = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "\n", "d e\n", "a"]), max_size=40)


@given(a=lines, b=lines, steps=st.sampled_from([0, 5, 50, 10**9]))
def test_line_opcodes_cover_both_texts_in_order(a, b, steps):
    found, exact = line_opcodes(a, b, Budget(steps))
    i = j = 0
    for tag, i1, i2, j1, j2 in found:
        assert (i1, j1) == (i, j)
        if tag == "equal":
            assert a[i1:i2] == b[j1:j2]
        i, j = i2, j2
    assert (i, j) == (len(a), len(b))
    if steps == 10**9:
        assert exact


# The diff a reviewer reads ----------------------------------------------------------------------------------------


def test_an_ordinary_edit_is_marked_word_by_word():
    diff = text_diff("Hold the round button for ten seconds.", "Hold the round button for 10 seconds.")
    assert diff == "Hold the round button for <del>ten</del><ins>10</ins> seconds."


def test_changes_separated_only_by_whitespace_read_as_one():
    assert text_diff("Say one two.", "Say uno dos.") == "Say <del>one two.</del><ins>uno dos.</ins>"


def test_user_text_in_a_diff_is_escaped():
    assert (
        text_diff("<b>bold</b>", "<i>bold</i>")
        == "<del>&lt;b&gt;bold&lt;/b&gt;</del><ins>&lt;i&gt;bold&lt;/i&gt;</ins>"
    )


texts = st.lists(st.sampled_from(["a", "b", "<c>", " ", "\n", "  ", "a\n", "&"]), max_size=40).map("".join)


@hypothesis_settings(max_examples=300)
@given(old=texts, new=texts, steps=st.sampled_from([0, 3, 30, 300, DIFF_STEPS]))
@example(old="a\nb\n", new="b\na\n", steps=0)
def test_a_diff_always_shows_both_texts_exactly(old, new, steps):
    # whichever way it was made (word by word, line by line, blocks shown whole), dropping the added parts gives the
    # old text and dropping the removed parts the new one
    assert sides(text_diff(old, new, budget=Budget(steps))) == (old, new)


def test_a_long_text_with_two_small_edits_is_still_marked_word_by_word():
    rng = random.Random(7)
    vocabulary = [f"word{i}" for i in range(3_000)]
    paragraphs = [" ".join(rng.choice(vocabulary) for _ in range(30)) for _ in range(400)]
    edited = list(paragraphs)
    edited[10] = edited[10].replace(edited[10].split()[5], "CHANGED", 1)
    edited[390] = edited[390] + " Added."
    old, new = "\n".join(paragraphs), "\n".join(edited)
    budget = Budget()
    diff = text_diff(old, new, budget=budget)
    assert 'data-testid="diff-note"' not in diff  # too long for one word diff, so line by line, then refined
    assert "<ins>CHANGED</ins>" in diff
    assert diff.count("<del>") == 1
    assert diff.count("<ins>") == 2
    assert "<ins> Added.</ins>" in diff
    assert sides(diff) == (old, new)
    assert budget.spent <= DIFF_STEPS


# Finding 2 -------------------------------------------------------------------------------------------------------


def test_the_hostile_resubmission_is_diffed_in_one_step():
    budget = Budget()
    with cpu_budget(2):
        diff = text_diff(OLD, NEW, budget=budget)
    assert diff == "<del>x</del><ins>y</ins>\n" + "a\n" * 49_999
    assert budget.spent == 1  # the middle is one word on each side: the common 99,999 characters are cut off


def test_texts_too_long_to_compare_are_shown_whole_with_a_note():
    old, new = OLD, "a\n" * 49_999 + "y\n"  # no common head or tail, and no line unique to both texts
    budget = Budget()
    with cpu_budget(2):
        diff = text_diff(old, new, budget=budget)
    assert diff.startswith(
        '<span class="muted small" data-testid="diff-note">50,000 lines shown as removed and 50,000 as added: '
        "the texts are too long to compare word by word.</span>\n<del>x\n"
    )
    assert sides(diff) == (old, new)
    assert budget.spent <= DIFF_STEPS


@pytest.mark.django_db
def test_the_diffs_of_one_page_share_one_budget_newest_first(task, annotator):
    # Each diff of these texts costs about 30% of a page's steps (its words are distinct, its 800 spaces are not),
    # so a page of five diffs cannot mark them all word by word: the newest ones are, the oldest get the note.
    example = annotate_services.example_write_new(
        task=task, user=annotator, fields={"instruction": "Say it."}, completion="", kind="happy"
    )
    rng = random.Random(5)
    for version in range(6):
        text = " ".join(f"w{rng.randrange(10**9)}" if i in (0, 799) else f"w{i}" for i in range(800))
        Revision.objects.create(
            example=example, text=text, reason=Revision.Reason.SUBMIT, author=annotator, example_version=version
        )
    steps = services.revision_history(example)
    by_revision = services.step_diffs(steps)
    diffs = [by_revision[step.revision.pk] for step in steps[1:]]
    noted = ['data-testid="diff-note"' in diff for diff in diffs]
    assert noted[-1] is False  # the newest diff, the one on the review screen, is word by word
    assert noted[0] is True
    assert noted.count(False) <= DIFF_STEPS // 600_000


@pytest.mark.django_db
def test_the_hostile_example_still_opens_for_reviewer_and_author(client, task, annotator, reviewer):
    example = annotate_services.example_write_new(
        task=task, user=annotator, fields={"instruction": "Repeat the letter."}, completion=OLD, kind="happy"
    )
    example = annotate_services.example_submit(
        example=example, user=annotator, completion=OLD, kind="happy", expected_version=example.version
    )
    services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"]
    )
    example.refresh_from_db()
    example = annotate_services.example_submit(
        example=example, user=annotator, completion=NEW, kind="happy", expected_version=example.version
    )
    assert example.status == Example.Status.SUBMITTED
    client.force_login(reviewer)
    with cpu_budget(10):
        page = client.post(reverse("reviews:next", args=[task.slug]), follow=True)  # the reviewer's "next pair"
        assertContains(page, "<del>x</del><ins>y</ins>", html=False)
        page = client.get(reverse("reviews:review", args=[task.slug, example.uuid]))
        assertContains(page, "Changes since the last text in review")
        assertContains(page, "<del>x</del><ins>y</ins>", html=False)
        client.force_login(annotator)
        page = client.get(reverse("reviews:example", args=[task.slug, example.uuid]))  # the author's timeline
        assertContains(page, "<del>x</del><ins>y</ins>", html=False)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_chromium_shows_the_hostile_diff_and_the_coarse_note(page, task, annotator, reviewer):
    from tests.browser import login
    from tests.conftest import ARTIFACTS

    shown = {}
    for name, old, new in (
        ("one-word", OLD, NEW),
        ("coarse", "x\n" + "a\n" * 2_000, "a\n" * 2_000 + "y\n"),  # no line to anchor on: the note
    ):
        example = annotate_services.example_write_new(
            task=task, user=annotator, fields={"instruction": f"Repeat the letter ({name})."}, completion=old,
            kind="happy",
        )  # fmt: skip
        example = annotate_services.example_submit(
            example=example, user=annotator, completion=old, kind="happy", expected_version=example.version
        )
        services.verdict_record(
            example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"]
        )
        example.refresh_from_db()
        shown[name] = annotate_services.example_submit(
            example=example, user=annotator, completion=new, kind="happy", expected_version=example.version
        )
    login(page, reviewer.username)
    ARTIFACTS.mkdir(exist_ok=True)
    for name, example in shown.items():
        page.goto(f"/tasks/{task.slug}/review/{example.uuid}/")
        diff = page.get_by_test_id("diff")
        page.get_by_role("heading", name="Changes since the last text in review").evaluate("e => e.scrollIntoView()")
        page.screenshot(path=str(ARTIFACTS / f"bounded-diff-{name}.png"))  # the viewport: the page is 50,000 lines
        if name == "one-word":
            assert diff.locator("del").first.inner_text() == "x"
            assert diff.locator("ins").first.inner_text() == "y"
        else:
            note = diff.get_by_test_id("diff-note")
            assert note.inner_text() == (
                "2,001 lines shown as removed and 2,001 as added: the texts are too long to compare word by word."
            )
