"""A json task's completion holding a number Python cannot read ("1" * 5000): a clear finding everywhere the
completion is checked, never a server error (feedback, save, submit, the task-wide scan, import, export)."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate import services
from annotate.models import Example
from annotate.scans import scan_request
from exports import services as export_services
from pairsmith.jobs import JobState
from tests.exports.conftest import build, read_lines
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
HUGE = "1" * 5_000
MESSAGE = "The completion is not valid JSON: a number longer than 4,300 digits (the limit) at line 1, column 1."


@pytest.fixture
def json_task(task):
    task.output_format = "json"
    task.json_schema = {"type": "object"}
    task.save()
    return task


@pytest.fixture
def draft(json_task, annotator):
    example = ExampleFactory(task=json_task, instruction="Extract the order number.")
    claimed = services.example_claim_next(task=json_task, user=annotator)
    assert claimed.pk == example.pk
    return claimed


def format_warnings(example: Example) -> list[str]:
    example.refresh_from_db()
    return [w["message"] for w in example.warnings if w["code"] == "format"]


@pytest.mark.parametrize("schema", [{"type": "object"}, None], ids=["schema", "no-schema"])
def test_feedback_names_the_limit(client, json_task, annotator, draft, schema):
    json_task.json_schema = schema
    json_task.save()
    client.force_login(annotator)
    response = client.post(reverse("annotate:feedback", args=[json_task.slug, draft.uuid]), {"completion": HUGE})
    assert response.status_code == 200
    assertContains(response, MESSAGE)


def test_save_stores_the_text_and_the_finding(client, json_task, annotator, draft):
    client.force_login(annotator)
    url = reverse("annotate:save", args=[json_task.slug, draft.uuid])
    response = client.post(url, {"completion": HUGE, "kind": "happy", "version": draft.version})
    assert response.status_code == 200
    assertContains(response, "Saved")
    assert Example.objects.get(pk=draft.pk).completion == HUGE
    assert format_warnings(draft) == [MESSAGE]


def test_submit_blocked_by_the_format_check_says_why_and_keeps_the_example(client, json_task, annotator, draft):
    json_task.blocking_checks = ["format"]
    json_task.save()
    client.force_login(annotator)
    url = reverse("annotate:submit", args=[json_task.slug, draft.uuid])
    response = client.post(url, {"completion": HUGE, "kind": "happy", "version": draft.version})
    assert response.status_code == 200
    assertContains(response, f"Fix these before submitting: {MESSAGE}")
    assert Example.objects.get(pk=draft.pk).status != Example.Status.SUBMITTED


def test_submit_when_the_check_only_warns(client, json_task, annotator, draft):
    client.force_login(annotator)
    url = reverse("annotate:submit", args=[json_task.slug, draft.uuid])
    response = client.post(url, {"completion": HUGE, "kind": "happy", "version": draft.version})
    assert response.status_code == 302
    assert Example.objects.get(pk=draft.pk).status == Example.Status.SUBMITTED
    assert format_warnings(draft) == [MESSAGE]


def test_the_task_wide_scan_finishes_and_names_the_number(
    json_task, lead, inline_celery, django_capture_on_commit_callbacks
):
    huge = ExampleFactory(task=json_task, completion=HUGE, status="submitted")
    fine = ExampleFactory(task=json_task, completion='{"order": 42}', status="submitted")
    with django_capture_on_commit_callbacks(execute=True):
        scan = scan_request(task=json_task, user=lead)
    scan.refresh_from_db()
    assert scan.state == JobState.SUCCEEDED, scan.error
    assert format_warnings(huge) == [MESSAGE]
    assert format_warnings(fine) == []


def test_import_stores_the_record_with_its_finding(json_task, tmp_path):
    path = tmp_path / "huge.jsonl"
    records = [{"instruction": "Extract.", "completion": HUGE}, {"instruction": "Extract it.", "completion": "{}"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = StringIO()
    call_command("import_examples", json_task.slug, str(path), "--status", "submitted", stdout=out)
    assert re.search(r"Imported 2 examples", out.getvalue())
    assert format_warnings(json_task.examples.get(completion=HUGE)) == [MESSAGE]
    assert format_warnings(json_task.examples.get(completion="{}")) == []


def test_export_writes_the_completion_as_its_text(json_task, lead):
    ExampleFactory(task=json_task, completion=HUGE, status="approved")
    export = build(json_task, export_format="prompt-completion", user=lead, validation_ratio=0)
    assert export.state == JobState.SUCCEEDED, export.error
    [record] = read_lines(export_services.export_dir(export) / "train.jsonl")
    assert record["completion"] == HUGE
