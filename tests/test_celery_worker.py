"""A real celery worker process on a real Redis reaches the same database as the web process."""

import pytest

from pairsmith.tasks import ping
from tests.factories import ExampleFactory

pytestmark = pytest.mark.redis


def test_worker_process_sees_committed_rows(celery_worker_process, task):
    ExampleFactory.create_batch(3, task=task)
    result = ping.delay().get(timeout=30)
    assert result == {"tasks": 1, "examples": 3}
