"""Personas, a fast hasher, and real services (a celery worker process, chromium) for the tests that need them."""

import copy
import functools
import os
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path

import pytest
from botocore.config import Config as BotoConfig
from django.conf import settings

from annotate.models import Role

from .factories import MembershipFactory, TaskFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name: str, reason: str) -> None:
    """Skip a test whose service is missing, except in CI, where a missing service fails the run."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}", pytrace=False)
    pytest.skip(f"{name} not available: {reason}")


def pytest_report_header(config) -> list[str]:
    db = settings.DATABASES["default"]
    engine = db["ENGINE"].rsplit(".", 1)[-1]
    where = f"{db.get('HOST')}:{db.get('PORT')}/{db['NAME']}" if db.get("HOST") else db["NAME"]
    broker = f"redis {settings.REDIS_URL}" if settings.REDIS_URL else "none (celery runs tasks inline)"
    return [f"pairsmith database: {engine} {where}", f"pairsmith broker: {broker}"]


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _export_root(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.SCRATCH_DIR = tmp_path / "scratch"


# --- object storage: a real S3-compatible server (moto in server mode) on loopback ------------------------------

S3_REGION = "us-east-1"
S3_CLIENT_CONFIG = BotoConfig(connect_timeout=2, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "pairsmith-test", "AWS_SECRET_ACCESS_KEY": "pairsmith-test-secret"}


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible HTTP server on a free loopback port for the whole run (moto's server, in a thread of this
    process; worker and web processes of the tests reach it over HTTP like any store). Yields its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def object_storage_settings(*, endpoint: str, bucket: str, prefix: str = "pairsmith") -> dict:
    """The settings (and environment) that put uploads and exports in `bucket` under `prefix` at `endpoint`."""
    location = {"exports": f"{prefix}/exports", "imports": f"{prefix}/imports"}
    return {
        "STORAGE_URL": f"s3://{bucket}/{prefix}",
        "STORAGE_BUCKET": bucket,
        "STORAGE_PREFIX": prefix,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": S3_REGION,
        "storages": {
            area: {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": bucket,
                    "location": location[area],
                    "endpoint_url": endpoint,
                    "region_name": S3_REGION,
                    "file_overwrite": True,
                    "default_acl": None,
                    "querystring_expire": 300,
                    "client_config": S3_CLIENT_CONFIG,
                    "access_key": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    "secret_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                },
            }
            for area in ("exports", "imports")
        },
    }


@functools.cache
def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture(scope="session")
def s3_bucket(s3_server) -> str:
    bucket = f"pairsmith-{uuid.uuid4().hex[:16]}"
    s3_client(s3_server).create_bucket(Bucket=bucket)
    return bucket


def empty_bucket(endpoint: str, bucket: str) -> None:
    client = s3_client(endpoint)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        if objects := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


@pytest.fixture
def object_storage(settings, s3_server, s3_bucket):
    """Uploads and exports of this test on the S3 server, in a bucket emptied for it (one bucket for the run: the
    project keeps one storage, so one boto3 client, per configuration). Yields the bucket's name."""
    bucket = s3_bucket
    empty_bucket(s3_server, bucket)
    values = object_storage_settings(endpoint=s3_server, bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, **values.pop("storages")}
    for name, value in values.items():
        setattr(settings, name, value)
    yield bucket


@pytest.fixture(params=["local", "s3"])
def both_storages(request) -> str:
    """Run the test on local folders, then on the S3-compatible server (`pytestmark = usefixtures("both_storages")`)."""
    if request.param == "s3":
        request.getfixturevalue("object_storage")
    return request.param


def stored_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Every key of `bucket` under `prefix` (what the store holds, read over its HTTP API)."""
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(autouse=True)
def _own_rate_limits(settings):
    """The per-user rate limits are off, except in the tests about them (tests/test_ratelimit.py and the browser's),
    which set them: a property test or a loop of writes is no person. Each test counts under a cache key prefix of its
    own (the cache is Redis with REDIS_URL, shared by every test and run and by the Celery broker: never flushed)."""
    settings.RATE_LIMIT_WRITES = settings.RATE_LIMIT_FEEDBACK = settings.RATE_LIMIT_JOBS = settings.RATE_LIMIT_API = 0
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches


@pytest.fixture
def task(db):
    return TaskFactory(slug="support", name="Support answers")


@pytest.fixture
def other_task(db):
    return TaskFactory(slug="elsewhere", name="Another team's task")


def _member(task, username: str, *roles: str):
    user = UserFactory(username=username)
    for role in roles:
        MembershipFactory(task=task, user=user, role=role)
    return user


@pytest.fixture
def annotator(task):
    return _member(task, "anna", Role.ANNOTATOR)


@pytest.fixture
def reviewer(task):
    return _member(task, "rita", Role.REVIEWER)


@pytest.fixture
def lead(task):
    return _member(task, "leo", Role.LEAD)


@pytest.fixture
def outsider(other_task):
    """A lead of another task: a real user with real roles, none on `task`."""
    return _member(other_task, "otto", Role.LEAD, Role.ANNOTATOR, Role.REVIEWER)


@pytest.fixture
def staff(db):
    return UserFactory(username="stella", is_staff=True)


@pytest.fixture
def inline_celery():
    """Run Celery tasks inline in this test even when REDIS_URL points at a broker (the worker tests use a real one)."""
    from pairsmith.celery import app

    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


# --- real services -------------------------------------------------------------------------------------------


def _worker_env(db_settings) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pairsmith.settings", "PYTHONUNBUFFERED": "1"}
    if db_settings["ENGINE"].endswith("postgresql"):
        user = db_settings.get("USER") or ""
        auth = f"{user}:{db_settings.get('PASSWORD') or ''}@" if user else ""
        env["DATABASE_URL"] = f"postgres://{auth}{db_settings['HOST']}:{db_settings['PORT']}/{db_settings['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db_settings['NAME']}"
    env["EXPORT_ROOT"] = str(settings.EXPORT_ROOT)
    env["SCRATCH_DIR"] = str(Path(settings.SCRATCH_DIR) / f"worker-{uuid.uuid4().hex[:8]}")
    env["STORAGE_URL"] = settings.STORAGE_URL
    if settings.STORAGE_URL:
        env.update(S3_CREDENTIALS, AWS_S3_ENDPOINT_URL=settings.AWS_S3_ENDPOINT_URL, AWS_DEFAULT_REGION=S3_REGION)
    return env


def redis_available() -> None:
    """Skip (locally) or fail (CI) unless REDIS_URL points at a Redis that answers."""
    if not settings.REDIS_URL:
        require_service("Redis", "set REDIS_URL to run the tests that need a real broker and worker")
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis", f"{settings.REDIS_URL} does not answer ({exc})")


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """A real `celery worker` process on the real Redis of REDIS_URL, using the test database."""
    redis_available()
    from django.db import connection

    log = ARTIFACTS / "celery-worker.log"
    log.parent.mkdir(exist_ok=True)
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"  # a private queue: no other worker steals our messages
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "pairsmith", "worker", "--pool=solo", "-Q", queue, "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=_worker_env(connection.settings_dict), stdout=handle, stderr=subprocess.STDOUT,
    )  # fmt: skip
    from pairsmith.celery import app

    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"celery worker exited with {process.returncode}; see {log}")
            if app.control.inspect(timeout=0.5, destination=None).ping():
                break
            time.sleep(0.3)
        yield process
    finally:
        app.conf.task_default_queue = old_queue
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        handle.close()


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture
def offline_hf(monkeypatch, tmp_path):
    """`datasets` reads the export's files without reaching for the Hugging Face Hub (nothing is downloaded here),
    with a cache of its own in the test's folder."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, driven by Playwright (launched by path: browser downloads do not work here)."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    executable = chromium_path()
    if executable is None:
        require_service("chromium", "install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    # The test is over: a page left with unsaved text would send its save as a beacon while closing (the editor's
    # pagehide), and that request would reach the server during the database flush that ends the test (a deadlock
    # with TRUNCATE seen in CI, then the next test's setup failing). Tests of the beacon send it themselves.
    for open_page in context.pages:
        with suppress(Exception):  # a page that crashed or is navigating: nothing to silence
            open_page.evaluate("navigator.sendBeacon = () => true")
    context.close()


@pytest.fixture
def screenshot(page, request):
    """Save a full-page screenshot under test-artifacts/ (a test artifact people look at)."""

    def take(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
