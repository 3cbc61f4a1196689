"""A reviewer's "fix and approve" in a task that asks for the reasoning: the reasoning is shown and edited beside the
completion, stored on the reviewer's revision, and its diff shown on the review screen and the timeline; an edit of a
stale version is refused and overwrites nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services as annotate_services
from annotate.models import Example, Revision
from reviews import services

from .conftest import submit_new
from .test_review_views import decide

pytestmark = pytest.mark.django_db
REASONING = "The manual says: hold <the> button for ten seconds."


def submit_with_reasoning(task, annotator, reasoning: str = REASONING) -> Example:
    example = annotate_services.example_write_new(
        task=task, user=annotator, fields={"instruction": "How do I restart my thermostat?"}, completion="first draft",
        kind="happy",
    )  # fmt: skip
    return annotate_services.example_submit(
        example=example, user=annotator, completion="Hold the round button for ten seconds.", kind="happy",
        expected_version=example.version, reasoning=reasoning,
    )  # fmt: skip


@pytest.fixture
def reasoning_example(task, annotator):
    task.asks_reasoning = True
    task.save()
    return submit_with_reasoning(task, annotator)


def record_edit(example, reviewer, **kwargs):
    kwargs.setdefault("version", example.version)
    kwargs.setdefault("completion", example.completion)
    return services.verdict_record(example=example, reviewer=reviewer, decision="approve", **kwargs)


def test_the_edited_reasoning_is_stored_on_the_reviewers_revision(reasoning_example, reviewer):
    example = reasoning_example
    assert example.reasoning == REASONING
    verdict = record_edit(example, reviewer, reasoning="The manual says: hold the button for 10 seconds.\r\nThen wait.")
    revision = verdict.revision
    assert (revision.reason, revision.author, revision.text) == ("reviewer_edit", reviewer, example.completion)
    assert revision.reasoning == "The manual says: hold the button for 10 seconds.\nThen wait."  # CRLF folded
    stored = Example.objects.get(pk=example.pk)
    assert (stored.reasoning, stored.version, stored.status) == (revision.reasoning, example.version + 1, "approved")
    # the annotator's submitted reasoning is kept on their revision
    assert Revision.objects.filter(example=example, reason="submit").get().reasoning == REASONING


def test_without_a_posted_reasoning_the_stored_one_is_kept(reasoning_example, reviewer):
    verdict = record_edit(reasoning_example, reviewer, completion="Hold it for 10 seconds.")
    assert verdict.revision.reasoning == REASONING
    assert Example.objects.get(pk=reasoning_example.pk).reasoning == REASONING


def test_an_empty_reasoning_is_refused_where_the_task_asks_for_it_and_nothing_is_written(reasoning_example, reviewer):
    before = Revision.objects.filter(example=reasoning_example).count()
    with pytest.raises(ValidationError, match="edited reasoning is empty"):
        record_edit(reasoning_example, reviewer, reasoning="  \n")
    stored = Example.objects.get(pk=reasoning_example.pk)
    assert (stored.reasoning, stored.version, stored.status) == (REASONING, reasoning_example.version, "submitted")
    assert Revision.objects.filter(example=reasoning_example).count() == before
    assert not stored.verdicts.exists()


def test_an_edit_of_a_stale_version_is_refused_and_overwrites_nothing(
    task, reasoning_example, reviewer, second_reviewer
):
    task.approvals_required = 2
    task.save()
    seen = reasoning_example.version
    # Another reviewer fixes the reasoning first (approval 1 of 2: the example stays submitted, at a new version).
    first = record_edit(reasoning_example, second_reviewer, reasoning="Their reasoning.")
    assert first.example.status == "submitted"
    before = Revision.objects.filter(example=reasoning_example).count()
    with pytest.raises(services.StaleReview):
        record_edit(reasoning_example, reviewer, version=seen, completion="Mine.", reasoning="My reasoning.")
    stored = Example.objects.get(pk=reasoning_example.pk)
    assert (stored.reasoning, stored.completion) == ("Their reasoning.", reasoning_example.completion)
    assert Revision.objects.filter(example=reasoning_example).count() == before
    assert stored.verdicts.count() == 1


def test_a_reasoning_without_the_completion_or_with_a_flag_is_refused(reasoning_example, reviewer):
    with pytest.raises(ValidationError, match="only be edited with the completion"):
        services.verdict_record(
            example=reasoning_example, reviewer=reviewer, decision="approve", version=reasoning_example.version,
            reasoning="x",
        )  # fmt: skip
    assert Example.objects.get(pk=reasoning_example.pk).status == "submitted"


def test_only_the_reasoning_changed_is_an_edit_with_its_own_revision(reasoning_example, reviewer):
    verdict = record_edit(reasoning_example, reviewer, reasoning="A better reasoning.")
    assert verdict.revision.reason == "reviewer_edit"
    assert Example.objects.get(pk=reasoning_example.pk).version == reasoning_example.version + 1


def test_the_edit_panel_shows_the_reasoning_beside_the_completion_only_where_asked(
    client, task, reviewer, reasoning_example, annotator
):
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, reasoning_example.uuid]))
    assertContains(page, 'id="id_edit_reasoning"')
    assertContains(page, "The manual says: hold &lt;the&gt; button for ten seconds.</textarea>", html=False)
    task.asks_reasoning = False
    task.save()
    plain = submit_new(task, annotator, instruction="Another question?")
    page = client.get(reverse("reviews:review", args=[task.slug, plain.uuid]))
    assertNotContains(page, 'id="id_edit_reasoning"')


def test_the_posted_reasoning_is_stored_and_its_diff_shown_on_the_timeline(
    client, task, reviewer, reasoning_example, annotator
):
    client.force_login(reviewer)
    response = decide(
        client, task, reasoning_example, decision="edit", completion=reasoning_example.completion, kind="happy",
        reasoning="The manual says: hold <the> button for 10 seconds.",
    )  # fmt: skip
    assert response.status_code == 302
    revision = Revision.objects.filter(example=reasoning_example).last()
    assert revision.reasoning == "The manual says: hold <the> button for 10 seconds."
    client.force_login(annotator)
    page = client.get(reverse("reviews:example", args=[task.slug, reasoning_example.uuid]))
    assertContains(page, 'data-testid="timeline-reasoning-diff"')
    assertContains(page, "hold &lt;the&gt; button for <del>ten</del><ins>10</ins> seconds.", html=False)


def test_an_empty_posted_reasoning_comes_back_with_the_error_and_the_texts_kept(
    client, task, reviewer, reasoning_example
):
    client.force_login(reviewer)
    response = decide(
        client, task, reasoning_example, decision="edit", completion="My fix.", kind="happy", reasoning="", htmx=True
    )
    assertContains(response, "The edited reasoning is empty; this task asks for it.")
    assertContains(response, "My fix.</textarea>", html=False)
    assert Example.objects.get(pk=reasoning_example.pk).reasoning == REASONING
