"""External ids (such as seed_task_31) name an example wherever people see it; the UUID is one click away."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate.models import Example

pytestmark = pytest.mark.django_db


@pytest.fixture
def named(submitted):
    example = submitted("An answer.")
    Example.objects.filter(pk=example.pk).update(external_id="seed_task_<31>")
    example.refresh_from_db()
    return example


def test_review_page_timeline_queue_and_triage_show_the_external_id(client, task, reviewer, named):
    client.force_login(reviewer)
    review = client.get(reverse("reviews:review", args=[task.slug, named.uuid]))
    assertContains(review, '<strong data-testid="external-id">seed_task_&lt;31&gt;</strong>', html=False)
    assertContains(review, "<span>seed_task_&lt;31&gt;</span>")  # the crumbs name it too
    assertContains(review, f'UUID">{named.uuid}</code>', html=False)
    timeline = client.get(reverse("reviews:example", args=[task.slug, named.uuid]))
    assertContains(timeline, '<strong data-testid="external-id">seed_task_&lt;31&gt;</strong>', html=False)
    queue = client.get(reverse("reviews:queue", args=[task.slug]))
    assertContains(queue, '<div class="muted small">seed_task_&lt;31&gt;</div>', html=False)
    named.status = "flagged"
    named.save()
    triage = client.get(reverse("reviews:triage", args=[task.slug]))
    assertContains(triage, "seed_task_&lt;31&gt; · An answer.")
