"""'Start reviewing' on a filtered queue takes the next pair of those filters, as the small link does."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate.models import Example

pytestmark = pytest.mark.django_db


def test_start_reviewing_keeps_the_queue_filters(client, task, reviewer, submitted):
    happy = submitted("Older, happy path.")  # first in line without filters
    edge = submitted("Newer, an edge case.")
    Example.objects.filter(pk=edge.pk).update(kind="edge")
    client.force_login(reviewer)
    queue = client.get(reverse("reviews:queue", args=[task.slug]), {"kind": "edge"})
    start = reverse("reviews:next", args=[task.slug]) + "?kind=edge"
    assertContains(queue, f'<form method="post" action="{start}" class="inline">')
    response = client.post(start)
    assert response.url.startswith(reverse("reviews:review", args=[task.slug, edge.uuid]))
    happy.refresh_from_db()
    assert happy.claimed_by is None  # the pair outside the filter was not leased
