"""The queue page, the review screen, verdicts through HTTP (htmx and plain), next and previous, the timeline."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services as annotate_services
from annotate.models import Example, Revision
from reviews import services
from reviews.models import Verdict
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
Status = Example.Status


def decide(client, task, example, **data):
    data.setdefault("version", example.version)
    follow = data.pop("follow", False)
    return client.post(
        reverse("reviews:decide", args=[task.slug, example.uuid]),
        data,
        follow=follow,
        **({"headers": HTMX} if data.pop("htmx", False) else {}),
    )


def next_pair(client, task, **data):
    """What the "Next" and "Start reviewing" buttons post."""
    query = data.pop("query", "")
    return client.post(reverse("reviews:next", args=[task.slug]) + query, data)


def test_next_claims_the_oldest_and_opens_the_review_screen(client, task, reviewer, submitted):
    first = submitted(completion="Hold the <b>round</b> button.", context="Thermostat T3")
    submitted(completion="Later one.")
    client.force_login(reviewer)
    response = next_pair(client, task)
    assert response.url == reverse("reviews:review", args=[task.slug, first.uuid])  # the pair's own address
    assert Example.objects.get(pk=first.pk).claimed_by == reviewer
    page = client.get(response.url)
    assertContains(page, "Hold the &lt;b&gt;round&lt;/b&gt; button.")  # user text escaped
    assertContains(page, 'data-testid="rendered-prompt"')
    assertContains(page, "Thermostat T3")
    assertContains(page, 'id="decide"')
    assertContains(page, "Answer briefly and politely.")  # the guidelines
    assertContains(page, 'data-testid="kind"')
    assertContains(page, "js/review.js")
    assert Example.objects.get(pk=first.pk).claimed_by == reviewer


def test_an_empty_queue_says_so(client, task, reviewer):
    client.force_login(reviewer)
    response = client.post(reverse("reviews:next", args=[task.slug]), follow=True)
    assert response.redirect_chain == [(reverse("reviews:queue", args=[task.slug]), 302)]
    assertContains(response, "Nothing else is waiting for your review.")


def test_the_review_screen_shows_the_warnings_and_chat_turns(client, task, reviewer):
    warning = {"code": "leak", "message": "The answer <copies> the input.", "blocking": False}
    example = ExampleFactory(
        task=task, status=Status.SUBMITTED, completion="Sure.", messages=[{"role": "user", "content": "Hi <there>"}],
        warnings=[warning], warning_codes=",leak,",
    )  # fmt: skip
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, example.uuid]))
    assertContains(page, 'data-code="leak"')
    assertContains(page, "The answer &lt;copies&gt; the input.")
    assertContains(page, "Hi &lt;there&gt;")


def test_approve_with_a_plain_post_goes_on_to_the_next_pair(client, task, reviewer, example, submitted):
    following = submitted(completion="Later one.")
    client.force_login(reviewer)
    response = decide(client, task, example, decision="approve")
    assert response.url == reverse("reviews:review", args=[task.slug, following.uuid])  # leased by this POST
    assert Example.objects.get(pk=example.pk).status == Status.APPROVED
    assert Example.objects.get(pk=following.pk).claimed_by == reviewer
    follow = client.get(response.url)
    assertContains(follow, "Approved “How do I restart my thermostat?”.")
    assertContains(follow, 'id="decide"')
    last = decide(client, task, following, decision="approve", follow=True)
    assert last.redirect_chain == [(reverse("reviews:queue", args=[task.slug]), 302)]
    assertContains(last, "Nothing else is waiting for your review.")


def test_htmx_flag_redirects_the_client_and_keeps_the_queue_filters(client, task, reviewer, example, annotator):
    client.force_login(reviewer)
    response = decide(
        client, task, example, decision="flag", reasons=["unclear", "format"], comment="Which button?",
        queue=f"kind=happy&annotator={annotator.pk}&order=risky&evil=1", htmx=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert response["HX-Redirect"] == (  # nothing else waits: the queue, filtered as before
        reverse("reviews:queue", args=[task.slug]) + f"?annotator={annotator.pk}&kind=happy&order=risky"
    )
    verdict = Verdict.objects.get()
    assert (verdict.decision, verdict.reasons, verdict.comment) == ("flag", ["unclear", "format"], "Which button?")


def test_a_refused_verdict_comes_back_as_the_form_fragment_with_the_reason(client, task, reviewer, example):
    client.force_login(reviewer)
    response = decide(client, task, example, decision="flag", comment="kept <text>", htmx=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="decide"' in html
    assert "Choose at least one reason" in html
    assert 'data-mode="flag"' in html  # the reviewer stays in the flag panel
    assert "kept &lt;text&gt;" in html
    assert not Verdict.objects.exists()


def test_a_stale_version_is_refused_with_a_reload_link(client, task, reviewer, example):
    client.force_login(reviewer)
    response = decide(client, task, example, decision="approve", version=example.version - 1, htmx=True)
    assertContains(
        response,
        f"anna changed this example since you opened it (now version {example.version}); "
        "reload to review the new text.",
    )
    assertContains(response, f"Reload version {example.version}")
    # The swapped form keeps the version the reviewer saw: pressing "a" again is refused again, not an approval
    # of a text still off screen.
    assertContains(response, f'name="version" value="{example.version - 1}"')
    again = decide(client, task, example, decision="approve", version=example.version - 1, htmx=True)
    assertContains(again, "reload to review the new text")
    assert Example.objects.get(pk=example.pk).status == Status.SUBMITTED
    # Without htmx, the whole page with the same message.
    page = decide(client, task, example, decision="approve", version=example.version - 1)
    assertContains(page, "<html")
    assertContains(page, "reload to review the new text")


def test_own_work_shows_no_decision_form_and_a_post_is_refused(client, task, reviewer, submitted):
    own = submitted(author=reviewer)
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, own.uuid]))
    assertContains(page, "You wrote this example")
    assertNotContains(page, 'id="decide"')
    assertContains(decide(client, task, own, decision="approve", htmx=True), "You wrote this example")
    assert Example.objects.get(pk=own.pk).status == Status.SUBMITTED


def test_an_example_held_by_another_reviewer_is_shown_without_the_form(
    client, task, reviewer, second_reviewer, example
):
    services.review_take(example=example, reviewer=second_reviewer)
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, example.uuid]))
    assertContains(page, "remy is reviewing this example right now")
    assertNotContains(page, 'id="decide"')


def test_edit_and_approve_shows_the_diff_on_the_timeline(client, task, reviewer, example, annotator):
    client.force_login(reviewer)
    response = decide(
        client, task, example, decision="edit", completion="Hold the round button for 10 seconds.", kind="edge"
    )
    assert response.status_code == 302
    revision = Revision.objects.filter(example=example).last()
    assert (revision.reason, revision.author) == ("reviewer_edit", reviewer)
    client.force_login(annotator)  # the author sees the timeline of their example
    page = client.get(reverse("reviews:example", args=[task.slug, example.uuid]))
    assertContains(page, "<del>ten</del><ins>10</ins>", html=False)
    assertContains(page, "Reviewer edit")


def test_the_review_screen_diffs_a_resubmission_against_the_text_reviewed_before(
    client, task, reviewer, annotator, example
):
    services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"]
    )
    example.refresh_from_db()
    example = annotate_services.example_save(
        example=example, user=annotator, completion="Hold the <round> button for ten seconds, then wait.",
        kind="happy", expected_version=example.version,
    )  # fmt: skip
    example = annotate_services.example_submit(
        example=example, user=annotator, completion=example.completion, kind="happy", expected_version=example.version
    )
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, example.uuid]))
    assertContains(page, "Changes since the last text in review")
    assertContains(page, "<del>round</del><ins>&lt;round&gt;</ins>", html=False)
    assertContains(page, "ten <del>seconds.</del><ins>seconds, then wait.</ins>", html=False)
    assertContains(page, "Earlier verdicts (1)")


def test_the_annotator_sees_the_flag_in_my_work(client, task, reviewer, annotator, example):
    client.force_login(reviewer)
    decide(client, task, example, decision="flag", reasons=["inaccurate"], comment="Ten seconds, not five.")
    client.force_login(annotator)
    page = client.get(reverse("annotate:my_work", args=[task.slug]) + "?status=flagged")
    assertContains(page, "inaccurate")
    assertContains(page, "Ten seconds, not five.")


def test_previous_opens_the_pair_judged_last_then_the_one_before(client, task, reviewer, submitted):
    first, second = submitted(completion="one"), submitted(completion="two")
    client.force_login(reviewer)
    for example in (first, second):
        decide(client, task, example, decision="approve")
    url = reverse("reviews:previous", args=[task.slug])
    assert client.get(url).url == reverse("reviews:review", args=[task.slug, second.uuid])
    assert client.get(url, {"before": second.uuid}).url == reverse("reviews:review", args=[task.slug, first.uuid])
    response = client.get(url, {"before": first.uuid}, follow=True)
    assertContains(response, "You have not judged anything before this")
    page = client.get(reverse("reviews:review", args=[task.slug, second.uuid]))
    assertContains(page, "This example is approved; there is nothing to decide.")


def test_next_with_skip_passes_over_the_current_pair(client, task, reviewer, submitted):
    first, second = submitted(completion="one"), submitted(completion="two")
    client.force_login(reviewer)
    assert next_pair(client, task).url == reverse("reviews:review", args=[task.slug, first.uuid])
    response = next_pair(client, task, skip=first.uuid, query="?kind=happy")
    assert response.url == reverse("reviews:review", args=[task.slug, second.uuid]) + "?kind=happy"
    assert Example.objects.get(pk=first.pk).claimed_by is None
    assert Example.objects.get(pk=second.pk).claimed_by == reviewer


def test_queue_page_lists_and_filters_with_htmx(client, task, reviewer, annotator, other_annotator, submitted):
    submitted(instruction="From anna")
    submitted(instruction="From otis", author=other_annotator)
    client.force_login(reviewer)
    url = reverse("reviews:queue", args=[task.slug])
    page = client.get(url)
    assertContains(page, "From anna")
    assertContains(page, "From otis")
    assertContains(page, f'<option value="{other_annotator.pk}">otis</option>', html=True)
    fragment = client.get(url, {"annotator": other_annotator.pk, "kind": "nonsense"}, headers=HTMX)
    html = fragment.content.decode()
    assert "<html" not in html and 'id="queue-table"' in html
    assert "From otis" in html and "From anna" not in html
    assert f"?annotator={other_annotator.pk}" in html  # the invalid kind was dropped


@pytest.mark.parametrize("name", ["reviews:queue", "reviews:review"])
def test_queue_and_review_pages_use_a_fixed_number_of_queries(
    client, task, reviewer, submitted, name, django_assert_max_num_queries
):
    first = submitted()

    def flag_and_resubmit(example, text: str) -> None:  # one more round of history: a verdict and a revision
        example.refresh_from_db()
        services.verdict_record(
            example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["other"]
        )
        example.refresh_from_db()
        annotate_services.example_submit(
            example=example, user=example.author, completion=text, kind="happy", expected_version=example.version
        )

    for text in ("first, again", "first, once more"):  # a history with a diff in both measurements
        flag_and_resubmit(first, text)
    client.force_login(reviewer)
    url = reverse(name, args=[task.slug, first.uuid] if name == "reviews:review" else [task.slug])
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    expected = len(small.captured_queries)  # read now: the next request clears Django's query log
    for i in range(8):  # the viewed pair's own history grows too
        flag_and_resubmit(first, f"first, round {i}")
    for i in range(15):
        example = submitted(completion=f"answer {i}")
        services.verdict_record(
            example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["other"]
        )
        example.refresh_from_db()
        annotate_services.example_submit(
            example=example,
            user=example.author,
            completion=f"answer {i}!",
            kind="happy",
            expected_version=example.version,
        )
        ExampleFactory(
            task=task, status=Status.SUBMITTED, completion="imported", warnings=[{"code": "leak", "message": "m"}]
        )
    client.get(url)
    with django_assert_max_num_queries(expected):
        client.get(url)


def test_next_and_decide_use_a_fixed_number_of_queries(
    client, task, reviewer, submitted, django_assert_max_num_queries
):
    for _ in range(3):
        submitted()
    client.force_login(reviewer)
    with CaptureQueriesContext(connection) as small:
        example = client.get(next_pair(client, task).url).context["example"]
        decide(client, task, example, decision="approve")  # and leases the next pair
    for _ in range(20):
        submitted()
    with django_assert_max_num_queries(len(small.captured_queries)):
        example = client.get(next_pair(client, task).url).context["example"]
        decide(client, task, example, decision="approve")
    assert Example.objects.get(pk=example.pk).status == Status.APPROVED


def test_task_page_links_to_review_and_shows_the_statistics(client, task, reviewer, annotator, example):
    services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["leak"]
    )
    client.force_login(reviewer)
    page = client.get(reverse("annotate:task_detail", args=[task.slug]))
    assertContains(page, reverse("reviews:queue", args=[task.slug]))
    assertContains(page, reverse("reviews:triage", args=[task.slug]))
    assertContains(page, 'data-testid="review-stats"')
    assertContains(
        page, '<tr data-reason="leak"><td>Answer leaked into prompt</td><td class="num">1</td></tr>', html=True
    )
    client.force_login(annotator)
    page = client.get(reverse("annotate:task_detail", args=[task.slug]))
    assertNotContains(page, 'data-testid="review-stats"')
    assertNotContains(page, reverse("reviews:queue", args=[task.slug]))


@pytest.mark.parametrize("status", ["new", "submitted"])
def test_the_timeline_of_an_imported_example_starts_with_its_import(client, task, lead, tmp_path, status):
    from annotate import importing

    path = tmp_path / "one.jsonl"
    path.write_text('{"instruction": "Reset it?", "completion": "Hold the button.", "id": "r1"}\n')
    importing.examples_import(task=task, path=path, file_format="jsonl", status=status, actor=lead)
    example = task.examples.get(external_id="r1")
    events = services.example_timeline(example)
    if status == "new":  # nothing moved, so no transition row: the example's own creation says it was imported
        assert [(e.kind, e.actor) for e in events] == [("imported", None), ("revision", None)]
        assert events[0].at == example.created_at
    else:  # new -> submitted by the lead who imported it, noted "imported"; no second "imported" event
        assert [(e.kind, getattr(e.actor, "username", None)) for e in events] == [
            ("revision", None),
            ("transition", "leo"),
        ]
        assert events[1].item.note == "imported"
    client.force_login(lead)
    page = client.get(reverse("reviews:example", args=[task.slug, example.uuid]))
    assertContains(page, 'data-kind="imported"', count=1 if status == "new" else 0)


def test_the_timeline_merges_revisions_verdicts_and_transitions_in_order(
    client, task, reviewer, lead, annotator, example
):
    services.verdict_record(
        example=example,
        reviewer=reviewer,
        decision="reject",
        version=example.version,
        reasons=["unsafe"],
        comment="No <way>.",
    )
    services.triage_send_back(task=task, uuids=[example.uuid], actor=lead, reasons=["other"], comment="Try again.")
    events = services.example_timeline(example)
    assert [(e.kind, getattr(e.actor, "username", None)) for e in events] == [
        ("revision", "anna"),  # the first draft
        ("transition", "anna"),  # new -> draft
        ("revision", "anna"),  # the submitted text
        ("transition", "anna"),  # draft -> submitted
        ("verdict", "rita"),
        ("transition", "rita"),  # submitted -> rejected
        ("verdict", "leo"),
        ("transition", "leo"),  # rejected -> flagged
    ]
    client.force_login(lead)
    page = client.get(reverse("reviews:example", args=[task.slug, example.uuid]))
    html = page.content.decode()
    assert html.count('data-kind="verdict"') == 2 and html.count('data-kind="transition"') == 4
    assert "No &lt;way&gt;." in html and "Try again." in html and "triage: sent back to the annotator" in html
    assert html.index("No &lt;way&gt;.") < html.index("Try again.")


def test_the_second_reviewer_judges_blind(client, task, reviewer, second_reviewer, example):
    task.approvals_required = 2
    task.save()
    client.force_login(reviewer)
    decide(client, task, example, decision="approve", comment="Looks right to me.")
    client.force_login(second_reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, example.uuid]))
    assertContains(page, 'id="decide"')
    assertNotContains(page, "Looks right to me.")
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, example.uuid]))
    assertContains(page, "You judged this version: approve.")
    assertContains(page, "Looks right to me.")


def test_the_queue_counts_up_to_a_cap_and_pages(client, task, reviewer, monkeypatch):
    from reviews import views

    monkeypatch.setattr(views, "COUNT_CAP", 4)
    monkeypatch.setattr(views, "PER_PAGE", 2)
    for i in range(6):
        ExampleFactory(task=task, status=Status.SUBMITTED, completion="x", instruction=f"Prompt {i}")
    client.force_login(reviewer)
    url = reverse("reviews:queue", args=[task.slug])
    first = client.get(url)
    assertContains(first, '<strong data-testid="waiting">4+</strong>', html=True)
    assertContains(first, "Prompt 0")
    assertNotContains(first, "Prompt 2")
    second = client.get(url, {"page": 2})
    assertContains(second, "Prompt 2")
    assertContains(second, "← earlier")
    assertNotContains(second, "later →")  # the cap ends the pages
    assertContains(client.get(url, {"page": "x"}), "Prompt 0")
