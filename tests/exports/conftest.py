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
