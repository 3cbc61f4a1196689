"""A large import runs as a job: on a real Redis and celery worker, its progress shows on the row until it is done."""

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import importing
from annotate.models import AuditEvent, ImportJob, Revision, Transition
from pairsmith.jobs import JobState

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("both_storages")]

RECORDS = 12_000  # more than INLINE_MAX_RECORDS and under INLINE_MAX_BYTES: checked in the request, then a job


def test_large_import_runs_as_a_job_with_progress_on_the_row(
    celery_worker_process, client, lead, task, settings, tmp_path
):
    settings.VAR_DIR = tmp_path / "var"
    assert RECORDS > importing.INLINE_MAX_RECORDS
    records = ({"prompt": f"Question {i}?", "completion": f"A{i}" if i % 2 else "", "id": i} for i in range(RECORDS))
    content = "".join(json.dumps(record) + "\n" for record in records).encode()
    client.force_login(lead)
    response = client.post(
        reverse("imports:upload", args=[task.slug]), {"file": SimpleUploadedFile("big.jsonl", content)}
    )
    assertContains(client.get(response.url), "<code>prompt</code>")
    response = client.post(response.url, {"map_0": "instruction", "map_1": "completion", "map_2": "external_id",
                                          "status": "new", "action": "import"})  # fmt: skip
    job = ImportJob.objects.get()
    assert response.url == reverse("imports:job", args=[task.slug, job.pk])
    progress_url = reverse("imports:progress", args=[task.slug, job.pk])

    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 120
    while job.is_live and time.monotonic() < deadline:
        time.sleep(0.02)
        job.refresh_from_db()
        if job.state == JobState.RUNNING and 0 < job.progress < job.total and not seen:
            assertContains(client.get(progress_url), 'hx-trigger="every 2s"')  # the page polls while it runs
        seen.append((job.state, job.progress))
    assert job.state == JobState.SUCCEEDED, job.error
    # Mid-way the row showed part of the file done (after the first batch) while the inserts were still running.
    assert any(state == JobState.RUNNING and 0 < done < job.size for state, done in seen), seen[::20]
    assert job.progress == job.total == job.size
    assert job.counts["records"] == RECORDS and job.counts["with_completion"] == RECORDS // 2
    assert task.examples.count() == RECORDS
    assert Revision.objects.count() == RECORDS // 2 and not Transition.objects.exists()  # imported as new
    assert AuditEvent.objects.get(action="import").actor == lead  # who imported them: the audit log
    assert not any((tmp_path / "var" / "imports").glob("*.upload"))  # the job deleted its upload
    assertNotContains(client.get(progress_url), "hx-trigger=")  # finished: polling stops
