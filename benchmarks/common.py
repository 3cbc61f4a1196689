"""Shared plumbing of the benchmarks: PostgreSQL bulk loading, a gunicorn server, sessions, percentiles."""

import contextlib
import io
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairsmith.settings")
    import django

    django.setup()


def require_postgres() -> bool:
    """True on PostgreSQL; otherwise say so (these figures only mean something there)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        print("   skipped: needs PostgreSQL; run with DATABASE_URL=postgres://USER@HOST:PORT/NAME")
        return False
    return True


def peak_rss(pid: int | str = "self") -> int:
    """Peak resident memory, in bytes, of a running process's own program: VmHWM of /proc/PID/status.

    Not ru_maxrss: Linux carries a parent's peak into its child across fork and exec, so a child started by a large
    process (this one, after a benchmark that held a million rows) would read at least that large."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # the process just ended
        pass
    return 0


def run_watched(args: list[str], **popen) -> tuple[int, str, float, int]:
    """Run a command to its end: (exit code, its standard output, seconds, peak RSS in bytes). The peak is read from
    /proc twenty times a second while it runs (VmHWM only grows, so the last reading is the peak but for the last
    50 ms), and is the command's own peak plus the peaks of the processes it starts (an export's matching process),
    added as if they had all peaked at once."""
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, **popen)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: process.stdout.read(65536), b"")))
    reader.start()
    peak = 0
    started_peaks: dict[int, int] = {}  # pid of a process it started -> its peak
    while process.poll() is None:
        peak = max(peak, peak_rss(process.pid))
        for pid in _children(process.pid):
            started_peaks[pid] = max(started_peaks.get(pid, 0), peak_rss(pid))
        time.sleep(0.05)
    reader.join()
    total = peak + sum(started_peaks.values())
    return process.returncode, b"".join(chunks).decode(errors="replace"), time.perf_counter() - started, total


def _children(pid: int) -> list[int]:
    """The processes `pid` started and that still run (its threads' children lists), and theirs."""
    found: list[int] = []
    try:
        for thread in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{thread}/children") as children:
                found += [int(child) for child in children.read().split()]
    except OSError:  # it just ended
        return found
    return found + [grandchild for child in found for grandchild in _children(child)]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def filler(i: int, size: int) -> str:
    words = [
        "thermostat", "schedule", "firmware", "heating", "cooling", "sensor", "battery", "warranty", "refund",
        "order", "plan", "display", "wiring", "boiler", "humidity", "app", "account", "router", "offline", "pairing",
    ]  # fmt: skip
    out, n = [], i
    while sum(len(w) + 1 for w in out) < size:
        n = (n * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(words[n % len(words)])
    return " ".join(out)


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def bulk_load_examples(*, task, n: int, status: str = "new", completion_chars: int = 0, batch: int = 50_000,
                       author_id: int | None = None, start: int = 0) -> None:  # fmt: skip
    """Insert `n` examples of about 1 KB with COPY: the fastest way in, so the benchmark measures the app."""
    from django.db import connection

    from annotate.services import prompt_hash

    template_id = task.current_template.pk
    columns = (
        "task_id, template_id, uuid, instruction, context, input, messages, completion, kind, source, external_id, "
        "prompt_hash, status, version, author_id, created_at, updated_at, submitted_at"
    )
    author = str(author_id) if author_id else "\\N"
    submitted = "now()" if status == "submitted" else "\\N"
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3 cursor, for COPY
        done = start
        n += start
        while done < n:
            size = min(batch, n - done)
            buffer = io.StringIO()
            for i in range(done, done + size):
                instruction = f"Question {i}: " + filler(i, 180)
                context = filler(i + 7, 600)
                completion = filler(i + 13, completion_chars) if completion_chars else ""
                kind = ("happy", "happy", "happy", "edge", "negative", "ambiguous")[i % 6]
                # The real normalised prompt hash, as an import stores it: the task-wide scan groups duplicates by it.
                digest = prompt_hash({"instruction": instruction, "context": context, "input": ""})
                buffer.write(
                    f"{task.pk}\t{template_id}\t{uuid.uuid4()}\t{_copy_escape(instruction)}\t{_copy_escape(context)}\t"
                    f"\t[]\t{_copy_escape(completion)}\t{kind}\timported\t\t{digest}\t{status}\t1\t{author}\t"
                    f"now()\tnow()\t{submitted}\n"
                )
            with raw.copy(f"COPY annotate_example ({columns}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
            done += size
            print(f"\r   loading examples: {done - start:,}/{n - start:,}", end="", flush=True)
        print()
        cursor.execute("ANALYZE annotate_example")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(*, workers: int = 3, threads: int = 1, extra_env: dict | None = None):
    """A production-like gunicorn on a free loopback port (DEBUG off, static files collected); yields its URL."""
    port = free_port()
    static = tempfile.mkdtemp(prefix="pairsmith-bench-static-")
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_ROOT": static,
        **(extra_env or {}),
    }
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    log = open(Path(static) / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "pairsmith.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--access-logfile", "-"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.2)
        yield url, env["SECRET_KEY"]
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def session_cookie_for(user, secret_key: str) -> dict[str, str]:
    """Log `user` in without the login form: a session row signed for the server's SECRET_KEY, and a CSRF pair."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.test.utils import override_settings

    with override_settings(SECRET_KEY=secret_key):
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
    csrf = secrets.token_hex(16)  # 32 characters: an unmasked CSRF secret, accepted as cookie and header alike
    return {"cookie": f"sessionid={store.session_key}; csrftoken={csrf}", "csrf": csrf}
