"""The JSON API for pipelines: each endpoint, each role, other tasks' tokens (404), no token (401), a revoked token,
bad input (400 naming the field, nothing changed), rate limits per token, audit events, and the OpenAPI schema
checked by an OpenAPI validator."""

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openapi_spec_validator import validate

from annotate.importing import limits
from annotate.models import AuditEvent, Example, ImportJob, Role
from exports import services
from exports.models import Export
from tests.factories import MembershipFactory, TaskFactory, UserFactory

from ..conftest import stored_keys
from ..exports.conftest import approve, build

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("both_storages")]  # local folders, then S3


@pytest.fixture(autouse=True)
def _own_var(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


def uploads(settings) -> list:
    """The uploads kept anywhere: in the local folder, and in the bucket when the test runs on object storage."""
    folder = settings.VAR_DIR / "imports"
    found = sorted(str(p) for p in folder.glob("*.upload")) if folder.exists() else []
    if getattr(settings, "STORAGE_BUCKET", None):
        keys = stored_keys(settings.AWS_S3_ENDPOINT_URL, settings.STORAGE_BUCKET, "pairsmith/imports/")
        found += [key for key in keys if key.endswith(".upload")]
    return found


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def token_of(user) -> str:
    return services.token_create(user=user, name="pipeline")[1]


def jsonl(*records: dict) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records) + b"\n"


def post_import(client, task, token, content: bytes, name="data.jsonl", **fields):
    body = {"file": SimpleUploadedFile(name, content), **fields}
    return client.post(f"/api/tasks/{task.slug}/imports", body, headers=auth(token))


# --- the schema and its page ------------------------------------------------------------------------------------


def test_the_schema_is_valid_openapi_and_lists_every_endpoint(client):
    response = client.get("/api/schema")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)  # raises on an invalid OpenAPI document
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/tasks",
        "/api/tasks/{slug}/exports",
        "/api/tasks/{slug}/exports/v{version}",
        "/api/tasks/{slug}/imports",
        "/api/tasks/{slug}/imports/{job_id}",
    }
    upload = schema["paths"]["/api/tasks/{slug}/imports"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["properties"]["file"]["format"] == "binary"
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


def test_the_api_page_renders_the_schema_without_inline_script(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui-bundle.js" in html and "/api/schema" in html
    assert "<script>" not in html  # no inline script: the content security policy forbids it
    assert "script-src 'self'" in page["Content-Security-Policy"]


# --- tokens -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/tasks", "/api/tasks/support/exports", "/api/tasks/support/exports/v1", "/api/tasks/support/imports/1"],
)
def test_no_token_or_a_bad_one_is_a_401_that_says_what_is_needed(client, task, lead, path):
    for headers in ({}, auth("psk_not-a-token"), {"Authorization": "Basic abc"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
        assert "Authorization: Bearer" in response.json()["detail"]


def test_a_revoked_token_no_longer_works(client, task, lead):
    row, token = services.token_create(user=lead, name="pipeline")
    assert client.get("/api/tasks", headers=auth(token)).status_code == 200
    services.token_revoke(token=row, actor=lead)
    assert client.get("/api/tasks", headers=auth(token)).status_code == 401


def test_a_token_is_limited_per_token_and_told_when_to_come_back(client, task, lead, settings):
    settings.RATE_LIMIT_API = 3
    first, second = token_of(lead), token_of(lead)
    for _ in range(3):
        assert client.get("/api/tasks", headers=auth(first)).status_code == 200
    refused = client.get("/api/tasks", headers=auth(first))
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "the limit is 3 a minute per token" in refused.json()["detail"]
    assert client.get("/api/tasks", headers=auth(second)).status_code == 200  # the other token counts alone


def test_starts_count_against_the_users_job_limit_as_on_the_pages(client, task, lead, settings):
    approve(task, 3)
    settings.RATE_LIMIT_JOBS = 1
    token = token_of(lead)
    start = {"format": "alpaca"}
    first = client.post(f"/api/tasks/{task.slug}/exports", start, content_type="application/json", headers=auth(token))
    assert first.status_code == 202
    again = client.post(f"/api/tasks/{task.slug}/exports", start, content_type="application/json", headers=auth(token))
    assert again.status_code == 429
    assert "imports, exports and new API tokens" in again.json()["detail"]
    assert post_import(client, task, token, jsonl({"instruction": "Hi"})).status_code == 429
    assert Export.objects.count() == 1 and not ImportJob.objects.exists()
    assert uploads(settings) == []


# --- tasks ------------------------------------------------------------------------------------------------------


def test_tasks_lists_those_the_token_reaches_with_the_roles_held(client, task, other_task, lead):
    annotated = TaskFactory(slug="annotated-only", name="Only annotated")
    MembershipFactory(task=annotated, user=lead, role=Role.ANNOTATOR)
    MembershipFactory(task=task, user=lead, role=Role.REVIEWER)
    response = client.get("/api/tasks", headers=auth(token_of(lead)))
    assert response.status_code == 200
    assert response.json() == [
        {
            "slug": "support",
            "name": "Support answers",
            "output_format": task.output_format,
            "roles": ["lead", "reviewer"],
            "exports_url": "/api/tasks/support/exports",
        }
    ]


# --- exports ----------------------------------------------------------------------------------------------------


def test_a_reviewer_lists_versions_with_files_checksums_and_download_urls(
    client, task, lead, reviewer, django_capture_on_commit_callbacks
):
    approve(task, 5)
    with django_capture_on_commit_callbacks(execute=True):
        export = build(task, export_format="messages", user=lead)
    token = token_of(reviewer)
    listed = client.get(f"/api/tasks/{task.slug}/exports", headers=auth(token)).json()
    assert [(v["version"], v["format"], v["state"], v["percent"]) for v in listed] == [
        (1, "messages", "succeeded", 100)
    ]
    files = {f["name"]: f for f in listed[0]["files"]}
    assert files["train.jsonl"]["sha256"] == export.files["train.jsonl"]["sha256"]
    download = client.get(files["train.jsonl"]["url"], headers=auth(token))
    assert download.status_code == 200
    assert b"".join(download.streaming_content).count(b"\n") == export.counts["train"]
    one = client.get(f"/api/tasks/{task.slug}/exports/v1", headers=auth(token))
    assert one.json() == listed[0]
    assert client.get(f"/api/tasks/{task.slug}/exports/v2", headers=auth(token)).status_code == 404


def test_a_lead_starts_an_export_and_it_is_audited_with_the_token(client, task, lead):
    approve(task, 5)
    row, token = services.token_create(user=lead, name="nightly")
    body = {"format": "sharegpt", "validation_ratio": 0.2, "test_ratio": 0.2, "kinds": ["happy"]}
    response = client.post(
        f"/api/tasks/{task.slug}/exports", body, content_type="application/json", headers=auth(token)
    )
    assert response.status_code == 202, response.content
    started = response.json()
    assert (started["version"], started["format"], started["test_ratio"], started["kinds"]) == (
        1,
        "sharegpt",
        0.2,
        ["happy"],
    )
    assert started["url"] == f"/api/tasks/{task.slug}/exports/v1"
    export = Export.objects.get(task=task)
    assert (export.format, export.validation_ratio, export.created_by) == ("sharegpt", 0.2, lead)
    event = AuditEvent.objects.get(action=AuditEvent.Action.API_REQUEST)
    assert (event.actor, event.target, event.detail["token"], event.detail["token_name"]) == (
        lead,
        "v1",
        row.prefix,
        "nightly",
    )
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT_REQUESTED, actor=lead).exists()


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"format": "llama"}, "format", "Unknown format 'llama'"),
        ({"format": "messages", "validation_ratio": 1.5}, "validation_ratio", "less than 1"),
        ({"format": "messages", "validation_ratio": 0.5, "test_ratio": 0.5}, "test_ratio", "add up to 1 or more"),
        ({"format": "messages", "kinds": ["sad"]}, "kinds", "Unknown kind 'sad'"),
        ({"format": "messages", "splits": 3}, "splits", "Extra inputs are not permitted"),
        ({}, "format", "Field required"),
    ],
)
def test_bad_export_input_is_a_400_naming_the_field_and_starts_nothing(client, task, lead, body, field, says):
    approve(task, 3)
    response = client.post(
        f"/api/tasks/{task.slug}/exports", body, content_type="application/json", headers=auth(token_of(lead))
    )
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert any(p["field"] == field and says in p["message"] for p in problems), problems
    assert not Export.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.API_REQUEST).exists()


def test_nothing_approved_is_a_400_that_says_so(client, task, lead):
    response = client.post(
        f"/api/tasks/{task.slug}/exports",
        {"format": "alpaca"},
        content_type="application/json",
        headers=auth(token_of(lead)),
    )
    assert response.status_code == 400
    assert response.json()["problems"] == [{"field": "", "message": "Nothing to export: no approved examples yet."}]


def test_roles_as_in_the_pages(client, task, other_task, annotator, reviewer, outsider):
    approve(task, 3)
    export = {"format": "alpaca"}
    reviewer_token, annotator_token, outsider_token = token_of(reviewer), token_of(annotator), token_of(outsider)
    # A reviewer reads versions but starts nothing.
    assert client.get(f"/api/tasks/{task.slug}/exports", headers=auth(reviewer_token)).status_code == 200
    refused = client.post(
        f"/api/tasks/{task.slug}/exports", export, content_type="application/json", headers=auth(reviewer_token)
    )
    assert refused.status_code == 403
    assert "lead" in refused.json()["detail"]
    assert post_import(client, task, reviewer_token, jsonl({"instruction": "Hi"})).status_code == 403
    # An annotator's token reaches no export.
    assert client.get(f"/api/tasks/{task.slug}/exports", headers=auth(annotator_token)).status_code == 403
    # Another task's member: the task does not exist for them.
    for path in (f"/api/tasks/{task.slug}/exports", f"/api/tasks/{task.slug}/exports/v1", "/api/tasks/nope/exports"):
        response = client.get(path, headers=auth(outsider_token))
        assert response.status_code == 404
        assert response.json()["detail"]
    assert post_import(client, task, outsider_token, jsonl({"instruction": "Hi"})).status_code == 404
    assert (
        not Export.objects.exists()
        and not ImportJob.objects.exists()
        and not Example.objects.filter(instruction="Hi").exists()
    )


# --- imports ----------------------------------------------------------------------------------------------------


def test_a_lead_imports_a_small_file_at_once(client, task, lead, settings):
    content = jsonl(
        {"instruction": "Reset the hub?", "output": "Hold the button for ten seconds.", "id": "a-1"},
        {"instruction": "Pair a sensor?", "output": "Press pair in the app.", "id": "a-2"},
    )
    response = post_import(client, task, token_of(lead), content, status="approved")
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["state"], job["percent"], job["counts"]["records"], job["status_on_import"]) == (
        "succeeded",
        100,
        2,
        "approved",
    )
    stored = Example.objects.filter(task=task).order_by("external_id")
    assert [(e.external_id, e.completion, e.status) for e in stored] == [
        ("a-1", "Hold the button for ten seconds.", "approved"),
        ("a-2", "Press pair in the app.", "approved"),
    ]
    again = client.get(job["url"], headers=auth(token_of(lead)))
    assert again.json()["id"] == job["id"]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.API_REQUEST, target=f"import {job['id']}").exists()
    assert uploads(settings) == []  # the job ended: its upload is gone


def test_a_bad_record_refuses_the_whole_file_with_its_line(client, task, lead, settings):
    content = jsonl({"instruction": "One"}, {"instruction": "Two"}, {"output": "no instruction"})
    response = post_import(client, task, token_of(lead), content)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Nothing was imported."
    assert any("line 3" in p["message"] and p["field"] == "file" for p in body["problems"]), body
    assert not Example.objects.filter(task=task).exists()
    assert not ImportJob.objects.exists()
    assert uploads(settings) == []


def test_keys_that_map_to_nothing_are_refused_until_allowed(client, task, lead):
    content = jsonl({"instruction": "One", "source": "web"}, {"instruction": "Two", "source": "mail"})
    token = token_of(lead)
    refused = post_import(client, task, token, content)
    assert refused.status_code == 400
    messages = " ".join(p["message"] for p in refused.json()["problems"])
    assert "source" in messages and "allow_unmapped=source" in messages
    assert not Example.objects.filter(task=task).exists()
    kept = post_import(client, task, token, content, keep_unmapped="source")
    assert kept.status_code == 201
    assert sorted(Example.objects.filter(task=task).values_list("instruction", flat=True)) == ["One", "Two"]


def test_a_mapping_names_keys_and_paths(client, task, lead):
    content = jsonl({"question": "Reset?", "answer": {"text": "Hold it."}})
    mapping = orjson.dumps({"keys": {"question": "instruction", "answer": ""}, "paths": {"completion": "answer.text"}})
    response = post_import(client, task, token_of(lead), content, mapping=mapping.decode(), status="submitted")
    assert response.status_code == 201, response.content
    example = Example.objects.get(task=task)
    assert (example.instruction, example.completion, example.status) == ("Reset?", "Hold it.", "submitted")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"status": "rejected"}, "status"),
        ({"file_format": "xlsx"}, "file_format"),
        ({"mapping": "{not json"}, "mapping"),
        ({"mapping": '{"keys": {"q": "answer"}}'}, "mapping.keys.q"),
        ({"mapping": '{"paths": {"completion": "a..b"}}'}, "mapping.paths"),
        ({"allow_unmapped": "x", "keep_unmapped": "x"}, "keep_unmapped"),
    ],
)
def test_bad_import_fields_are_a_400_naming_the_field_and_leave_no_file(client, task, lead, settings, fields, field):
    response = post_import(client, task, token_of(lead), jsonl({"instruction": "One"}), **fields)
    assert response.status_code == 400
    assert field in [p["field"] for p in response.json()["problems"]]
    assert not Example.objects.filter(task=task).exists()
    assert uploads(settings) == []


def test_a_request_without_a_file_or_over_the_limit_is_refused(client, task, lead, settings):
    token = token_of(lead)
    missing = client.post(f"/api/tasks/{task.slug}/imports", {"status": "new"}, headers=auth(token))
    assert missing.status_code == 400
    assert missing.json()["problems"] == [{"field": "file", "message": "missing"}]
    settings.MAX_IMPORT_BYTES = 100
    big = post_import(client, task, token, jsonl(*({"instruction": "x" * 50} for _ in range(5))))
    assert big.status_code == 400
    assert "over the import limit of" in big.json()["problems"][0]["message"]
    assert uploads(settings) == []


def test_a_large_file_is_queued_and_followed_to_the_end(
    client, task, lead, settings, monkeypatch, inline_celery, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(limits, "INLINE_MAX_BYTES", 10)  # anything bigger goes to a worker
    content = jsonl(*({"instruction": f"Question {i}", "output": f"Answer {i}"} for i in range(20)))
    token = token_of(lead)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_import(client, task, token, content, status="approved")
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    for callback in callbacks:  # the message to the worker, sent after the commit
        callback()
    done = client.get(response.json()["url"], headers=auth(token)).json()
    assert (done["state"], done["counts"]["records"]) == ("succeeded", 20)
    assert Example.objects.filter(task=task, status="approved").count() == 20


def test_another_tasks_import_is_a_404(client, task, other_task, lead):
    foreign_lead = UserFactory(username="fiona")
    MembershipFactory(task=other_task, user=foreign_lead, role=Role.LEAD)
    response = post_import(client, other_task, token_of(foreign_lead), jsonl({"instruction": "Theirs"}))
    assert response.status_code == 201
    job_id = response.json()["id"]
    assert client.get(f"/api/tasks/{task.slug}/imports/{job_id}", headers=auth(token_of(lead))).status_code == 404
    assert client.get(f"/api/tasks/{other_task.slug}/imports/{job_id}", headers=auth(token_of(lead))).status_code == 404
