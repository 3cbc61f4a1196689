"""Review latency: 16 reviewers at once over HTTP (gunicorn, DEBUG off) with 1,000,000 submitted examples.

Each reviewer opens the review screen of its pair, reads for two seconds, records a verdict (approve four times in
five, flag the fifth with a reason and a comment), and again, for the duration. The verdict leases the next pair in
the same request and redirects to its review screen, which the client opens at once, as a browser does; "Start
reviewing" (a POST to /review/next/) takes the first pair. Prints the 50th/95th/99th percentile latency of the review
screen, of the verdict (with the next lease) and of their sum: from pressing "a" to the next pair on screen.
Target: p95 under 30 ms. Needs PostgreSQL (DATABASE_URL). Options: --n EXAMPLES (default 1,000,000), --seconds
(default 60), --reviewers (default 16). The examples are kept between runs (task `bench-review`): each run puts the
judged ones back in the queue and deletes the verdicts it made; --fresh reloads them.
"""

import argparse
import contextlib
import http.client
import re
import threading
import time
from urllib.parse import urlencode

from .common import bulk_load_examples, gunicorn, percentile, require_postgres, session_cookie_for, setup_django

SLUG = "bench-review"
REVIEW_URL = re.compile(r"/tasks/[^/]+/review/([0-9a-f-]{36})/")
WARM_UP_SECONDS = 6
COMPLETION_CHARS = 400


def _sql(statement: str, params: list) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


@contextlib.contextmanager
def _entering_review_in_load_order():
    """While common.bulk_load_examples loads (it does not write submitted_at), rows take clock_timestamp() as their
    submitted_at: they enter review in load order, so "oldest first" follows the ids without rewriting a million
    rows afterwards. The column has no database default otherwise; it is dropped again at the end."""
    _sql("ALTER TABLE annotate_example ALTER COLUMN submitted_at SET DEFAULT clock_timestamp()", [])
    try:
        yield
    finally:
        _sql("ALTER TABLE annotate_example ALTER COLUMN submitted_at DROP DEFAULT", [])


def _drop(task) -> None:
    """A million rows: delete in SQL, not through the ORM's cascade (verdicts are immutable in the ORM on purpose)."""
    in_task = "example_id IN (SELECT id FROM annotate_example WHERE task_id = %s)"
    for table in ("reviews_verdict", "annotate_revision", "annotate_transition", "annotate_skip"):
        _sql(f"DELETE FROM {table} WHERE {in_task}", [task.pk])  # noqa: S608 (fixed table names)
    _sql("DELETE FROM annotate_example WHERE task_id = %s", [task.pk])
    task.memberships.all().delete()
    task.templates.all().delete()
    task.delete()


def prepare(n: int, reviewers: int, fresh: bool):
    from django.contrib.auth import get_user_model

    from annotate import services
    from annotate.models import Role, Task

    User = get_user_model()
    annotator, _ = User.objects.get_or_create(username="bench-review-annotator")
    task = Task.objects.filter(slug=SLUG).first()
    if task is not None and (fresh or task.examples.count() < n):
        print("   removing the previous benchmark task …")
        _drop(task)
        task = None
    if task is None:
        task = services.task_create(slug=SLUG, name="Benchmark: review", preset="qa-context")
        services.membership_add(task=task, user=annotator, role=Role.ANNOTATOR)
        with _entering_review_in_load_order():
            bulk_load_examples(
                task=task, n=n, status="submitted", completion_chars=COMPLETION_CHARS, author_id=annotator.pk
            )
        print("   recording the submitted revisions …")
        _sql(
            "INSERT INTO annotate_revision (example_id, text, kind, author_id, reason, example_version, created_at) "
            "SELECT id, completion, kind, author_id, 'submit', version, now() FROM annotate_example WHERE task_id = %s",
            [task.pk],
        )
        _sql("ANALYZE annotate_example", [])
        _sql("ANALYZE annotate_revision", [])
    else:
        # Reuse the rows: every run starts from a full queue and no verdicts.
        in_task = "example_id IN (SELECT id FROM annotate_example WHERE task_id = %s)"
        _sql(f"DELETE FROM reviews_verdict WHERE {in_task}", [task.pk])  # noqa: S608
        _sql(f"DELETE FROM annotate_transition WHERE {in_task}", [task.pk])  # noqa: S608
        _sql(
            "UPDATE annotate_example SET status = 'submitted', claimed_by_id = NULL, claim_expires_at = NULL, "
            "triage = false WHERE task_id = %s AND (status <> 'submitted' OR claimed_by_id IS NOT NULL OR triage)",
            [task.pk],
        )
    users = []
    for i in range(reviewers):
        user, _ = User.objects.get_or_create(username=f"bench-reviewer-{i}")
        services.membership_add(task=task, user=user, role=Role.REVIEWER)
        users.append(user)
    return task, users


def reviewer_loop(url: str, cookie: dict, start: float, deadline: float, results: dict) -> None:
    """Review page, pause, verdict, until the deadline. Requests that begin before `start` are not counted."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Cookie": cookie["cookie"], "X-CSRFToken": cookie["csrf"], "Host": "127.0.0.1"}
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    done = 0
    location, decided = "", 0.0  # the pair the last verdict leased, and how long that verdict took
    while time.monotonic() < deadline:
        counted = time.monotonic() >= start
        if not REVIEW_URL.search(location):  # "Start reviewing"
            started = time.perf_counter()
            conn.request("POST", f"/tasks/{SLUG}/review/next/", body="", headers=form)
            response = conn.getresponse()
            response.read()
            location, decided = response.getheader("Location") or "", 0.0
            if counted and response.status == 302:
                results["start reviewing"].append(time.perf_counter() - started)
        match = REVIEW_URL.search(location)
        if not match:
            results["errors"].append(f"next: no pair ({location})")
            time.sleep(1)
            continue
        started = time.perf_counter()
        conn.request("GET", location, headers=headers)
        response = conn.getresponse()
        page = response.read()
        elapsed = time.perf_counter() - started
        version = re.search(rb'name="version" value="(\d+)"', page)
        if response.status != 200 or not version:
            results["errors"].append(f"review page: {response.status} {page[:200]!r}")
            location = ""
            time.sleep(1)
            continue
        if counted:
            results["review page"].append(elapsed)
            if decided:
                results["verdict + next page"].append(decided + elapsed)
        time.sleep(2)  # reading: two requests (verdict, page) every two seconds, as with the GET "next" before
        done += 1
        fields = {"version": version.group(1).decode(), "decision": "approve"}
        if done % 5 == 0:
            fields.update(decision="flag", reasons="inaccurate", comment="Check the figure against the manual.")
        counted = time.monotonic() >= start
        started = time.perf_counter()
        uuid = match.group(1)
        conn.request("POST", f"/tasks/{SLUG}/review/{uuid}/decide/", body=urlencode(fields), headers=form)
        response = conn.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
        location, decided = response.getheader("Location") or "", 0.0
        if response.status != 302:
            results["errors"].append(f"verdict: {response.status} {content[:300]!r}")
        elif counted:
            results["verdict"].append(elapsed)
            decided = elapsed


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench review")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--reviewers", type=int, default=16)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv or [])
    setup_django()
    if not require_postgres():
        return
    from annotate.models import Example

    task, users = prepare(args.n, args.reviewers, args.fresh)
    rows = Example.objects.filter(task=task).count()
    names = ("review page", "verdict", "verdict + next page", "start reviewing")
    results: dict[str, list] = {**{name: [] for name in names}, "errors": []}
    with gunicorn(workers=3) as (url, secret):
        cookies = [session_cookie_for(user, secret) for user in users]
        start = time.monotonic() + WARM_UP_SECONDS
        deadline = start + args.seconds
        threads = [
            threading.Thread(target=reviewer_loop, args=(url, cookie, start, deadline, results)) for cookie in cookies
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(f"   {args.reviewers} reviewers for {args.seconds} s, {rows:,} submitted examples, gunicorn 3 workers")
    for name in names:
        values = [v * 1000 for v in results[name]]
        if not values:  # "start reviewing": once per reviewer, during the warm-up
            continue
        p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
        print(
            f"   {name:<19} n={len(values):>5}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms"
            f"  max {max(values, default=float('nan')):6.1f} ms"
            f"  ({'meets' if p95 < 30 else 'MISSES'} the target p95 < 30 ms)"
        )
    print(f"   errors: {len(results['errors'])}" + (f" (first: {results['errors'][0]})" if results["errors"] else ""))
