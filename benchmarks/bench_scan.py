"""The quality scan over a whole task in PostgreSQL, and the lead's dashboard page that reads its report.

Loads N examples of about 1 KB (default 1,000,000: 40% approved, 20% submitted, 40% new), runs the scan in a
child process (all checks, warnings written back), and prints its wall time and peak memory; then times the
dashboard page over HTTP (gunicorn, DEBUG off). Targets: the scan within 120 s with peak memory under 1 GB; the
dashboard under 1 s. Needs PostgreSQL (DATABASE_URL). The examples are kept between runs (task `bench-scan`).
"""

import argparse
import http.client
import subprocess
import sys
import time

from .common import (
    ROOT,
    bulk_load_examples,
    gunicorn,
    peak_rss,
    percentile,
    require_postgres,
    session_cookie_for,
    setup_django,
)

SLUG = "bench-scan"


def _vacuum() -> None:
    """What autovacuum does on a server in use, done now: without it the pages' counts read a table full of the
    rows that earlier runs deleted or updated, instead of an index."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) annotate_example")


def prepare(n: int):
    from django.db import connection

    from annotate import services
    from annotate.models import Role, Task

    task = Task.objects.filter(slug=SLUG).first()
    # Rows of an older loader carried a placeholder prompt hash that made every prompt one big duplicate group.
    stale = task is not None and task.examples.filter(prompt_hash__startswith="0" * 16).exists()
    if task is None or stale or task.examples.count() != n:
        if task is not None:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM annotate_example WHERE task_id = %s", [task.pk])
            task.scans.all().delete()
            task.templates.all().delete()
            task.memberships.all().delete()
            task.delete()
        task = services.task_create(slug=SLUG, name="Benchmark: quality scan", preset="qa-context")
        task.coverage_targets = {"negative": 0.1, "edge": 0.15}
        task.save()
        bulk_load_examples(task=task, n=n * 4 // 10, status="approved", completion_chars=1000)
        bulk_load_examples(task=task, n=n * 2 // 10, status="submitted", completion_chars=1000, start=n * 4 // 10)
        bulk_load_examples(task=task, n=n - n * 6 // 10, status="new", start=n * 6 // 10)
        _vacuum()
    from django.contrib.auth import get_user_model

    lead, _ = get_user_model().objects.get_or_create(username="bench-lead")
    services.membership_add(task=task, user=lead, role=Role.LEAD)
    return task, lead


CHILD = """
import os, sys, time
from benchmarks.common import peak_rss
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairsmith.settings")
import django; django.setup()
from annotate.models import QualityScan, Task
from annotate.scans import scan_run
task = Task.objects.get(slug=sys.argv[1])
scan = QualityScan.objects.create(task=task)
started = time.perf_counter()
scan_run(scan_id=scan.pk)
elapsed = time.perf_counter() - started
scan.refresh_from_db()
peak = peak_rss() / 2**20
print(f"{scan.state} {elapsed:.1f} {peak:.0f} {scan.report.get('changed', 0)}")
print(scan.error)
"""


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench scan")
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args(argv or [])
    setup_django()
    if not require_postgres():
        return
    task, lead = prepare(args.n)
    from annotate.models import QualityScan

    for attempt in ("first scan (writes every warning)", "second scan (nothing changed)"):
        result = subprocess.run(
            [sys.executable, "-c", CHILD, SLUG], cwd=ROOT, capture_output=True, text=True, check=False
        )
        lines = result.stdout.strip().splitlines()
        if result.returncode or not lines or not lines[0].startswith("succeeded"):
            print(f"   scan failed: {result.stdout[-800:]} {result.stderr[-2000:]}")
            return
        state, seconds, peak_mb, changed = lines[0].split()
        ok = float(seconds) <= 120 and float(peak_mb) < 1024
        print(
            f"   {attempt}: {args.n:,} examples in {float(seconds):.1f} s ({args.n / float(seconds):,.0f} examples/s),"
            f" peak memory {peak_mb} MB, {int(changed):,} examples' warnings written"
            f" ({'meets' if ok else 'MISSES'} the targets 120 s and 1,024 MB)"
        )
    _vacuum()  # the scans updated rows; a server in use vacuums them before long
    report = QualityScan.objects.filter(task=task, state="succeeded").latest("finished_at").report
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.get("timings", {}).items())
    print(f"   library time per check: {timings}")
    print(f"   warnings: {', '.join(f'{code} {n:,}' for code, n in sorted(report['counts'].items()))}")
    with gunicorn(workers=2) as (url, secret):
        cookie = session_cookie_for(lead, secret)
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        times = []
        for i in range(12):
            started = time.perf_counter()
            conn.request("GET", f"/tasks/{SLUG}/dashboard/", headers={"Cookie": cookie["cookie"], "Host": "127.0.0.1"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or b"<svg" not in body:
                print(f"   dashboard failed: {response.status}")
                return
            if i >= 2:  # the first two warm the worker processes
                times.append((time.perf_counter() - started) * 1000)
    print(
        f"   dashboard page: median {percentile(times, 50):.0f} ms, max {max(times):.0f} ms over {len(times)} loads"
        f" ({'meets' if max(times) < 1000 else 'MISSES'} the target under 1,000 ms)"
    )
    print(f"   (this process: peak {peak_rss() / 2**20:.0f} MB)")
