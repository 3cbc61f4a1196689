"""Versions: byte-identical when nothing changed, stable splits, diffs by content hash, and the job's life cycle."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Example
from exports import building, services
from exports.models import Export, ExportChange
from exports.tasks import export_build_task
from pairsmith.jobs import JobState, job_cancel, job_claim, job_fail, job_finish, job_heartbeat

from .conftest import approve, build, file_sha256, read_lines, version_folder

pytestmark = pytest.mark.django_db


def sides(export: Export) -> dict[str, str]:
    """uuid -> split, from the manifest."""
    manifest = json.loads((version_folder(export) / "manifest.json").read_text())
    return {uuid: name.split(".")[0] for name, rows in manifest["examples"].items() for _, uuid, _, _ in rows}


def changes(export: Export) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in ExportChange.objects.filter(export=export):
        found.setdefault(row.change, set()).add(str(row.example_uuid))
    return found


def test_same_approved_set_gives_byte_identical_files(task, lead):
    approve(task, 60)
    first, second = build(task, user=lead, validation_ratio=0.2), build(task, user=lead, validation_ratio=0.2)
    assert (first.version, second.version) == (1, 2)
    for name in ("train.jsonl", "validation.jsonl"):
        assert first.files[name]["sha256"] == second.files[name]["sha256"]
        assert file_sha256(version_folder(first) / name) == file_sha256(version_folder(second) / name)
    assert second.base_version == 1
    assert second.changes == {"added": 0, "removed": 0, "changed": 0, "moved": 0, "unchanged": 60}
    assert not ExportChange.objects.filter(export=second).exists()


def test_adding_approvals_changes_only_the_records_they_add(task, lead):
    approve(task, 50)
    before = build(task, user=lead, validation_ratio=0.2)
    added = approve(task, 20, start=500)
    after = build(task, user=lead, validation_ratio=0.2)
    added_uuids = {str(e.uuid) for e in added}
    assert changes(after) == {"added": added_uuids}
    assert after.changes == {"added": 20, "removed": 0, "changed": 0, "moved": 0, "unchanged": 50}
    old_sides, new_sides = sides(before), sides(after)
    assert {u: s for u, s in new_sides.items() if u in old_sides} == old_sides  # nobody changed sides
    for name in ("train.jsonl", "validation.jsonl"):
        old_lines = (version_folder(before) / name).read_bytes().split(b"\n")
        new_lines = (version_folder(after) / name).read_bytes().split(b"\n")
        # The new records are extra lines; every old line is still there, unchanged and in the same order.
        assert [line for line in new_lines if line in set(old_lines)] == old_lines
        assert len(new_lines) - len(old_lines) == after.counts[name.split(".")[0]] - before.counts[name.split(".")[0]]


def test_split_survives_many_versions(task, lead):
    approve(task, 40)
    first = sides(build(task, user=lead, validation_ratio=0.3))
    for step in range(3):
        approve(task, 15, start=1000 + 100 * step)
        later = sides(build(task, user=lead, validation_ratio=0.3))
        assert all(later[u] == side for u, side in first.items())


def test_edits_and_unapprovals_show_as_changed_and_removed(task, lead):
    examples = approve(task, 10)
    build(task, user=lead, validation_ratio=0.2)
    edited, withdrawn = examples[2], examples[7]
    Example.objects.filter(pk=edited.pk).update(completion="A better answer.")
    Example.objects.filter(pk=withdrawn.pk).update(status=Example.Status.DRAFT)
    after = build(task, user=lead, validation_ratio=0.2)
    assert changes(after) == {"changed": {str(edited.uuid)}, "removed": {str(withdrawn.uuid)}}
    assert after.changes == {"added": 0, "removed": 1, "changed": 1, "moved": 0, "unchanged": 8}
    removed = ExportChange.objects.get(export=after, change="removed")
    assert removed.split == sides(Export.objects.get(task=task, version=1))[str(withdrawn.uuid)]


def test_a_new_ratio_moves_examples_between_splits(task, lead):
    approve(task, 60)
    build(task, user=lead, validation_ratio=0.1)
    wider = build(task, user=lead, validation_ratio=0.5)
    moved = changes(wider).get("moved", set())
    assert moved and set(changes(wider)) == {"moved"}
    assert all(side == "validation" for u, side in sides(wider).items() if u in moved)


def test_cancel_stops_a_running_export_and_leaves_nothing(task, lead, monkeypatch):
    approve(task, 300)
    monkeypatch.setattr(building, "HEARTBEAT_SECONDS", 0)
    export = services.export_request(task=task, export_format="alpaca", user=lead)

    def heartbeat_then_cancel(job, *, progress, total=None):
        if progress >= 64:
            services.export_cancel(export=job)  # the lead presses Cancel while the worker writes
        return job_heartbeat(job, progress=progress, total=total)

    monkeypatch.setattr(building, "job_heartbeat", heartbeat_then_cancel)
    export_build_task(job_id=export.pk)
    export.refresh_from_db()
    assert export.state == JobState.CANCELLED
    task_dir = version_folder(export).parent
    assert not list(task_dir.iterdir())  # no version folder, no partial folder


def test_cancel_of_a_finished_export_is_refused(task, lead):
    approve(task, 3)
    export = build(task, user=lead)
    with pytest.raises(services.ValidationError, match="already succeeded"):
        services.export_cancel(export=export)


@pytest.mark.local_storage  # the object store's counterpart: tests/exports/test_object_storage.py
def test_a_retry_after_a_killed_worker_cleans_up_and_completes(task, lead):
    """What a worker killed mid-export leaves: a partial folder, a running row whose lease runs out."""
    approve(task, 30)
    export = services.export_request(task=task, export_format="openai-chat", user=lead)
    claimed = job_claim(Export, export.pk)
    task_dir = version_folder(export).parent
    (task_dir / f".partial-v{export.version}-deadbeef").mkdir(parents=True)
    (task_dir / f".partial-v{export.version}-deadbeef" / "train.jsonl").write_text('{"half": ')
    Export.objects.filter(pk=export.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    export_build_task(job_id=export.pk)  # the sweep's re-sent message, taken by another worker
    export.refresh_from_db()
    assert export.state == JobState.SUCCEEDED and export.attempts == 2
    assert sorted(p.name for p in task_dir.iterdir()) == ["v1"]
    # The first worker wakes up after its lease ran out: it may no longer touch the row.
    assert not job_heartbeat(claimed, progress=5)
    assert not job_finish(claimed, counts={})
    job_fail(claimed, "zombie")
    export.refresh_from_db()
    assert export.state == JobState.SUCCEEDED and export.error == ""


@pytest.mark.local_storage  # the object store's counterpart: tests/exports/test_object_storage.py
def test_files_published_by_an_attempt_that_died_before_marking_are_replaced(task, lead):
    approve(task, 8)
    export = services.export_request(task=task, export_format="alpaca", user=lead)
    final = version_folder(export)
    final.mkdir(parents=True)
    (final / "train.jsonl").write_text("stale\n")
    export_build_task(job_id=export.pk)
    export.refresh_from_db()
    assert export.state == JobState.SUCCEEDED
    assert file_sha256(final / "train.jsonl") == export.files["train.jsonl"]["sha256"]
    assert len(read_lines(final / "train.jsonl")) + len(read_lines(final / "validation.jsonl")) == 8


@pytest.mark.local_storage  # the object store's counterpart: tests/exports/test_object_storage.py
def test_a_duplicate_message_does_not_rebuild_a_finished_export(task, lead):
    approve(task, 5)
    export = build(task, user=lead)
    stamp = (version_folder(export) / "manifest.json").stat().st_mtime_ns
    export_build_task(job_id=export.pk)
    export.refresh_from_db()
    assert export.attempts == 1 and export.state == JobState.SUCCEEDED
    assert (version_folder(export) / "manifest.json").stat().st_mtime_ns == stamp


def test_an_unexpected_error_fails_the_export_with_the_reason(task, lead, monkeypatch):
    approve(task, 5)

    def broken_card(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(building, "dataset_card", broken_card)
    export = build(task, user=lead)
    assert export.state == JobState.FAILED
    assert export.error == "The export stopped on an unexpected error: RuntimeError: disk on fire"
    assert not list(version_folder(export).parent.iterdir())


def test_a_cancelled_queued_export_is_never_built(task, lead):
    approve(task, 5)
    export = services.export_request(task=task, export_format="alpaca", user=lead)
    assert job_cancel(export)
    export_build_task(job_id=export.pk)
    export.refresh_from_db()
    assert export.state == JobState.CANCELLED and export.attempts == 0
    assert not version_folder(export).exists()


def test_request_sends_the_job_after_commit(task, lead, django_capture_on_commit_callbacks, monkeypatch):
    approve(task, 2)
    sent = []
    monkeypatch.setattr(export_build_task, "apply_async", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        export = services.export_request(task=task, export_format="alpaca", user=lead)
    assert sent == [] and len(callbacks) == 1  # nothing is sent before the row is committed
    callbacks[0]()
    assert sent == [{"kwargs": {"job_id": export.pk}, "retry": False}]


def test_sweep_knows_exports(task, lead):
    from pairsmith.jobs import JOB_TYPES

    assert (Export, export_build_task) in JOB_TYPES


def test_a_database_outage_leaves_the_export_running_for_the_sweep_to_retry(task, lead, monkeypatch):
    from django.db import OperationalError

    approve(task, 5)
    export = services.export_request(task=task, export_format="alpaca", user=lead)

    def outage(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(building, "write_files", outage)
    with pytest.raises(OperationalError):
        export_build_task(job_id=export.pk)
    export.refresh_from_db()
    assert export.state == JobState.RUNNING and export.attempts == 1 and export.error == ""
    assert not list(version_folder(export).parent.iterdir())  # its partial folder is gone
    monkeypatch.undo()
    Export.objects.filter(pk=export.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    export_build_task(job_id=export.pk)  # what the sweep's message does once the lease has run out
    export.refresh_from_db()
    assert export.state == JobState.SUCCEEDED and export.attempts == 2


def test_a_worker_whose_lease_ran_out_cannot_touch_the_run_that_replaced_it(task, lead):
    """pairsmith/jobs.py fences a claim by its attempt number (the fix this test pins)."""
    approve(task, 2)
    export = services.export_request(task=task, export_format="alpaca", user=lead)
    zombie = job_claim(Export, export.pk)
    Export.objects.filter(pk=export.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    current = job_claim(Export, export.pk)
    assert (zombie.attempts, current.attempts) == (1, 2)
    assert not job_heartbeat(zombie, progress=99)  # told to stop
    assert not job_finish(zombie, counts={"total": 1})
    job_fail(zombie, "zombie gave up")
    export.refresh_from_db()
    assert (export.state, export.progress, export.error) == (JobState.RUNNING, 0, "")
    assert job_heartbeat(current, progress=1)  # the current run goes on
    assert job_finish(current, counts={"total": 2})
    export.refresh_from_db()
    assert export.state == JobState.SUCCEEDED and export.counts == {"total": 2}


def test_a_version_is_compared_with_the_last_one_of_its_own_format(task, lead):
    approve(task, 10)
    first = build(task, user=lead, export_format="openai-chat")
    other = build(task, user=lead, export_format="alpaca")  # another format: nothing of its own to compare with
    assert other.base_version is None
    third = build(task, user=lead, export_format="openai-chat")
    assert third.base_version == first.version
    assert third.changes["unchanged"] == 10 and third.changes["changed"] == 0
