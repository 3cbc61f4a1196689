"""Uploads and exports in an S3-compatible store (STORAGE_URL): moto's S3 server on loopback, spoken to over HTTP.

What a user sees and what the store holds: an upload any node can read, a version visible only through its row, what
a killed worker leaves, downloads streamed or presigned, and a store that is down failing the job with a clear reason
while nothing else changes.
"""

import json
import urllib.request
from hashlib import sha256

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse

from annotate import importing
from annotate.models import Example, ImportJob
from exports import services
from exports.models import Export
from exports.tasks import export_build_task
from pairsmith.jobs import JobState, job_claim

from .conftest import object_storage_settings, s3_client, stored_keys
from .exports.conftest import approve, build, free_port, stored_bytes, stored_folders

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("object_storage")]

RECORDS = [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(12)]


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


def _upload(client, task) -> str:
    data = "".join(json.dumps(record) + "\n" for record in RECORDS).encode()
    url = reverse("imports:upload", args=[task.slug])
    response = client.post(url, {"file": SimpleUploadedFile("pairs.jsonl", data), "file_format": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response.url.rstrip("/").rsplit("/", 1)[1]


def test_an_upload_lives_in_the_store_and_a_node_without_its_file_maps_and_imports_it(
    client, lead, task, settings, s3_server, s3_bucket
):
    client.force_login(lead)
    token = _upload(client, task)
    keys = stored_keys(s3_server, s3_bucket, "pairsmith/imports/")
    assert keys == [f"pairsmith/imports/{token}.upload", f"pairsmith/imports/pending/{token}.json"]
    importing.upload_path(token).unlink()  # another node: nothing of the upload on its disk
    mapping = client.get(reverse("imports:mapping", args=[task.slug, token]))
    assert mapping.status_code == 200
    assert "Question 0?" in mapping.content.decode()
    form = {"map_0": "instruction", "map_1": "completion", "status": "approved", "action": "import"}
    response = client.post(reverse("imports:mapping", args=[task.slug, token]), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    job = ImportJob.objects.get()
    assert job.state == JobState.SUCCEEDED and job.counts["records"] == 12
    assert Example.objects.filter(task=task, status="approved").count() == 12
    assert stored_keys(s3_server, s3_bucket, "pairsmith/imports/") == []  # the upload and its ledger entry are gone
    assert not importing.upload_path(token).exists()


def test_an_import_whose_store_is_down_fails_saying_so_and_imports_nothing(client, lead, task, settings, s3_bucket):
    client.force_login(lead)
    token = _upload(client, task)
    importing.upload_path(token).unlink()  # the worker's node has no copy
    job = ImportJob.objects.create(
        task=task, filename="pairs.jsonl", path=str(importing.upload_path(token)), file_format="jsonl", created_by=lead
    )
    _store_down(settings, s3_bucket)
    importing.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "The object store (s3://" in job.error and "downloading" in job.error and "Nothing was imported" in job.error
    assert not Example.objects.exists()


def _store_down(settings, bucket: str) -> None:
    """Point the storages at a loopback port where nothing listens: connections are refused."""
    values = object_storage_settings(endpoint=f"http://127.0.0.1:{free_port()}", bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, **values.pop("storages")}
    settings.AWS_S3_ENDPOINT_URL = values["AWS_S3_ENDPOINT_URL"]


def test_a_version_is_written_to_temporary_keys_and_published_under_its_own(task, lead, s3_server, s3_bucket):
    approve(task, 20)
    export = build(task, user=lead)
    assert export.state == JobState.SUCCEEDED, export.error
    keys = stored_keys(s3_server, s3_bucket, "pairsmith/exports/")
    names = ["README.md", "manifest.json", "train.jsonl", "validation.jsonl"]
    assert keys == [f"pairsmith/exports/{task.slug}/v1/{name}" for name in names]  # no temporary key left
    for name in names:
        data = stored_bytes(f"s3://{s3_bucket}/pairsmith/exports/{task.slug}/v1/{name}")
        assert sha256(data).hexdigest() == export.files[name]["sha256"] and len(data) == export.files[name]["size"]


def test_export_dataset_json_prints_s3_uris(task, lead, s3_bucket):
    approve(task, 10)
    summary = services.export_summary(export=build(task, export_format="alpaca", user=lead))  # the command's --json
    assert summary["files"]["train"] == f"s3://{s3_bucket}/pairsmith/exports/{task.slug}/v1/train.jsonl"
    assert sha256(stored_bytes(summary["files"]["manifest"])).hexdigest() == summary["sha256"]["manifest"]


def test_what_a_killed_worker_left_is_invisible_and_the_retry_cleans_it(client, task, lead, s3_server, s3_bucket):
    """A worker SIGKILLed mid-upload leaves objects under its temporary prefix and an unfinished multipart upload;
    its row stays running. Nothing offers the version; the retry removes both and publishes it."""
    approve(task, 12)
    export = services.export_request(task=task, export_format="openai-chat", user=lead)
    job_claim(Export, export.pk)
    s3 = s3_client(s3_server)
    dead = f"pairsmith/exports/{task.slug}/.partial-v1-dead0001"
    s3.put_object(Bucket=s3_bucket, Key=f"{dead}/README.md", Body=b"# half")
    s3.create_multipart_upload(Bucket=s3_bucket, Key=f"{dead}/train.jsonl")
    s3.put_object(Bucket=s3_bucket, Key=f"pairsmith/exports/{task.slug}/v1/train.jsonl", Body=b"stale\n")
    client.force_login(lead)
    assert client.get(reverse("exports:download", args=[task.slug, 1, "train.jsonl"])).status_code == 404
    Export.objects.filter(pk=export.pk).update(lease_expires_at=export.created_at)  # the lease ran out
    export_build_task(job_id=export.pk)  # the sweep's re-sent message
    export.refresh_from_db()
    assert export.state == JobState.SUCCEEDED and export.attempts == 2
    assert stored_folders(task) == ["v1"]
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    response = client.get(reverse("exports:download", args=[task.slug, 1, "train.jsonl"]))
    body = b"".join(response.streaming_content)
    assert sha256(body).hexdigest() == export.files["train.jsonl"]["sha256"]


def test_a_store_that_is_down_fails_the_export_and_leaves_the_versions_as_they_were(
    client, task, lead, settings, s3_server, s3_bucket
):
    approve(task, 10)
    first = build(task, user=lead)
    before = stored_keys(s3_server, s3_bucket)
    approve(task, 5, start=10)
    working = settings.STORAGES, settings.AWS_S3_ENDPOINT_URL
    _store_down(settings, s3_bucket)
    failed = build(task, user=lead)
    settings.STORAGES, settings.AWS_S3_ENDPOINT_URL = working
    assert failed.state == JobState.FAILED
    assert failed.error.startswith(f"The object store ({settings.STORAGE_URL}) failed while ")
    assert "Nothing was changed" in failed.error
    assert stored_keys(s3_server, s3_bucket) == before
    client.force_login(lead)
    response = client.get(reverse("exports:download", args=[task.slug, first.version, "train.jsonl"]))
    assert sha256(b"".join(response.streaming_content)).hexdigest() == first.files["train.jsonl"]["sha256"]
    assert client.get(reverse("exports:download", args=[task.slug, failed.version, "train.jsonl"])).status_code == 404


def test_downloads_stream_from_the_store_or_redirect_to_a_presigned_url(client, task, lead, settings):
    approve(task, 10)
    export = build(task, user=lead)
    client.force_login(lead)
    url = reverse("exports:download", args=[task.slug, export.version, "train.jsonl"])
    streamed = client.get(url)
    assert streamed.status_code == 200 and streamed.streaming
    assert streamed["Content-Disposition"] == 'attachment; filename="train.jsonl"'
    assert int(streamed["Content-Length"]) == export.files["train.jsonl"]["size"]
    assert sha256(b"".join(streamed.streaming_content)).hexdigest() == export.files["train.jsonl"]["sha256"]
    settings.STORAGE_PRESIGNED_DOWNLOADS = True
    redirected = client.get(url)
    assert redirected.status_code == 302
    location = redirected["Location"]
    assert location.startswith(settings.AWS_S3_ENDPOINT_URL) and "Signature=" in location
    with urllib.request.urlopen(location, timeout=10) as answer:  # the store itself serves it, to anyone with it
        assert sha256(answer.read()).hexdigest() == export.files["train.jsonl"]["sha256"]
        assert "train.jsonl" in answer.headers["Content-Disposition"]


def test_deleting_a_version_removes_its_objects_and_no_others(client, task, lead, s3_server, s3_bucket):
    approve(task, 10)
    first, second = build(task, user=lead), build(task, user=lead)
    client.force_login(lead)
    url = reverse("exports:delete", args=[task.slug, first.version])
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(url, {"confirm": "v1"})
    assert stored_folders(task) == ["v2"]
    assert client.get(reverse("exports:download", args=[task.slug, 1, "train.jsonl"])).status_code == 404
    assert client.get(reverse("exports:download", args=[task.slug, second.version, "train.jsonl"])).status_code == 200
