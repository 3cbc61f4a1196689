"""Faults with real services: PostgreSQL restarted under a running web server, Redis stopped while people work, a
celery worker SIGKILLed in the middle of an import, and the disk filling up while an export is written.

The export side of a killed worker and of Redis down at request time is in tests/exports/test_worker.py; these tests
reuse its services (PrivateRedis, Worker, worker_factory, point_app_at in tests/exports/conftest.py) and add the rest.
Every service a test stops or restarts is a private one it started itself (tests/faults.py).
"""

import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotate import importing
from annotate.models import AuditEvent, Example, ImportJob, Revision, Transition
from exports import services as export_services
from exports.models import Export
from pairsmith.celery import app
from pairsmith.jobs import QUEUE_UNREACHABLE, JobState
from tests.conftest import redis_available
from tests.exports import conftest as exports_conftest
from tests.exports.conftest import approve, build
from tests.exports.test_worker import assert_complete
from tests.exports.test_worker import wait_for as wait_for_export
from tests.factories import ExampleFactory

from . import faults
from .faults import REQUEST_SECONDS, Browser, WebServer, manage, small_filesystem, timed, used_bytes, web_env

# The fixtures of real services this module shares: PrivateRedis and Worker from the export tests, PrivatePostgres.
private_redis = exports_conftest.private_redis
worker_factory = exports_conftest.worker_factory
private_postgres = faults.private_postgres

PASSWORD = "fault-drill-pw-1"


# --- 1. PostgreSQL restarted while the web server runs ----------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_restart_under_a_running_web_server_the_next_requests_succeed(private_postgres, tmp_path):
    with private_postgres.connect() as admin:
        admin.execute("CREATE DATABASE pairsmith")
    env = web_env(database_url=private_postgres.url("pairsmith"), var_dir=tmp_path / "var")
    manage(env, "migrate", "--noinput")
    manage(env, "create_task", "drill", "--name", "Fault drill", "--output-format", "text")
    manage(env, "add_member", "drill", "lea", "--role", "lead", "--password", PASSWORD)
    server = WebServer(env)
    try:
        server.start()
        lea = Browser(server.url)
        page = lea.login("lea", PASSWORD)
        assert page.status == 200 and not page.url.endswith("/login/"), page.text[:2000]
        assert lea.request("/tasks/drill/").status == 200
        with private_postgres.connect("pairsmith") as probe:  # the worker keeps its connection between requests
            held = probe.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'pairsmith' "
                                 "AND pid <> pg_backend_pid()").fetchone()[0]  # fmt: skip
        assert held >= 1

        before = private_postgres.postmaster_pid()
        private_postgres.restart()  # fast shutdown: that connection is terminated under the idle worker
        assert private_postgres.postmaster_pid() != before

        # Each request checks its connection first (conn_health_checks) and reconnects: not one fails.
        pages = {
            "task page": lea.request("/tasks/drill/"),
            "home": lea.request("/"),
            "members": lea.request("/tasks/drill/members/"),
        }
        newcomer = Browser(server.url)
        pages["a new login (writes the session)"] = newcomer.login("lea", PASSWORD)
        pages["after the new login"] = newcomer.request("/tasks/drill/")
        for what, page in pages.items():
            assert page.status == 200, f"{what}: {page.status} {page.url}\n{page.text[:3000]}"
            assert page.seconds < REQUEST_SECONDS, f"{what} took {page.seconds:.1f} s"
        assert "Fault drill" in pages["task page"].text
        assert not pages["a new login (writes the session)"].url.endswith("/login/")
    finally:
        server.stop()


# --- 2. Redis stopped: annotating and reviewing go on, an export waits queued -----------------------------------------


def _quick(response, seconds: float, what: str, *statuses: int):
    assert response.status_code in statuses, f"{what}: {response.status_code}"
    assert seconds < REQUEST_SECONDS, f"{what} took {seconds:.1f} s with Redis down"
    return response


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_stopped_annotating_and_reviewing_go_on_and_an_export_waits_queued_until_it_is_back(
    task, annotator, reviewer, lead, private_redis, worker_factory
):
    approve(task, 30)
    example = ExampleFactory(task=task)  # new: the annotator's next one
    private_redis.stop()

    anna, rita, leo = Client(), Client(), Client()
    anna.force_login(annotator)
    rita.force_login(reviewer)
    leo.force_login(lead)

    response = _quick(*timed(anna.post, reverse("annotate:work", args=[task.slug])), "claim", 302)
    assert response.url == reverse("annotate:edit", args=[task.slug, example.uuid])
    _quick(*timed(anna.get, response.url), "editor", 200)
    save_url = reverse("annotate:save", args=[task.slug, example.uuid])
    data = {"completion": "It arrives in three days.", "kind": "happy", "version": 1}
    response = _quick(*timed(anna.post, save_url, data, headers={"HX-Request": "true"}), "save", 200)
    example.refresh_from_db()
    assert (example.status, example.version) == (Example.Status.DRAFT, 2), response.content.decode()[:2000]
    submit_url = reverse("annotate:submit", args=[task.slug, example.uuid])
    response = _quick(*timed(anna.post, submit_url, {**data, "version": 2}), "submit", 302)
    example.refresh_from_db()
    assert example.status == Example.Status.SUBMITTED

    response = _quick(*timed(rita.post, reverse("reviews:next", args=[task.slug])), "review next", 302)
    assert response.url == reverse("reviews:review", args=[task.slug, example.uuid])
    _quick(*timed(rita.get, response.url), "review page", 200)
    decide_url = reverse("reviews:decide", args=[task.slug, example.uuid])
    _quick(*timed(rita.post, decide_url, {"decision": "approve", "version": example.version}), "approve", 302)
    example.refresh_from_db()
    assert example.status == Example.Status.APPROVED

    create_url = reverse("exports:create", args=[task.slug])
    form = {"export_format": "alpaca", "validation_ratio": "0.2"}
    page = _quick(*timed(leo.post, create_url, form, follow=True), "export request", 200)
    export = Export.objects.get(task=task)
    assert export.state == JobState.QUEUED and export.notice == QUEUE_UNREACHABLE
    assert QUEUE_UNREACHABLE in page.content.decode()

    private_redis.start()
    # The sweep re-sends queued jobs older than its grace period (30 s): let that time pass for this row.
    Export.objects.filter(pk=export.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    worker = worker_factory(private_redis.url)
    worker.start()  # its start-up sweep finds the queued export and sends it
    export = wait_for_export(export, lambda e: not e.is_live, timeout=40, what="the export after Redis came back")
    assert export.state == JobState.SUCCEEDED, export.error
    assert export.notice == ""
    assert_complete(export, 31)  # the example approved while Redis was down is in it


# --- 3. A worker SIGKILLed in the middle of an import -----------------------------------------------------------------

RECORDS = 12_000  # over INLINE_MAX_RECORDS (a job), two insert batches of BATCH_SIZE and a part


def _copy_waiting(cursor) -> int:
    """Backends of this database whose COPY into annotate_revision waits for a lock."""
    return cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND query LIKE 'COPY \"annotate_revision\"%'"
    ).fetchone()[0]


def _copy_running(cursor) -> int:
    return cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE 'COPY \"annotate_revision\"%' AND pid <> pg_backend_pid()"
    ).fetchone()[0]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_import_leaves_nothing_and_a_restart_imports_every_record_once(
    task, lead, worker_factory, settings, tmp_path
):
    redis_available()
    if connection.vendor != "postgresql":
        pytest.skip("the import's COPY and the lock that pins it mid-run are PostgreSQL's")
    import psycopg

    assert RECORDS > importing.INLINE_MAX_RECORDS and RECORDS > importing.BATCH_SIZE
    settings.VAR_DIR = tmp_path / "var"
    importing.upload_dir().mkdir(parents=True)
    token = importing.upload_token()
    records = (
        {"prompt": f"Question {i}?", "completion": f"A{i}" if i % 2 else "", "id": f"q{i}"} for i in range(RECORDS)
    )
    importing.upload_path(token).write_bytes("".join(json.dumps(r) + "\n" for r in records).encode())
    upload = importing.upload_accept(token=token, filename="big.jsonl")
    mapping = importing.default_mapping(["prompt", "completion", "id"])

    worker = worker_factory()
    worker.start()
    worker.wait_ready(app)
    # Pin the kill mid-run without a huge file: hold a lock that the first COPY into annotate_revision waits for.
    # By then the import's one transaction holds the first batch's examples, uncommitted.
    blocker = psycopg.connect(**connection.get_connection_params())
    watcher = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        blocker.execute("LOCK TABLE annotate_revision IN SHARE MODE")
        job = importing.import_start(task=task, upload=upload, mapping=mapping, status="new", user=lead)
        assert job.state == JobState.QUEUED
        deadline = time.monotonic() + 60
        while not _copy_waiting(watcher):
            assert time.monotonic() < deadline, "the import never reached its inserts"
            assert worker.process.poll() is None, f"the worker died; see {worker.log}"
            time.sleep(0.05)
        job.refresh_from_db()
        assert job.state == JobState.RUNNING  # its first batch of examples is in, uncommitted (next: invisible)
        worker.kill()

        assert not task.examples.exists()  # nothing of the open transaction is visible
        blocker.rollback()  # the orphaned backend gets its lock, finds its client gone, and rolls back
        deadline = time.monotonic() + 30
        while _copy_running(watcher):
            assert time.monotonic() < deadline, "the killed worker's backend is still there"
            time.sleep(0.1)
    finally:
        blocker.close()
        watcher.close()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.attempts == 1
    assert not task.examples.exists() and not Transition.objects.exists() and not Revision.objects.exists()
    assert upload.path.exists()  # kept for the next attempt

    # The lease (60 s) runs out; rather than wait, move it into the past. The new worker's start-up sweep re-sends it.
    ImportJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    restarted = worker_factory()
    restarted.start()
    seen = set()
    deadline = time.monotonic() + 60
    while job.is_live:
        assert time.monotonic() < deadline, f"the restarted worker did not finish: {job.state} {job.progress}"
        seen.add(task.examples.count())
        time.sleep(0.05)
        job.refresh_from_db()
    seen.add(task.examples.count())
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.attempts == 2
    assert seen <= {0, RECORDS}  # all or nothing, at every moment
    assert job.counts["records"] == RECORDS
    assert task.examples.count() == RECORDS
    assert task.examples.values("external_id").distinct().count() == RECORDS  # no duplicates
    assert Revision.objects.count() == RECORDS // 2
    assert not Transition.objects.exists()  # imported as new: nothing moved
    assert AuditEvent.objects.get(action="import").actor == lead  # imported once, by the lead
    assert not upload.path.exists()  # the job deleted its upload
    assert ImportJob.objects.count() == 1


# --- 4. The disk fills up while an export is written ------------------------------------------------------------------


@pytest.mark.django_db
def test_disk_full_while_writing_an_export_fails_it_with_a_clear_reason_and_leaves_no_file(
    task, lead, settings, tmp_path
):
    approve(task, 3000)  # about 400 kB of train.jsonl: more than the 256 kB disk
    with small_filesystem(tmp_path / "small-disk", "256k") as disk:
        settings.EXPORT_ROOT = disk
        export = build(task, export_format="openai-chat", user=lead)
        assert export.state == JobState.FAILED
        assert "disk is full" in export.error.lower() and "train.jsonl" in export.error, export.error
        assert "unexpected" not in export.error.lower(), export.error
        assert not export.files
        # Nothing of v1 is left: no train.jsonl, no partial folder, no temporary file; the space is free again.
        assert [p.relative_to(disk).as_posix() for p in disk.rglob("*")] == [task.slug]
        assert not export_services.export_dir(export).exists()
        assert used_bytes(disk) < 16 * 1024
