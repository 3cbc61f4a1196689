"""The annotator's pages and saves run the same number of SQL queries whatever the size of the task: the pool, other
people's work, and the example's own history of revisions."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotate import services
from annotate.models import Example, Role
from tests.factories import ExampleFactory, MembershipFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def counted(client, method: str, url: str, data: dict | None = None, headers: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(url, data or {}, headers=headers or {})
    assert response.status_code in (200, 302), (url, response.status_code)
    return len(queries.captured_queries)


def day_of_work(client, annotator, *, big: bool) -> dict[str, int]:
    """Count the queries of each step of an annotator's loop on a task that is small, or big in every direction."""
    task = TaskFactory()
    MembershipFactory(task=task, user=annotator, role=Role.ANNOTATOR)
    target = ExampleFactory(task=task, instruction="How do I reset the Skylark?")
    ExampleFactory(task=task)  # the next one, which the submit hands out
    if big:
        colleague = UserFactory()
        MembershipFactory(task=task, user=colleague, role=Role.ANNOTATOR)
        ExampleFactory.create_batch(60, task=task)  # the pool behind the example handed out
        for example in ExampleFactory.create_batch(8, task=task):  # a colleague's submitted work
            Example.objects.filter(pk=example.pk).update(
                claimed_by=colleague, claim_expires_at=timezone.now() + timedelta(hours=1)
            )
            example.refresh_from_db()
            services.example_submit(
                example=example, user=colleague, completion="Done.", kind="happy", expected_version=example.version
            )
    counts = {"start page": counted(client, "get", reverse("annotate:work", args=[task.slug]))}
    counts["next"] = counted(client, "post", reverse("annotate:work", args=[task.slug]))
    target.refresh_from_db()
    assert target.claimed_by == annotator
    for i in range(12 if big else 1):  # a draft either way (the same state), with a long history when big
        target = services.example_save(
            example=target,
            user=annotator,
            completion=f"Draft {i}",
            kind="happy",
            expected_version=target.version,
            reason="autosave",
        )
    slug, uuid = task.slug, target.uuid
    counts["editor"] = counted(client, "get", reverse("annotate:edit", args=[slug, uuid]))
    form = {"completion": "Hold the round button for ten seconds.", "kind": "happy", "version": target.version}
    counts["save"] = counted(
        client, "post", reverse("annotate:save", args=[slug, uuid]), form | {"autosave": "1"}, HTMX
    )
    counts["feedback"] = counted(client, "post", reverse("annotate:feedback", args=[slug, uuid]), form, HTMX)
    counts["my work"] = counted(client, "get", reverse("annotate:my_work", args=[slug]))
    form["version"] += 1
    counts["submit"] = counted(client, "post", reverse("annotate:submit", args=[slug, uuid]), form)
    assert Example.objects.get(pk=target.pk).status == "submitted"
    return counts


def test_annotator_pages_and_saves_use_a_fixed_number_of_queries(client, annotator):
    client.force_login(annotator)
    small = day_of_work(client, annotator, big=False)
    big = day_of_work(client, annotator, big=True)
    assert big == small
    assert all(n <= 25 for n in small.values()), small  # and few: each step is a handful of indexed queries
