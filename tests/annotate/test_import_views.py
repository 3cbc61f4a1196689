"""The import pages: upload, map and preview, commit, follow the job; leads only."""

import json
import re
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import importing
from annotate.importing import LISTING_PROBLEMS
from annotate.models import Example, ImportJob, Revision, Transition
from pairsmith.jobs import JobState

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("both_storages")]


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def upload(client, task, content: bytes, name: str = "pairs.jsonl", file_format: str = ""):
    url = reverse("imports:upload", args=[task.slug])
    return client.post(url, {"file": SimpleUploadedFile(name, content), "file_format": file_format})


def token_of(response) -> str:
    return re.search(r"/import/([0-9a-f-]{36})/$", response.url).group(1)


def uploads(settings) -> list[Path]:
    folder = Path(settings.VAR_DIR) / "imports"
    return sorted(folder.glob("*")) if folder.exists() else []


def rows() -> tuple[int, int, int]:
    return Example.objects.count(), Revision.objects.count(), Transition.objects.count()


QA = [{"question": f"Question {i}?", "answer": f"Answer {i}", "type": "edge" if i % 2 else "happy"} for i in range(12)]


# --- upload --------------------------------------------------------------------------------------------------


def test_upload_page_shows_the_form_and_recent_imports(client, lead, task):
    ImportJob.objects.create(task=task, filename="<b>old</b>.csv", path="/nowhere", file_format="csv")
    client.force_login(lead)
    response = client.get(reverse("imports:upload", args=[task.slug]))
    assertContains(response, 'enctype="multipart/form-data"')
    assertContains(response, "&lt;b&gt;old&lt;/b&gt;.csv")
    assertNotContains(response, "<b>old</b>")


def test_upload_is_stored_under_a_generated_name_and_leads_to_the_mapping(client, lead, task, settings):
    client.force_login(lead)
    response = upload(client, task, jsonl(*QA), name="../../etc/<b onclick=x>.jsonl")
    assert response.status_code == 302
    token = token_of(response)
    assert [p.name for p in uploads(settings)] == [f"{token}.upload"]
    page = client.get(response.url)
    assertContains(page, "&lt;b onclick=x&gt;.jsonl")
    assertNotContains(page, "<b onclick")
    assertContains(page, "<code>question</code>")
    # Ten records previewed, not stored: the mapping is not done.
    assert page.content.decode().count('<td class="muted small">line ') == importing.PREVIEW_RECORDS
    assertContains(page, "field &quot;instruction&quot;: missing")
    assert rows() == (0, 0, 0)


def test_upload_over_the_limit_is_refused_and_leaves_no_file(client, lead, task, settings):
    settings.MAX_IMPORT_BYTES = 100
    client.force_login(lead)
    response = upload(client, task, jsonl(*QA))
    assert response.status_code == 200
    assertContains(response, "The file is over the import limit of 100 bytes (MAX_IMPORT_BYTES).")
    assert uploads(settings) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "The submitted file is empty."), (b"[1, 2", "record 1 (line 1): expected a JSON object")],
)
def test_upload_of_an_unusable_file_is_refused_and_leaves_no_file(client, lead, task, settings, content, message):
    client.force_login(lead)
    response = upload(client, task, content, name="x.json")
    assertContains(response, message)
    assert uploads(settings) == []


# --- mapping, preview, commit --------------------------------------------------------------------------------


def csv_upload(client, task) -> str:
    lines = ["question,answer,type"] + [f"{r['question']},{r['answer']},{r['type']}" for r in QA]
    response = upload(client, task, ("\n".join(lines) + "\n").encode(), name="qa.csv")
    return reverse("imports:mapping", args=[task.slug, token_of(response)])


MAPPED = {"map_0": "instruction", "map_1": "completion", "map_2": "kind", "status": "new"}


def test_htmx_preview_returns_the_fragment_with_the_mapping_applied(client, lead, task):
    client.force_login(lead)
    url = csv_upload(client, task)
    response = client.post(url + "preview/", MAPPED, headers={"HX-Request": "true"})
    assertContains(response, 'id="import-preview"')
    assertNotContains(response, "<html")
    assertContains(response, "Question 1?</td>")
    assertContains(response, '<div class="table-scroll">')  # a wide table scrolls in its card, not the page
    assertContains(response, "<td>edge</td>")
    assert rows() == (0, 0, 0)


def test_mapping_form_refuses_two_columns_for_one_field(client, lead, task):
    client.force_login(lead)
    url = csv_upload(client, task)
    response = client.post(url, {**MAPPED, "map_1": "instruction", "action": "import"})
    assertContains(response, "Only one column can go to Instruction (or prompt): question, answer.")
    assert rows() == (0, 0, 0)


def test_commit_with_problems_shows_them_and_keeps_the_upload(client, lead, task, settings):
    client.force_login(lead)
    url = csv_upload(client, task)
    response = client.post(url, {**MAPPED, "map_2": "external_id", "action": "import"})  # "edge" twice: duplicate id
    assertContains(response, "Nothing was imported.")
    assertContains(response, "row 4, field &quot;type&quot;: &quot;happy&quot; repeats the id of row 2")
    assert rows() == (0, 0, 0) and not ImportJob.objects.exists()
    assert len(uploads(settings)) == 1
    assert client.get(url).status_code == 200  # still there for another try


def test_commit_of_a_small_file_imports_now_and_shows_the_result(client, lead, task, settings):
    client.force_login(lead)
    url = csv_upload(client, task)
    response = client.post(url, {**MAPPED, "status": "submitted", "action": "import"})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("imports:job", args=[task.slug, job.pk])
    assert job.state == JobState.SUCCEEDED and job.progress == job.total == job.size and not job.notice
    assert job.counts["records"] == 12 and job.mapping == {
        "keys": {"question": "instruction", "answer": "completion", "type": "kind"},
        "paths": {},
        "drop": [],
        "keep": [],
    }
    assert task.examples.filter(status="submitted", kind="edge").count() == 6
    assert Transition.objects.filter(actor=lead, to_status="submitted").count() == 12
    page = client.get(response.url)
    assertContains(page, "Imported 12 examples (status submitted): 12 with completions.")
    assertNotContains(page, "every 2s")  # finished: nothing polls
    assert uploads(settings) == []
    assert client.get(url).status_code == 404  # the upload became the job


def test_commit_of_a_large_file_queues_a_job_that_runs_inline_without_redis(
    client, lead, task, settings, monkeypatch, django_capture_on_commit_callbacks, inline_celery
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setattr(importing.limits, "INLINE_MAX_RECORDS", 5)
    client.force_login(lead)
    url = csv_upload(client, task)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, {**MAPPED, "action": "import"})
    job = ImportJob.objects.get()
    assert job.state == JobState.QUEUED and len(callbacks) == 1 and rows() == (0, 0, 0)
    page = client.get(response.url)
    assertContains(page, 'hx-trigger="every 2s"')
    assertContains(page, "Waiting for a worker.")
    callbacks[0]()  # what on_commit does: sends the job; without Redis, Celery runs it here and now
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and task.examples.count() == 12
    fragment = client.get(reverse("imports:progress", args=[task.slug, job.pk]), headers={"HX-Request": "true"})
    assertContains(fragment, 'id="import-job"')
    assertNotContains(fragment, "every 2s")
    assertContains(fragment, "Imported 12 examples")


def test_json_records_of_every_shape_import_with_the_prefilled_mapping(client, lead, task):
    shapes = [
        {"instruction": "Reset?", "output": "Hold it.", "id": "a"},
        {"prompt": "Say hi", "completion": "hi"},
        {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]},
    ]
    client.force_login(lead)
    url = reverse("imports:mapping", args=[task.slug, token_of(upload(client, task, jsonl(*shapes)))])
    form = client.get(url).context["form"]
    prefilled = {f"map_{i}": form[f"map_{i}"].initial for i in range(len(form.keys))}
    assert dict(zip(form.keys, prefilled.values(), strict=True)) == {
        "instruction": "instruction", "output": "completion", "id": "external_id", "prompt": "instruction",
        "completion": "completion", "messages": "messages",
    }  # fmt: skip
    response = client.post(url, {**prefilled, "status": "new", "action": "import"})
    assert response.status_code == 302
    assert sorted(task.examples.values_list("instruction", flat=True)) == ["Hello", "Reset?", "Say hi"]


def test_progress_fragment_polls_while_running(client, lead, task):
    job = ImportJob.objects.create(task=task, filename="a.jsonl", path="/x", file_format="jsonl", size=100,
                                   state=JobState.RUNNING, progress=150, total=200)  # fmt: skip
    client.force_login(lead)
    response = client.get(reverse("imports:progress", args=[task.slug, job.pk]))
    assertContains(response, 'hx-trigger="every 2s"')
    assertContains(response, '<progress max="100" value="75"')
    assertContains(response, "Checking and importing every record: 75% (nothing is kept unless every record is good)")
    ImportJob.objects.filter(pk=job.pk).update(progress=50, notice=LISTING_PROBLEMS)
    response = client.get(reverse("imports:progress", args=[task.slug, job.pk]))
    assertContains(response, f"{LISTING_PROBLEMS} 25%")


def test_failed_job_shows_its_problems_escaped(client, lead, task):
    job = ImportJob.objects.create(task=task, filename="a.jsonl", path="/x", file_format="jsonl",
                                   state=JobState.FAILED, error='line 2, field "id": "<i>x</i>" repeats')  # fmt: skip
    client.force_login(lead)
    response = client.get(reverse("imports:job", args=[task.slug, job.pk]))
    assertContains(response, "line 2, field &quot;id&quot;: &quot;&lt;i&gt;x&lt;/i&gt;&quot; repeats")


def test_cancel_a_queued_job_deletes_its_upload(client, lead, task, tmp_path):
    path = tmp_path / "upload"
    path.write_text("{}")
    job = ImportJob.objects.create(task=task, filename="a.jsonl", path=str(path), file_format="jsonl")
    client.force_login(lead)
    response = client.post(reverse("imports:cancel", args=[task.slug, job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED and not path.exists()
    assertContains(client.get(response.url), "Cancelled: nothing was imported.")


def test_another_tasks_job_and_an_unknown_upload_are_404(client, lead, task, other_task):
    foreign = ImportJob.objects.create(task=other_task, filename="a", path="/x", file_format="jsonl")
    client.force_login(lead)
    assert client.get(reverse("imports:job", args=[task.slug, foreign.pk])).status_code == 404
    assert client.get(reverse("imports:mapping", args=[task.slug, uuid.uuid4()])).status_code == 404


def test_an_upload_belongs_to_its_session_and_task(client, lead, task, other_task, staff):
    client.force_login(lead)
    url = csv_upload(client, task)
    token = url.rstrip("/").rsplit("/", 1)[1]
    client.force_login(staff)  # a new session: the upload is not in it
    assert client.get(url).status_code == 404
    assert client.get(reverse("imports:mapping", args=[other_task.slug, token])).status_code == 404


def test_task_page_links_to_import_for_leads_only(client, lead, annotator, task):
    client.force_login(lead)
    assertContains(client.get(task.get_absolute_url()), reverse("imports:upload", args=[task.slug]))
    client.force_login(annotator)
    assertNotContains(client.get(task.get_absolute_url()), reverse("imports:upload", args=[task.slug]))


def test_stale_uploads_are_pruned_but_not_those_of_live_jobs(task, settings):
    folder = Path(settings.VAR_DIR) / "imports"
    folder.mkdir(parents=True)
    stale, live, fresh = (folder / f"{uuid.uuid4()}.upload" for _ in range(3))
    for path in (stale, live, fresh):
        path.write_text("{}")
    ImportJob.objects.create(task=task, filename="a", path=str(live), file_format="jsonl")
    import os

    for path in (stale, live):
        os.utime(path, (0, 0))
    assert importing.uploads_prune() == 1
    assert not stale.exists() and live.exists() and fresh.exists()


# --- permissions: every import URL ---------------------------------------------------------------------------


def import_urls(task, job) -> list[tuple[str, str]]:
    token = uuid.uuid4()
    return [
        ("get", reverse("imports:upload", args=[task.slug])),
        ("post", reverse("imports:upload", args=[task.slug])),
        ("get", reverse("imports:mapping", args=[task.slug, token])),
        ("post", reverse("imports:mapping", args=[task.slug, token])),
        ("post", reverse("imports:preview", args=[task.slug, token])),
        ("get", reverse("imports:job", args=[task.slug, job.pk])),
        ("get", reverse("imports:progress", args=[task.slug, job.pk])),
        ("post", reverse("imports:cancel", args=[task.slug, job.pk])),
    ]


@pytest.fixture
def job(task, tmp_path):
    return ImportJob.objects.create(task=task, filename="a.jsonl", path=str(tmp_path / "f"), file_format="jsonl")


@pytest.mark.parametrize("persona", ["annotator", "reviewer"])
def test_wrong_role_gets_403_everywhere(client, request, task, job, persona):
    client.force_login(request.getfixturevalue(persona))
    for method, url in import_urls(task, job):
        assert getattr(client, method)(url).status_code == 403, (method, url)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


def test_outsider_gets_404_everywhere(client, outsider, task, job):
    client.force_login(outsider)
    for method, url in import_urls(task, job):
        assert getattr(client, method)(url).status_code == 404, (method, url)


def test_anonymous_is_sent_to_log_in(client, task, job):
    for method, url in import_urls(task, job):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/login/" in response.url, (method, url)


def test_the_preview_keeps_the_line_breaks_of_the_records(client, lead, task):
    client.force_login(lead)
    record = b'{"instruction": "Line one\\nLine two", "completion": "First\\n\\nSecond"}\n'
    response = upload(client, task, record)
    mapping = {"map_0": "instruction", "map_1": "completion", "status": "new"}
    preview = client.post(response.url + "preview/", mapping, headers={"HX-Request": "true"})
    assertContains(preview, '<td class="keep-lines">Line one\nLine two', html=False)
    assertContains(preview, '<td class="keep-lines">First\n\nSecond</td>', html=False)
