"""Flagged work is never hidden from its annotator: a count in the header and on the task, My work opening on it,
and "Annotate" handing it out before anything new."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services
from annotate.models import Example
from reviews import services as review_services
from tests.factories import ExampleFactory, MembershipFactory, TaskFactory
from tests.reviews.conftest import submit_new

pytestmark = pytest.mark.django_db


@pytest.fixture
def flagged(task, annotator, reviewer):
    example = submit_new(task, annotator, "Yes.", instruction="Can I move it?")
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"],
        comment="Say how.",
    )  # fmt: skip
    example.refresh_from_db()
    return example


def test_the_header_badge_counts_flagged_work_and_links_to_it(client, task, annotator, flagged):
    client.force_login(annotator)
    page = client.get(reverse("home"))
    assertContains(page, f'hx-get="{reverse("annotate:flagged_badge")}"')  # loaded after the page, by htmx
    badge = client.get(reverse("annotate:flagged_badge"), headers={"HX-Request": "true"})
    link = reverse("annotate:my_work", args=[task.slug]) + "?status=flagged"
    assertContains(badge, f'href="{link}"')
    assertContains(badge, "1 flagged back")


def test_the_badge_spans_tasks_and_is_empty_without_flagged_work(client, task, annotator, flagged, reviewer):
    other = TaskFactory(slug="second", name="Second task")
    MembershipFactory(task=other, user=annotator, role="annotator")
    MembershipFactory(task=other, user=reviewer, role="reviewer")
    second = submit_new(other, annotator, "No.", instruction="Is it waterproof?")
    review_services.verdict_record(
        example=second, reviewer=reviewer, decision="flag", version=second.version, reasons=["inaccurate"]
    )
    client.force_login(annotator)
    badge = client.get(reverse("annotate:flagged_badge"))
    assertContains(badge, "2 flagged back")
    assertContains(badge, f'href="{reverse("home")}"')  # two tasks: the task list, with a count per task
    client.force_login(reviewer)
    assertNotContains(client.get(reverse("annotate:flagged_badge")), "flagged back")


def test_the_task_page_tells_the_annotator_and_my_work_opens_on_flagged(client, task, annotator, flagged):
    ExampleFactory(task=task, status=Example.Status.DRAFT, author=annotator)
    client.force_login(annotator)
    page = client.get(reverse("annotate:task_detail", args=[task.slug]))
    assertContains(page, "1 of your examples was flagged back")
    work = client.get(reverse("annotate:my_work", args=[task.slug]))
    assert work.context["status"] == "flagged"
    assertContains(work, "Say how.")
    assert client.get(reverse("annotate:my_work", args=[task.slug]), {"status": "draft"}).context["status"] == "draft"


def test_my_work_opens_on_drafts_when_nothing_is_flagged(client, task, annotator):
    client.force_login(annotator)
    assert client.get(reverse("annotate:my_work", args=[task.slug])).context["status"] == "draft"
    assertNotContains(client.get(reverse("annotate:task_detail", args=[task.slug])), "flagged back")


def test_annotate_hands_out_the_flagged_example_before_new_ones(task, annotator, flagged):
    ExampleFactory(task=task)
    assert services.example_claim_next(task=task, user=annotator) == flagged
