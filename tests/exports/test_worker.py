"""Exports through a real Redis and real `celery worker` processes: end to end, a worker SIGKILLed mid-export,
and Redis down when the lead asks for an export."""

import time
from datetime import timedelta
from hashlib import sha256

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from exports import services
from exports.models import Export
from pairsmith.celery import app
from pairsmith.jobs import QUEUE_UNREACHABLE, JobState
from tests.conftest import redis_available

from .conftest import approve, read_lines, stored_folders, version_folder

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def wait_for(export: Export, condition, timeout: float = 30, what: str = "") -> Export:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        export.refresh_from_db()
        if condition(export):
            return export
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what or condition}: {export.state} {export.progress}/{export.total}")


def assert_complete(export: Export, n: int) -> None:
    folder = version_folder(export)
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no partial folder left
    for name, meta in export.files.items():
        data = (folder / name).read_bytes()
        assert sha256(data).hexdigest() == meta["sha256"] and len(data) == meta["size"], name
    assert len(read_lines(folder / "train.jsonl")) + len(read_lines(folder / "validation.jsonl")) == n
    assert export.counts["total"] == n


def test_export_runs_end_to_end_in_a_worker(client, task, lead, worker_factory):
    redis_available()
    approve(task, 200)
    worker = worker_factory()
    worker.start()
    worker.wait_ready(app)
    client.force_login(lead)
    response = client.post(
        reverse("exports:create", args=[task.slug]), {"export_format": "openai-chat", "validation_ratio": "0.1"}
    )
    assert response.status_code == 302
    export = wait_for(Export.objects.get(task=task), lambda e: not e.is_live, what="the export to finish")
    assert export.state == JobState.SUCCEEDED, export.error
    assert export.attempts == 1 and export.created_by == lead
    assert_complete(export, 200)


def test_worker_killed_mid_export_leaves_nothing_visible_and_a_restart_completes_it(client, task, lead, worker_factory):
    redis_available()
    n = 1500
    approve(task, n)
    worker = worker_factory()
    worker.start(PAIRSMITH_EXPORT_THROTTLE="0.004")  # ~6 s for the whole export: time to kill it half-way
    worker.wait_ready(app)
    export = services.export_request(task=task, export_format="openai-chat", user=lead)
    export = wait_for(export, lambda e: e.state == JobState.RUNNING and e.progress >= 200, what="progress")
    worker.kill()

    export.refresh_from_db()
    assert export.state == JobState.RUNNING and export.progress < n
    folder = version_folder(export)
    if settings.STORAGE_URL:  # the files were still in the worker's scratch folder: nothing of v1 in the store
        assert not folder.exists() and "v1" not in stored_folders(task)
    else:
        assert not folder.exists() and list(folder.parent.glob(".partial-v1-*"))  # only the hidden partial folder
    client.force_login(lead)
    assert client.get(reverse("exports:download", args=[task.slug, 1, "train.jsonl"])).status_code == 404
    assert client.get(reverse("exports:list", args=[task.slug])).status_code == 200

    # The lease (60 s) runs out; rather than wait, move it into the past. The new worker's start-up sweep re-sends it.
    Export.objects.filter(pk=export.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    restarted = worker_factory()
    restarted.start()
    export = wait_for(export, lambda e: not e.is_live, timeout=40, what="the restarted worker to finish")
    assert export.state == JobState.SUCCEEDED, export.error
    assert export.attempts == 2
    assert_complete(export, n)
    assert Export.objects.count() == 1  # one export, not two


def test_redis_down_at_request_time_queues_the_export_and_it_completes_once_redis_is_back(
    client, task, lead, private_redis, worker_factory
):
    approve(task, 40)
    private_redis.stop()
    client.force_login(lead)
    started = time.monotonic()
    response = client.post(
        reverse("exports:create", args=[task.slug]), {"export_format": "alpaca", "validation_ratio": "0.2"}, follow=True
    )
    assert response.status_code == 200 and time.monotonic() - started < 10  # no 500, no hang
    export = Export.objects.get(task=task)
    assert export.state == JobState.QUEUED and export.notice == QUEUE_UNREACHABLE
    assert QUEUE_UNREACHABLE in response.content.decode()

    private_redis.start()
    # The sweep re-sends queued jobs older than its grace period (30 s): let that time pass for this row.
    Export.objects.filter(pk=export.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    worker = worker_factory(private_redis.url)
    worker.start()  # its start-up sweep finds the queued export and sends it
    export = wait_for(export, lambda e: not e.is_live, timeout=40, what="the export after Redis came back")
    assert export.state == JobState.SUCCEEDED, export.error
    assert export.notice == ""
    assert_complete(export, 40)
