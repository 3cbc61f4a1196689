"""Two web nodes and a worker that share nothing but PostgreSQL, Redis and the S3-compatible store.

Each process has its own working folders (VAR_DIR, EXPORT_ROOT, SCRATCH_DIR), empty at start. A lead uploads a file on
node A, maps and imports it on node B, asks for an export on node A that a real celery worker builds, and downloads it
from node B; the lead's session, the job rows and the files all travel between them through the shared services.
"""

import json
import os
import subprocess
import sys
import time
from hashlib import sha256
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from annotate.models import Example
from exports.models import Export
from pairsmith.jobs import JobState

from .conftest import ARTIFACTS, ROOT, _member, _worker_env, redis_available, require_service, stored_keys
from .exports.conftest import free_port
from .exports.conftest import worker_factory as worker_factory  # a fixture of the export tests

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.usefixtures("object_storage")]

RECORDS = [{"instruction": f"Where is parcel {i}?", "output": f"It arrives in {i % 5 + 1} days."} for i in range(40)]


def _folders(root: Path, name: str) -> dict[str, Path]:
    base = root / name
    return {"PAIRSMITH_VAR_DIR": base / "var", "EXPORT_ROOT": base / "exports", "SCRATCH_DIR": base / "scratch"}


def _files_under(folders: dict[str, Path], *names: str) -> list[Path]:
    return sorted(p for key in names if folders[key].exists() for p in folders[key].rglob("*") if p.is_file())


class WebNode:
    def __init__(self, name: str, env: dict, folders: dict[str, Path]) -> None:
        self.name = name
        self.port = free_port()
        self.folders = folders
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (ARTIFACTS / f"two-nodes-{name}.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"web node {self.name} exited with {self.process.returncode}; see {self.log.name}")
            try:
                if requests.get(self.url + "/login/", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.3)
        pytest.fail(f"web node {self.name} did not answer; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _post(session: requests.Session, url: str, **kwargs) -> requests.Response:
    headers = {"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": url}
    return session.post(url, headers=headers, allow_redirects=False, timeout=60, **kwargs)


@pytest.fixture
def two_nodes(transactional_db, tmp_path, worker_factory):
    if not settings.USING_POSTGRES:
        require_service("PostgreSQL", "set DATABASE_URL: two nodes share one PostgreSQL")
    redis_available()
    from pairsmith.celery import app

    queue = app.conf.task_default_queue  # worker_factory's private queue
    base = _worker_env(connection.settings_dict) | {
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
    }
    base["CELERY_TASK_DEFAULT_QUEUE"] = queue
    nodes, folders = [], {}
    for name in ("a", "b", "worker"):
        folders[name] = _folders(tmp_path, name)
        for folder in folders[name].values():
            folder.mkdir(parents=True)
    try:
        for name in ("a", "b"):
            env = base | {key: str(value) for key, value in folders[name].items()}
            nodes.append(WebNode(name, env, folders[name]))
        worker = worker_factory()
        worker.start(**{key: str(value) for key, value in folders["worker"].items()}, LOG_LEVEL="WARNING")
        worker.wait_ready(app)
        for node in nodes:
            node.wait_ready()
        yield nodes[0], nodes[1], folders
    finally:
        for node in nodes:
            node.stop()


def test_import_on_one_node_export_by_the_worker_download_from_the_other(two_nodes, task, s3_server, s3_bucket):
    node_a, node_b, folders = two_nodes
    lead = _member(task, "lena", "lead")
    # The nodes check passwords with the production hashers (the test process uses a fast one of its own).
    lead.password = PBKDF2PasswordHasher().encode("two-nodes-pass", PBKDF2PasswordHasher().salt())
    lead.save()
    browser = requests.Session()
    browser.get(node_a.url + "/login/", timeout=10)
    login = _post(browser, node_a.url + "/login/", data={"username": "lena", "password": "two-nodes-pass"})
    assert login.status_code == 302, login.text[:500]

    # Upload on A: the file goes to the store; A's cache aside, no node has it on disk.
    data = "".join(json.dumps(record) + "\n" for record in RECORDS).encode()
    upload_url = f"{node_a.url}/tasks/{task.slug}/import/"
    browser.get(upload_url, timeout=10)
    uploaded = _post(browser, upload_url, files={"file": ("pairs.jsonl", data)}, data={"file_format": ""})
    assert uploaded.status_code == 302, uploaded.text[:2000]
    mapping_path = uploaded.headers["Location"]
    assert _files_under(folders["b"], "PAIRSMITH_VAR_DIR") == []

    # Map and import on B, with the session A made (sessions are in PostgreSQL).
    mapping = browser.get(node_b.url + mapping_path, timeout=30)
    assert mapping.status_code == 200 and "Where is parcel 0?" in mapping.text
    form = {"map_0": "instruction", "map_1": "completion", "status": "approved", "action": "import"}
    imported = _post(browser, node_b.url + mapping_path, data=form)
    assert imported.status_code == 302, imported.text[:3000]
    assert Example.objects.filter(task=task, status="approved").count() == len(RECORDS)

    # Export asked on A, built by the worker (its own empty folders), published in the store.
    created = _post(browser, f"{node_a.url}/tasks/{task.slug}/exports/new/",
                    data={"export_format": "alpaca", "validation_ratio": "0.1", "test_ratio": "0"})  # fmt: skip
    assert created.status_code in (200, 302), created.text[:2000]
    export = Export.objects.get(task=task)
    deadline = time.monotonic() + 90
    while export.state not in (JobState.SUCCEEDED, JobState.FAILED) and time.monotonic() < deadline:
        time.sleep(0.3)
        export.refresh_from_db()
    assert export.state == JobState.SUCCEEDED, export.error

    # Download from B: streamed from the store, byte for byte what the row says.
    for name in ("train.jsonl", "manifest.json"):
        answer = browser.get(f"{node_b.url}/tasks/{task.slug}/exports/v1/files/{name}", timeout=30)
        assert answer.status_code == 200
        assert sha256(answer.content).hexdigest() == export.files[name]["sha256"]
    lines = browser.get(f"{node_b.url}/tasks/{task.slug}/exports/v1/files/train.jsonl", timeout=30).content
    assert len(lines.split(b"\n")) - 1 == export.counts["train"]

    # Nothing of the export stayed on any node's disk; the upload is gone from the store and from the node that
    # imported it (node A keeps the copy it received as a cache, pruned with its uploads after a day).
    for name in ("a", "b", "worker"):
        assert _files_under(folders[name], "EXPORT_ROOT", "SCRATCH_DIR") == [], name
    for name in ("b", "worker"):
        assert [p for p in _files_under(folders[name], "PAIRSMITH_VAR_DIR") if p.suffix == ".upload"] == [], name
    assert stored_keys(s3_server, s3_bucket, "pairsmith/imports/") == []
    assert stored_keys(s3_server, s3_bucket, "pairsmith/exports/") == [
        f"pairsmith/exports/{task.slug}/v1/{name}" for name in sorted(export.files)
    ]
    assert os.environ.get("STORAGE_URL", "") == ""  # the test process itself keeps its default settings
