"""Real services for the fault tests (tests/test_faults.py) that tests/exports/conftest.py does not already give:
a private PostgreSQL this test may restart, a gunicorn web server on it, a tiny cookie-keeping HTTP client, and a
small filesystem that fills up.

Like PrivateRedis and Worker (tests/exports/conftest.py), everything here is started by the test on a free loopback
port or a temporary folder, and stopped by it: the machine's own PostgreSQL and Redis are never touched.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, ROOT, require_service
from tests.exports.conftest import free_port

REQUEST_SECONDS = 5  # a request that takes longer than this counts as a hang


# --- a private PostgreSQL -------------------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """PostgreSQL 15's server binaries (what production runs), else the newest installed; None when there are none."""
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").exists():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class PrivatePostgres:
    """A PostgreSQL server of this test alone: initdb in a temporary folder under /tmp, a free port on 127.0.0.1.

    initdb and postgres refuse to run as root; as root they run as the `postgres` OS user (as .ci/run does).
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        # Under /tmp, world-traversable, so that the postgres user reaches it.
        self.folder = Path(tempfile.mkdtemp(prefix="pairsmith-faults-pg-", dir="/tmp"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, cwd="/", capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            pytest.fail(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}\n{log}")
        return result

    def init(self) -> None:
        (self.folder / "sock").mkdir()
        self.folder.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(self.folder / "sock", "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            # Loopback only, an own socket folder; no durability needed for data thrown away after the test.
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.folder}/sock'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every client connection is terminated; returns once the new server accepts."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def connect(self, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True)

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private PostgreSQL; stopped (only it) and its folder removed at the end."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        require_service("PostgreSQL server", "install postgresql-15 (initdb, pg_ctl under /usr/lib/postgresql)")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")  # as root, initdb and postgres run as this user
        except KeyError:
            require_service("postgres OS user", "as root, initdb runs as the `postgres` user: create it (useradd)")
    server = PrivatePostgres(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.folder, ignore_errors=True)


# --- a real web server --------------------------------------------------------------------------------------------


def manage(env: dict, *args: str, timeout: float = 300) -> str:
    """Run `manage.py` with `env`; fail the test with its output when it fails. Returns its stdout."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode:
        pytest.fail(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def web_env(*, database_url: str, var_dir: Path) -> dict:
    """The environment of a server process: DEBUG on, this database, no broker (jobs inline), files under var_dir."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pairsmith.settings", "PYTHONUNBUFFERED": "1"}
    env.update(
        DEBUG="1",
        DATABASE_URL=database_url,
        REDIS_URL="",
        PAIRSMITH_VAR_DIR=str(var_dir),
        EXPORT_ROOT=str(var_dir / "exports"),
        STATIC_ROOT=str(var_dir / "static"),
    )
    return env


class WebServer:
    """gunicorn serving pairsmith.wsgi, as in production (the Dockerfile): sync workers, each holding its persistent
    database connection (conn_max_age=60) from one request to the next."""

    def __init__(self, env: dict, *, workers: int = 1) -> None:
        self.env = env
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = ARTIFACTS / "faults-gunicorn.log"
        self.log.parent.mkdir(exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "pairsmith.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers), "--timeout", "30", "--graceful-timeout", "5",
                 "--access-logfile", "-"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        pytest.fail(f"gunicorn did not answer within 30 s; see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Page:
    status: int
    url: str
    text: str
    seconds: float


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx comes back as the response: the test sees where it points


class Browser:
    """A cookie-keeping HTTP client for a live server (a session cookie, the CSRF token of the last form)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect)

    def request(self, path: str, data: dict | None = None, *, follow: bool = True) -> Page:
        """GET (or POST `data`), following redirects; an error status (500) is returned, not raised."""
        started = time.monotonic()
        url = urllib.parse.urljoin(self.base_url, path)
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        for _ in range(10):
            request = urllib.request.Request(url, data=body, headers={"Referer": url})
            try:
                response = self.opener.open(request, timeout=30)
            except urllib.error.HTTPError as error:  # 3xx (not followed by the opener), 4xx, 5xx
                response = error
            with response:
                status, text = response.status, response.read().decode(errors="replace")
                location = response.headers.get("Location")
            if follow and status in (301, 302, 303) and location:
                url, body = urllib.parse.urljoin(url, location), None
                continue
            return Page(status, url, text, time.monotonic() - started)
        pytest.fail(f"too many redirects from {path}")

    def login(self, username: str, password: str) -> Page:
        form = self.request("/login/")
        assert form.status == 200, form.text[:2000]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, "no CSRF token on the login form"
        page = self.request("/login/", {"csrfmiddlewaretoken": token.group(1), "username": username,
                                        "password": password})  # fmt: skip
        return Page(page.status, page.url, page.text, form.seconds + page.seconds)


# --- a small filesystem -----------------------------------------------------------------------------------------------


@contextmanager
def small_filesystem(folder: Path, size: str = "256k") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `folder` (made if missing), unmounted in the end whatever happens.

    Needs CAP_SYS_ADMIN (root, as in CI). Without it the caller cannot fake a full disk faithfully: RLIMIT_FSIZE gives
    EFBIG and a signal, not ENOSPC; so it is required (a failure in CI, a skip elsewhere), never silently skipped.
    """
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if result.returncode:
        require_service(
            "a small filesystem",
            f"`mount -t tmpfs` failed ({result.stderr.strip()}): run the tests as root or with CAP_SYS_ADMIN",
        )
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)  # busy: detach it now, free it later


def used_bytes(folder: Path) -> int:
    stat = os.statvfs(folder)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def timed(call, *args, **kwargs):
    """(result, seconds) of call(*args, **kwargs)."""
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started
