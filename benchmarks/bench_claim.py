"""Claim-and-save latency: 16 annotators at once over HTTP (gunicorn, DEBUG off) with 1,000,000 examples.

Each annotator takes the next example, pauses a second, autosaves a ~1 KB completion, pauses a second, and again,
for the duration. Prints the 50th/95th/99th percentile latency of the claim and of the save. Target: p95 of each
under 30 ms. Needs PostgreSQL (DATABASE_URL). Options: --n EXAMPLES (default 1,000,000), --seconds (default 60),
--annotators (default 16). The examples are kept between runs (task `bench-claim`); --fresh reloads them.
"""

import argparse
import http.client
import re
import threading
import time

from .common import bulk_load_examples, filler, gunicorn, percentile, require_postgres, session_cookie_for, setup_django

SLUG = "bench-claim"


def prepare(n: int, annotators: int, fresh: bool):
    from django.contrib.auth import get_user_model

    from annotate import services
    from annotate.models import Example, Role, Task

    User = get_user_model()
    task = Task.objects.filter(slug=SLUG).first()
    if task is not None and (fresh or task.examples.count() < n):
        print("   removing the previous benchmark task …")
        from django.db import connection

        with connection.cursor() as cursor:  # a million rows: delete in SQL, not through the ORM's cascade
            for table in ("annotate_revision", "annotate_transition", "annotate_skip"):
                cursor.execute(
                    f"DELETE FROM {table} WHERE example_id IN (SELECT id FROM annotate_example WHERE task_id = %s)",
                    [task.pk],
                )  # noqa: E501
            cursor.execute("DELETE FROM annotate_example WHERE task_id = %s", [task.pk])
        task.memberships.all().delete()
        task.templates.all().delete()
        task.delete()
        task = None
    if task is None:
        task = services.task_create(slug=SLUG, name="Benchmark: claim and save", preset="qa-context")
        bulk_load_examples(task=task, n=n)
    else:
        # Reuse the rows: everything back to `new` and unclaimed, so every run starts alike.
        Example.objects.filter(task=task).exclude(status="new", claimed_by=None).update(
            status="new", claimed_by=None, claim_expires_at=None, author=None, completion="", version=1
        )
    users = []
    for i in range(annotators):
        user, _ = User.objects.get_or_create(username=f"bench-annotator-{i}")
        services.membership_add(task=task, user=user, role=Role.ANNOTATOR)
        users.append(user)
    return task, users


def annotator_loop(url: str, cookie: dict, start: float, deadline: float, results: dict, completion: str) -> None:
    """Claim, pause, save, pause, until the deadline. Requests that begin before `start` warm up and are not counted."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Cookie": cookie["cookie"], "X-CSRFToken": cookie["csrf"], "Host": "127.0.0.1"}
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true"}
    claim = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    while time.monotonic() < deadline:
        counted = time.monotonic() >= start
        started = time.perf_counter()
        conn.request("POST", f"/tasks/{SLUG}/annotate/", body="", headers=claim)  # the "Annotate" button
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        location = response.getheader("Location") or ""
        match = re.search(r"/examples/([0-9a-f-]{36})/edit/", location)
        if response.status != 302 or not match:
            results["errors"].append(f"claim: {response.status} {location}")
            time.sleep(1)
            continue
        # What the annotator waits for is the claim and then the editor page it leads to: time both.
        conn.request("GET", location, headers=headers)
        page = conn.getresponse()
        page_body = page.read()
        with_page = time.perf_counter() - started
        if page.status != 200 or b'id="id_completion"' not in page_body:
            results["errors"].append(f"editor: {page.status} {location}")
        elif counted:
            results["claim"].append(elapsed)
            results["claim + editor page"].append(with_page)
        time.sleep(1)
        counted = time.monotonic() >= start
        started = time.perf_counter()
        body = f"completion={completion}&kind=happy&version=1&autosave=1"
        conn.request("POST", f"/tasks/{SLUG}/examples/{match.group(1)}/save/", body=body, headers=form)
        response = conn.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or b"Saved" not in content:
            results["errors"].append(f"save: {response.status} {content[:200]!r}")
        elif counted:
            results["save"].append(elapsed)
        time.sleep(1)


WARM_UP_SECONDS = 6


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench claim")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv or [])
    setup_django()
    if not require_postgres():
        return
    from annotate.models import Example

    task, users = prepare(args.n, args.annotators, args.fresh)
    rows = Example.objects.filter(task=task).count()
    completion = filler(1, 1000).replace(" ", "+")
    results: dict[str, list] = {"claim": [], "claim + editor page": [], "save": [], "errors": []}
    with gunicorn(workers=3) as (url, secret):
        cookies = [session_cookie_for(user, secret) for user in users]
        start = time.monotonic() + WARM_UP_SECONDS
        deadline = start + args.seconds
        threads = [
            threading.Thread(target=annotator_loop, args=(url, cookie, start, deadline, results, completion))
            for cookie in cookies
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(f"   {args.annotators} annotators for {args.seconds} s, {rows:,} examples in the task, gunicorn 3 workers")
    for name in ("claim", "claim + editor page", "save"):
        values = [v * 1000 for v in results[name]]
        p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
        verdict = "meets" if p95 < 30 else "MISSES"
        print(
            f"   {name:<20} n={len(values):>5}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms"
            f"  max {max(values, default=float('nan')):6.1f} ms  ({verdict} the target p95 < 30 ms)"
        )
    print(f"   errors: {len(results['errors'])}" + (f" (first: {results['errors'][0]})" if results["errors"] else ""))
