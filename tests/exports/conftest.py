"""Helpers for the export tests: approved examples in bulk, building an export in-process, and real services
(a celery worker that can be SIGKILLed and restarted, a private redis-server that can be stopped) for the fault tests.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from hashlib import sha256
from pathlib import Path

import orjson
import pytest
from django.conf import settings

from annotate.models import Example, Kind, Role
from exports import services
from exports.models import Export
from exports.tasks import export_build_task
from tests.conftest import ARTIFACTS, ROOT, _member, _worker_env, require_service

KINDS = [Kind.HAPPY, Kind.HAPPY, Kind.EDGE, Kind.NEGATIVE]


def approve(task, n: int, *, start: int = 0, status=Example.Status.APPROVED, **fields) -> list[Example]:
    """`n` examples of `task` in one insert, approved unless told otherwise, with distinct texts."""
    template = task.current_template
    rows = []
    for i in range(start, start + n):
        values = {
            "instruction": f"Question {i}: where is my parcel?",
            "context": "Order shipped on Monday." if i % 3 == 0 else "",
            "completion": f"It arrives in {i % 5 + 1} days.",
            "kind": KINDS[i % len(KINDS)],
            **fields,
        }
        rows.append(Example(task=task, template=template, status=status, **values))
    return Example.objects.bulk_create(rows)


def build(task, *, export_format: str = "openai-chat", user=None, **options) -> Export:
    """Request an export and run its Celery task in this process (as a worker would), then reload the row."""
    export = services.export_request(task=task, export_format=export_format, user=user, **options)
    export_build_task(job_id=export.pk)
    export.refresh_from_db()
    return export


def read_lines(path: Path) -> list[dict]:
    """JSONL split on \\n only, as DESIGN.md says."""
    data = path.read_bytes()
    return [orjson.loads(line) for line in data.split(b"\n") if line]


def file_sha256(path: Path) -> str:
    return sha256(path.read_bytes()).hexdigest()


# --- both storages: every export test runs on local folders and on the S3-compatible server ------------------------

STORAGES_UNDER_TEST = ("local", "s3")


def pytest_generate_tests(metafunc) -> None:
    """Each test of this folder runs once per storage, unless marked `local_storage` (it checks what only a local
    folder has: hidden partial folders, renames, a full disk) or `object_storage_only`."""
    if "storage_kind" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("local_storage"):
        kinds = ("local",)
    elif metafunc.definition.get_closest_marker("object_storage_only"):
        kinds = ("s3",)
    else:
        kinds = STORAGES_UNDER_TEST
    metafunc.parametrize("storage_kind", kinds, indirect=True)


@pytest.fixture
def storage_kind(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _storage(storage_kind, request) -> str:
    if storage_kind == "s3":
        request.getfixturevalue("object_storage")
    return storage_kind


def version_folder(export: Export) -> Path:
    """A local folder holding the version's files as stored: its own folder, or, with object storage, a copy of the
    objects under <slug>/v<N>/ fetched from the store (a folder that does not exist when there are none)."""
    if not settings.STORAGE_URL:
        return services.export_dir(export)
    from tests.conftest import s3_client

    client = s3_client(settings.AWS_S3_ENDPOINT_URL)
    prefix = f"{settings.STORAGE_PREFIX}/exports/{export.task.slug}/v{export.version}/"
    folder = Path(tempfile.mkdtemp(dir=settings.EXPORT_ROOT.parent if settings.EXPORT_ROOT.parent.is_dir() else None))
    folder = folder / f"v{export.version}"
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=settings.STORAGE_BUCKET, Prefix=prefix)
    for item in (item for page in pages for item in page.get("Contents", [])):
        folder.mkdir(exist_ok=True)
        body = client.get_object(Bucket=settings.STORAGE_BUCKET, Key=item["Key"])["Body"].read()
        (folder / item["Key"][len(prefix) :]).write_bytes(body)
    return folder


def stored_folders(task) -> list[str]:
    """The names under the task's folder (local) or prefix (object store): v<N> of versions with files, and the
    hidden .partial-* of builds; as the store lists them."""
    if not settings.STORAGE_URL:
        task_dir = Path(settings.EXPORT_ROOT) / task.slug
        return sorted(path.name for path in task_dir.iterdir()) if task_dir.exists() else []
    from tests.conftest import s3_client

    prefix = f"{settings.STORAGE_PREFIX}/exports/{task.slug}/"
    pages = s3_client(settings.AWS_S3_ENDPOINT_URL).get_paginator("list_objects_v2")
    keys = (item["Key"] for page in pages.paginate(Bucket=settings.STORAGE_BUCKET, Prefix=prefix) for item in
            page.get("Contents", []))  # fmt: skip
    return sorted({key[len(prefix) :].split("/", 1)[0] for key in keys})


def stored_bytes(location: str) -> bytes:
    """The content of a file named as export_dataset --json names it: a path, or an s3:// URI."""
    if not location.startswith("s3://"):
        return Path(location).read_bytes()
    from tests.conftest import s3_client

    bucket, _, key = location[5:].partition("/")
    return s3_client(settings.AWS_S3_ENDPOINT_URL).get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def lead_reviewer(task):
    return _member(task, "lena", Role.LEAD, Role.REVIEWER)


# --- real services ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Worker:
    """A `celery worker` process on a private queue that this test starts, may SIGKILL, and restarts.

    It runs the app of tests/exports/worker_app.py: the project's app with the private queue as its default, so
    that the sweep the worker runs at start re-sends jobs to this queue (not to a queue nobody here consumes).
    """

    def __init__(self, *, broker_url: str, queue: str, db_settings: dict) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self.db_settings = db_settings
        self.process: subprocess.Popen | None = None
        self.log = ARTIFACTS / "celery-export-worker.log"
        self.log.parent.mkdir(exist_ok=True)

    def start(self, **extra_env: str) -> None:
        env = _worker_env(self.db_settings) | {
            "REDIS_URL": self.broker_url,
            "PAIRSMITH_TEST_QUEUE": self.queue,
            "EXPORT_ROOT": str(settings.EXPORT_ROOT),
            **extra_env,
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.exports.worker_app", "worker", "--pool=solo",
                 "-Q", self.queue, "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self, app, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"celery worker exited with {self.process.returncode}; see {self.log}")
            try:
                if app.control.inspect(timeout=0.5, destination=None).ping():
                    return
            except Exception:  # the broker may still be starting
                pass
            time.sleep(0.2)
        pytest.fail(f"celery worker did not answer within {timeout} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no ack; exactly what a crash or the OOM killer does."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def point_app_at(app, url: str) -> None:
    """Make this process's celery app send to `url`: drop the cached connection and producer pools."""
    from kombu import pools

    app.conf.broker_url = url
    # kombu keeps connection and producer pools in process-wide groups keyed by broker URL: closing only the app's
    # own pool would leave a closed pool registered there, and the next send after switching back would fail
    # with "Acquire on closed pool". reset() closes and forgets them all.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def worker_factory(transactional_db, settings):
    """Make workers on a private queue of REDIS_URL (or of a private redis given to `make`); stopped at the end."""
    from django.db import connection

    from pairsmith.celery import app

    queue = f"test-exports-{os.getpid()}-{time.monotonic_ns()}"
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    workers: list[Worker] = []

    def make(broker_url: str | None = None) -> Worker:
        worker = Worker(broker_url=broker_url or settings.REDIS_URL, queue=queue, db_settings=connection.settings_dict)
        workers.append(worker)
        return worker

    try:
        yield make
    finally:
        for worker in workers:
            worker.stop()
        app.conf.task_default_queue = old_queue


class PrivateRedis:
    """A redis-server of this test alone, on a free port in a temporary folder; stopped and started at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="pairsmith-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        pytest.fail(f"private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(settings):
    """A private redis-server, with this process's celery app pointed at it; never the machine's own Redis."""
    if not settings.REDIS_URL:
        require_service("Redis", "set REDIS_URL to run the broker fault tests")
    import shutil

    if shutil.which("redis-server") is None:
        require_service("redis-server", "install redis-server to run the broker fault tests")
    from pairsmith.celery import app

    server = PrivateRedis()
    server.start()
    old_broker = app.conf.broker_url
    point_app_at(app, server.url)
    try:
        yield server
    finally:
        point_app_at(app, old_broker)
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)
