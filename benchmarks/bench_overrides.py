"""“Not a problem” at scale: what the overrides add to a task-wide rescan and to the lead's dashboard.

A task of 1,000,000 examples (--n) with 10,000 warnings marked not a problem (--overrides: far more than people click).
Prints the time to find the overrides standing on their examples' current texts (overrides.task_marks: run once by
every rescan), to count the overruled warnings per check (overrides.overruled_counts: every dashboard view), the
dashboard's whole check table, and the median latency of one "not a problem" and of its undo (the service, in one
transaction each). Targets: one override under 20 ms; the dashboard's part grows with the overridden examples
(about 10 µs each: 100 ms at 10,000), not with the task. Needs PostgreSQL
(DATABASE_URL). The examples are kept between runs (task `bench-overrides`); --fresh reloads them.
"""

import argparse
import statistics
import time

from .common import bulk_load_examples, require_postgres, setup_django

SLUG = "bench-overrides"
WARNING = {"code": "whitespace", "message": "The completion ends with whitespace.", "blocking": False, "detail": {}}


def _setup(n: int, k: int, fresh: bool):
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from annotate import overrides, services
    from annotate.models import Example, Membership, QualityOverride, QualityScan, Role, Task
    from annotate.scans import warning_fields

    user, _ = get_user_model().objects.get_or_create(username="bench-overrides-lead")
    task = Task.objects.filter(slug=SLUG).first()
    if task is not None and (fresh or task.examples.count() != n):
        with connection.cursor() as cursor:  # faster than the ORM's cascade over a million rows
            cursor.execute("DELETE FROM annotate_qualityoverride WHERE task_id = %s", [task.pk])
            cursor.execute("DELETE FROM annotate_example WHERE task_id = %s", [task.pk])
        task.delete()
        task = None
    if task is None:
        task = services.task_create(slug=SLUG, name="Benchmark: not a problem", preset="qa-context")
        Membership.objects.get_or_create(task=task, user=user, role=Role.LEAD)
        bulk_load_examples(task=task, n=n, status="submitted", completion_chars=300)
    QualityOverride.objects.filter(task=task).delete()
    ids = list(task.examples.order_by("id").values_list("id", flat=True)[: k + 100])
    marked, spare = ids[:k], ids[k:]
    with transaction.atomic():
        rows = []
        for example in Example.objects.filter(pk__in=marked).iterator(chunk_size=2000):
            rows.append(
                QualityOverride(
                    task=task, example=example, code="whitespace", text_hash=overrides.example_text_hash(example),
                    example_version=example.version, created_by=user,
                )
            )  # fmt: skip
        QualityOverride.objects.bulk_create(rows, batch_size=2000)
        marks = overrides.task_marks(task)
        objects = [Example(pk=pk, **warning_fields(overrides.apply_marks([WARNING], marks.get(pk)))) for pk in marked]
        objects += [Example(pk=pk, **warning_fields([WARNING])) for pk in spare]
        Example.objects.bulk_update(objects, ["warnings", "warning_codes", "risk"], batch_size=2000)
    if not task.scans.filter(state="succeeded").exists():
        QualityScan.objects.create(
            task=task, state="succeeded", finished_at=timezone.now(),
            report={"counts": {"whitespace": 100}, "overruled": {"whitespace": k}},
        )  # fmt: skip
    return task, user, spare


def _timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench overrides")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--overrides", type=int, default=10_000)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv or [])
    setup_django()
    if not require_postgres():
        return
    from annotate import overrides
    from annotate.models import Example, QualityOverride, Role
    from annotate.views_quality import check_rows

    task, user, spare = _setup(args.n, args.overrides, args.fresh)
    report = task.scans.filter(state="succeeded").latest("finished_at").report if task.scans.exists() else {}
    ms, marks = _timed(lambda: overrides.task_marks(task), repeat=3)
    print(f"   task_marks (every rescan): {ms:,.0f} ms for {len(marks):,} overridden examples of {args.n:,}")
    ms, counts = _timed(lambda: overrides.overruled_counts(task))
    print(f"   overruled_counts (every dashboard view): {ms:,.1f} ms ({counts})")
    ms, _ = _timed(lambda: check_rows(task, report))
    print(f"   the dashboard's check table: {ms:,.1f} ms")
    roles = {Role.LEAD}
    marking, undoing = [], []
    for pk in spare[:50]:
        example = Example.objects.get(pk=pk)
        started = time.perf_counter()
        override = overrides.override_record(
            example=example, user=user, roles=roles, code="whitespace", version=example.version
        )
        marking.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        overrides.override_undo(override=override, user=user, roles=roles)
        undoing.append((time.perf_counter() - started) * 1000)
    QualityOverride.objects.filter(task=task, example_id__in=spare).delete()
    print(
        f"   one 'not a problem': median {statistics.median(marking):.1f} ms, max {max(marking):.1f} ms; "
        f"its undo: median {statistics.median(undoing):.1f} ms (50 of each)"
    )
