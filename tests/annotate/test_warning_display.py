"""Quality warnings as people see them: the check's name (never its code), the message and the evidence, escaped, on
the review page, the timeline, the queue, the examples browser and the editor; links only to what the viewer may
open."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import Example
from annotate.quality_display import CONTEXT_CHARS, Segment, segments
from tests.factories import ExampleFactory
from tests.reviews.conftest import submit_new

pytestmark = pytest.mark.django_db
INPUT = "Customer wrote: <b>the ring stays amber</b> after updates & then it turns blue."
COMPLETION = "Summary: <b>the ring stays amber</b> after updates."


def with_warnings(task, warnings, **fields) -> Example:
    fields = {"status": "submitted", "completion": COMPLETION, "input": INPUT, **fields}
    codes = ",".join(sorted({w["code"] for w in warnings if "override" not in w}))
    return ExampleFactory(task=task, warnings=warnings, warning_codes=f",{codes}," if codes else "", **fields)


def review_page(client, task, example):
    return client.get(reverse("reviews:review", args=[task.slug, example.uuid]))


def test_a_leak_shows_the_overlap_marked_in_the_field_and_the_completion_escaped(client, task, reviewer):
    start = INPUT.index("<b>")
    end = INPUT.index("updates") + len("updates")
    cstart = COMPLETION.index("<b>")
    leak = {
        "code": "leak",
        "message": "The completion repeats 7 of the 8 words of the input.",
        "blocking": False,
        "detail": {"field": "input", "field_span": [start, end], "completion_span": [cstart, len(COMPLETION) - 1]},
    }
    example = with_warnings(task, [leak])
    client.force_login(reviewer)
    page = review_page(client, task, example)
    assertContains(page, "<strong>Answer leak:</strong>", html=False)
    field = (
        '<div class="fieldtext excerpt" data-testid="evidence-field">Customer wrote: '
        "<mark>&lt;b&gt;the ring stays amber&lt;/b&gt; after updates</mark> &amp; then it turns blue.</div>"
    )
    assertContains(page, field, html=False)
    completion = (
        '<div class="fieldtext excerpt" data-testid="evidence-completion">Summary: '
        "<mark>&lt;b&gt;the ring stays amber&lt;/b&gt; after updates</mark>.</div>"
    )
    assertContains(page, completion, html=False)
    assertContains(page, '<span class="muted small">Input</span>', html=False)  # the template's label of the field
    assertNotContains(page, "<b>the ring")  # user text is never markup


def test_a_leak_found_before_spans_existed_names_the_field_only(client, task, reviewer):
    old = {"code": "leak", "message": "It repeats all 8 words of the input.", "detail": {"where": "the input"}}
    client.force_login(reviewer)
    page = review_page(client, task, with_warnings(task, [old]))
    assertContains(page, "Found in the input.")
    assertNotContains(page, "<mark>")


def test_a_span_that_no_longer_fits_the_text_is_left_out(client, task, reviewer):
    stale = {"code": "leak", "message": "Leak.", "detail": {"field": "input", "field_span": [5, 10_000]}}
    client.force_login(reviewer)
    page = review_page(client, task, with_warnings(task, [stale]))
    assertNotContains(page, "<mark>")
    assertContains(page, "Found in Input.")  # still says where, without an excerpt


def test_duplicates_link_the_other_example_of_this_task_only(client, task, other_task, reviewer):
    twin = ExampleFactory(task=task, external_id="seed_task_7")
    foreign = ExampleFactory(task=other_task, external_id="secret_elsewhere")
    example = with_warnings(
        task,
        [
            {"code": "duplicate", "message": "The same prompt as 1 other example.",
             "detail": {"other_uuid": str(twin.uuid), "other_external_id": "seed_task_7"}},
            {"code": "contradiction", "message": "1 other approved example has a different completion.",
             "detail": {"other_uuid": str(foreign.uuid), "other_external_id": "secret_elsewhere"}},
            {"code": "near_duplicate", "message": "Nearly the same prompt as 1 other example.",
             "detail": {"examples": [twin.pk, foreign.pk]}},  # an older finding: ids of the group
        ],
    )  # fmt: skip
    client.force_login(reviewer)
    page = review_page(client, task, example)
    link = f'<a href="{reverse("reviews:example", args=[task.slug, twin.uuid])}">seed_task_7</a>'
    assertContains(page, link, count=2, html=False)  # the duplicate's and the near duplicate's
    assertNotContains(page, "secret_elsewhere")
    assertNotContains(page, str(foreign.uuid))
    assertContains(page, "<strong>Contradicting answers:</strong>", html=False)


def test_style_warnings_show_the_typical_opening_and_length(client, task, reviewer):
    example = with_warnings(
        task,
        [
            {"code": "inconsistent_signoff", "message": "85% of completions end with “Best regards,”.",
             "detail": {"typical": "Best regards,", "typical_share": 0.85}},
            {"code": "inconsistent_prefix", "message": "Only 4% of completions open with “Sure!”.",
             "detail": {"pattern": None, "share": 0.96, "this": "Sure!"}},  # older keys: no opening is typical
            {"code": "length_outlier", "message": "Unusually long.",
             "detail": {"chars": 9000, "q1": 120, "median": 200, "q3": 400}},
            {"code": "short", "message": "The completion is only 1 word long.", "detail": {"typical_words": 41.6}},
        ],
    )  # fmt: skip
    client.force_login(reviewer)
    page = review_page(client, task, example)
    assertContains(page, "<strong>Unusual sign-off:</strong>", html=False)
    assertContains(page, "Typical sign-off: “Best regards,” (85% of completions)")
    assertContains(page, "Typical opening: none at all (96% of completions)")
    assertContains(page, "Typical length in this task: 120–400 characters (median 200).")
    assertContains(page, "Typical length in this task: about 42 words.")
    for code in ("inconsistent_signoff", "inconsistent_prefix", "length_outlier"):
        assertNotContains(page, f">{code}<")
        assertNotContains(page, f"{code}:")


def test_queue_examples_browser_and_dashboard_findings_use_names_not_codes(client, task, lead):
    marked = {"code": "inconsistent_signoff", "message": "Ends differently.", "override": {"id": 1, "by": "rita"}}
    with_warnings(task, [{"code": "inconsistent_signoff", "message": "Only 1% of completions end with “return sum”."}])
    with_warnings(task, [marked], instruction="Another one?")
    client.force_login(lead)
    queue = client.get(reverse("reviews:queue", args=[task.slug]))
    assertContains(queue, ">Unusual sign-off</span>", html=False)
    assertContains(queue, "✓ Unusual sign-off")  # marked not a problem: shown apart
    assertNotContains(queue, ">inconsistent_signoff<")
    browser = client.get(reverse("annotate:examples", args=[task.slug]))
    assertContains(browser, 'title="Marked not a problem by rita: Ends differently."')
    assertNotContains(browser, ">inconsistent_signoff<")


def test_the_editor_shows_a_warning_overruled_for_this_text_and_open_for_another(client, task, annotator, reviewer):
    from annotate import overrides

    example = submit_new(task, annotator, "Hold the round button for ten seconds. ")
    assert ",whitespace," in example.warning_codes
    from reviews import services as review_services

    overrides.override_record(
        example=example, user=reviewer, roles={"reviewer"}, code="whitespace", version=example.version
    )
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"]
    )
    client.force_login(annotator)
    url = reverse("annotate:feedback", args=[task.slug, example.uuid])
    same = client.post(url, {"completion": "Hold the round button for ten seconds. "}, headers={"HX-Request": "true"})
    assertContains(same, "<strong>Stray whitespace:</strong> marked not a problem by rita for this text.", html=False)
    assertNotContains(same, "Blocks submit")
    other = client.post(url, {"completion": "Hold the button. "}, headers={"HX-Request": "true"})
    assertContains(other, "<strong>Stray whitespace:</strong> The completion ends with whitespace", html=False)
    assertNotContains(other, "marked not a problem")


def test_an_annotators_timeline_has_no_warning_buttons(client, task, annotator):
    example = submit_new(task, annotator, "Hold the round button for ten seconds. ")
    client.force_login(annotator)
    page = client.get(reverse("reviews:example", args=[task.slug, example.uuid]))
    assert page.status_code == 200
    assertNotContains(page, "data-not-a-problem")


def test_segments_are_bounded_and_refuse_spans_that_do_not_fit():
    assert segments("short text", [3, 99]) == []
    assert segments("short text", [4, 4]) == []
    assert segments("short text", "0,4") == []
    assert segments("short text", [True, 4]) == []  # JSON true is no offset
    assert segments("short text", (0, 5)) == [Segment("short", True), Segment(" text")]
    text = "a" * 1000 + "LEAK" + "b" * 1000
    out = segments(text, [1000, 1004])
    assert out == [Segment("…" + "a" * CONTEXT_CHARS), Segment("LEAK", True), Segment("b" * CONTEXT_CHARS + "…")]
    huge = segments("x" * 5000, [0, 5000])
    assert [s.marked for s in huge] == [True, False, True]
    assert sum(len(s.text) for s in huge) < 700
