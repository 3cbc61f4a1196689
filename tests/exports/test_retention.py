"""Export versions do not pile up: a task keeps its newest `export_keep_versions` succeeded versions, the older ones
are pruned when an export succeeds, and a lead deletes a version by hand. Files go, rows stay (numbers are never
given twice), downloads answer 404, and the audit log says who deleted what and what was pruned."""

from hashlib import sha256

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import AuditEvent, Task
from exports import retention, services
from exports.models import Export
from pairsmith.jobs import JobState

from .conftest import approve, build, stored_folders

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    """Run what a service defers to after its commit (the removal of files), as it runs outside a test's
    transaction."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


def folders(task) -> list[str]:
    return stored_folders(task)


def keep(task, n: int) -> None:
    Task.objects.filter(pk=task.pk).update(export_keep_versions=n)
    task.refresh_from_db()


def test_versions_beyond_the_number_kept_are_pruned_when_an_export_succeeds(task, lead, run_after_commit):
    keep(task, 2)
    approve(task, 6)
    exports = [run_after_commit(build, task, user=lead) for _ in range(4)]
    assert [export.state for export in exports] == [JobState.SUCCEEDED] * 4
    assert folders(task) == ["v3", "v4"]
    rows = {export.version: export for export in Export.objects.filter(task=task)}
    assert [v for v, row in sorted(rows.items()) if row.deletion == Export.Deletion.PRUNED] == [1, 2]
    assert rows[1].deleted_at is not None and rows[1].deleted_by is None
    assert rows[3].deleted_at is None and rows[4].deletion == ""
    events = AuditEvent.objects.filter(task=task, action=AuditEvent.Action.EXPORT_PRUNED).order_by("id")
    assert [(e.actor, e.target, e.detail) for e in events] == [
        (None, "v1", {"versions": [1], "keep": 2}),
        (None, "v2", {"versions": [2], "keep": 2}),
    ]


def test_lowering_the_number_kept_prunes_at_the_next_success_and_failures_do_not_count(task, lead, run_after_commit):
    approve(task, 4)
    for _ in range(4):
        run_after_commit(build, task, user=lead)
    broken = approve(task, 1, start=90, completion="")  # fails the next export
    assert run_after_commit(build, task, user=lead).state == JobState.FAILED  # v5: prunes nothing
    assert folders(task) == ["v1", "v2", "v3", "v4"]
    broken[0].delete()
    keep(task, 1)
    assert run_after_commit(build, task, user=lead).version == 6
    assert folders(task) == ["v6"]
    event = AuditEvent.objects.get(task=task, action=AuditEvent.Action.EXPORT_PRUNED)
    assert event.target == "v1, v2, v3, v4" and event.detail == {"versions": [1, 2, 3, 4], "keep": 1}


def test_version_numbers_are_never_given_twice(task, lead, run_after_commit):
    approve(task, 3)
    first = run_after_commit(build, task, user=lead)
    newest = run_after_commit(build, task, user=lead)
    run_after_commit(retention.export_delete, export=newest, actor=lead)
    run_after_commit(retention.export_delete, export=first, actor=lead)
    assert folders(task) == []
    assert run_after_commit(build, task, user=lead).version == 3


def test_a_deleted_version_is_not_the_base_of_the_next_comparison(task, lead, run_after_commit):
    approve(task, 3)
    first = run_after_commit(build, task, user=lead)
    run_after_commit(retention.export_delete, export=first, actor=lead)
    second = run_after_commit(build, task, user=lead)
    assert second.state == JobState.SUCCEEDED and second.base_version is None


def test_the_next_prune_removes_files_a_dead_removal_left(task, lead, run_after_commit):
    """The row is marked in the transaction; the files go after commit. If the process died in between, the files
    of the deleted version stay until the next prune, which removes them."""
    approve(task, 3)
    first = build(task, user=lead)  # no after-commit: as if the worker died before removing anything
    Export.objects.filter(pk=first.pk).update(deleted_at=first.finished_at, deletion=Export.Deletion.DELETED)
    assert folders(task) == ["v1"]
    run_after_commit(build, task, user=lead)
    assert folders(task) == ["v2"]


def test_the_number_kept_is_between_1_and_200(task):
    for bad in (0, 201):
        with pytest.raises(IntegrityError), transaction.atomic():
            Task.objects.filter(pk=task.pk).update(export_keep_versions=bad)
    assert Task.objects.get(pk=task.pk).export_keep_versions == 20


# --- the task settings page --------------------------------------------------------------------------------------


def settings_post(task, **overrides) -> dict:
    data = {"name": task.name, "output_format": task.output_format, "approvals_required": "1",
            "validation_ratio": "0.1", "split_seed": task.split_seed}  # fmt: skip
    return data | overrides


def test_the_lead_sets_the_number_kept_in_the_task_settings(client, task, lead):
    client.force_login(lead)
    url = reverse("annotate:task_edit", args=[task.slug])
    assertContains(client.get(url), 'name="export_keep_versions" value="20"')
    response = client.post(url, settings_post(task, export_keep_versions="5"))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.export_keep_versions == 5
    event = AuditEvent.objects.get(task=task, action=AuditEvent.Action.SETTINGS_CHANGED)
    assert "export_keep_versions" in event.detail["fields"]
    client.post(url, settings_post(task))  # left out: unchanged
    task.refresh_from_db()
    assert task.export_keep_versions == 5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "Keep at least 1 export version (at most 200)."),
        ("201", "Keep at most 200 export versions (at least 1)."),
        ("ten", "Enter a whole number."),
    ],
)
def test_a_number_kept_out_of_range_is_refused_by_name(client, task, lead, value, message):
    client.force_login(lead)
    response = client.post(
        reverse("annotate:task_edit", args=[task.slug]), settings_post(task, export_keep_versions=value)
    )
    assert response.status_code == 200
    assertContains(response, message)
    task.refresh_from_db()
    assert task.export_keep_versions == 20


# --- deleting by hand ----------------------------------------------------------------------------------------------


@pytest.fixture
def two_versions(task, lead, run_after_commit):
    approve(task, 6)
    return run_after_commit(build, task, user=lead), run_after_commit(build, task, user=lead)


def delete_url(task, export) -> str:
    return reverse("exports:delete", args=[task.slug, export.version])


def test_the_lead_deletes_a_version_from_the_exports_page(client, task, lead, two_versions, run_after_commit):
    first, second = two_versions
    client.force_login(lead)
    page = client.get(reverse("exports:list", args=[task.slug]))
    assertContains(page, f'action="{delete_url(task, first)}"')
    assertContains(page, 'name="confirm" value="v1"')
    response = run_after_commit(client.post, delete_url(task, first), {"confirm": "v1"}, follow=True)
    assertContains(response, "Export v1 deleted: its files are gone; its number is not reused.")
    assertContains(response, "Deleted by leo")
    assertNotContains(response, "/exports/v1/files/")
    assertContains(response, "/exports/v2/files/train.jsonl")
    assert folders(task) == ["v2"]
    first.refresh_from_db()
    assert (first.deletion, first.deleted_by, first.state) == ("deleted", lead, JobState.SUCCEEDED)
    event = AuditEvent.objects.get(task=task, action=AuditEvent.Action.EXPORT_DELETED)
    assert (event.actor, event.target) == (lead, "v1")
    assert event.detail == {"version": 1, "format": "openai-chat",
                            "files": ["README.md", "manifest.json", "train.jsonl", "validation.jsonl"]}  # fmt: skip


def test_deleting_needs_the_confirmation_and_changes_nothing_without_it(client, task, lead, two_versions):
    first, _ = two_versions
    client.force_login(lead)
    for data in ({}, {"confirm": "v2"}, {"confirm": "yes"}):
        response = client.post(delete_url(task, first), data, follow=True)
        assertContains(response, "Export v1 was not deleted: confirm by pressing “Delete v1”.")
    first.refresh_from_db()
    assert first.deleted_at is None and folders(task) == ["v1", "v2"]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT_DELETED).exists()


def test_deleting_is_a_post_for_leads_only(client, task, lead, reviewer, two_versions):
    first, _ = two_versions
    client.force_login(lead)
    assert client.get(delete_url(task, first)).status_code == 405
    client.force_login(reviewer)
    assert client.post(delete_url(task, first), {"confirm": "v1"}).status_code == 403
    assertNotContains(client.get(reverse("exports:list", args=[task.slug])), "Delete v1")
    first.refresh_from_db()
    assert first.deleted_at is None


def test_only_a_succeeded_version_that_is_still_there_can_be_deleted(client, task, lead, two_versions):
    first, _ = two_versions
    client.force_login(lead)
    client.post(delete_url(task, first), {"confirm": "v1"})
    response = client.post(delete_url(task, first), {"confirm": "v1"}, follow=True)
    assertContains(response, "Export v1 was deleted already.")
    queued = services.export_request(task=task, export_format="alpaca", user=lead)
    Export.objects.filter(pk=queued.pk).update(state=JobState.FAILED)
    response = client.post(delete_url(task, queued), {"confirm": "v3"}, follow=True)
    assertContains(response, "Export v3 has failed: only a succeeded version has files to delete.")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT_DELETED).count() == 1


def test_downloads_of_a_deleted_version_answer_404(client, task, lead, reviewer, two_versions, run_after_commit):
    first, second = two_versions
    token = services.token_create(user=reviewer, name="pipeline")[1]
    headers = {"Authorization": f"Bearer {token}"}
    run_after_commit(retention.export_delete, export=second, actor=lead)  # the newest
    client.force_login(reviewer)
    for name in ("train.jsonl", "README.md"):
        assert client.get(reverse("exports:download", args=[task.slug, 2, name])).status_code == 404
        response = client.get(f"/api/tasks/{task.slug}/exports/v2/{name}", headers=headers)
        assert response.status_code == 404
        assert response.content == b"Export v2 was deleted; its files are gone.\n"
    latest = client.get(f"/api/tasks/{task.slug}/exports/latest/train.jsonl", headers=headers)  # v1 now
    assert latest.status_code == 200
    assert sha256(b"".join(latest.streaming_content)).hexdigest() == first.files["train.jsonl"]["sha256"]
    run_after_commit(retention.export_delete, export=first, actor=lead)
    latest = client.get(f"/api/tasks/{task.slug}/exports/latest/train.jsonl", headers=headers)
    assert latest.status_code == 404


def test_the_exports_page_says_how_many_versions_are_kept_and_which_were_pruned(client, task, lead, run_after_commit):
    keep(task, 1)
    approve(task, 3)
    run_after_commit(build, task, user=lead)
    run_after_commit(build, task, user=lead)
    client.force_login(lead)
    response = client.get(reverse("exports:list", args=[task.slug]))
    assertContains(response, "This task keeps its 1 newest succeeded versions")
    assertContains(response, "older than the 1 newest versions this task keeps")
    assertNotContains(response, "/exports/v1/files/")
