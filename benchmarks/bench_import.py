"""Importing a large JSONL file on PostgreSQL: records/s and peak memory of `manage.py import_examples`, at two sizes.

`python -m benchmarks import` (N = 1,000,000, or BENCH_IMPORT_N), `python -m benchmarks import --n 200000`, or
`python -m benchmarks.bench_import --n 200000`. Needs DATABASE_URL pointing at PostgreSQL. For N/10 and N records it
writes a JSONL file of ~1 KB records (instruction, context, completion, kind, id) to a temporary folder, creates a
task, runs the import command in a child process (one pass: check and COPY in one transaction), and reads the child's
wall time and peak resident memory (VmHWM, read from /proc while it runs: each child is measured on its own). The
tasks it created, with their examples, revisions and transitions, are deleted afterwards. Targets: >= 20,000
records/s, and peak memory under 500 MB that does not grow with the file.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from .common import ROOT, filler, require_postgres, run_watched, setup_django

DEFAULT_N = int(os.environ.get("BENCH_IMPORT_N", 1_000_000))
TARGET_RATE = 20_000
TARGET_RSS_MB = 500
KINDS = ("happy", "happy", "happy", "edge", "negative", "ambiguous")


def write_jsonl(path: Path, n: int) -> int:
    """N records of about 1 KB (distinct instructions, texts from a pool); returns the file's size."""
    pool = [(filler(i, 150), filler(i + 7, 450), filler(i + 13, 300)) for i in range(997)]
    with open(path, "wb") as f:
        for i in range(n):
            question, context, completion = pool[i % len(pool)]
            record = {
                "instruction": f"Question {i}: {question}",
                "context": context,
                "completion": completion,
                "kind": KINDS[i % len(KINDS)],
                "id": f"bench-{i}",
            }
            f.write(orjson.dumps(record) + b"\n")
    return path.stat().st_size


def run_child(slug: str, path: Path, *, fails: bool = False) -> tuple[float, int, str]:
    """(seconds, peak RSS in bytes, output) of `manage.py import_examples SLUG PATH` in a child process, which must
    succeed (or, with `fails`, exit non-zero)."""
    env = {**os.environ, "REDIS_URL": "", "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "pairsmith.settings"}
    code, output, seconds, peak = run_watched(
        [sys.executable, "manage.py", "import_examples", slug, str(path)], cwd=ROOT, env=env, stderr=subprocess.STDOUT
    )
    if bool(code) != fails:
        raise SystemExit(f"import_examples exited with {code}:\n{output}")
    return seconds, peak, output


def copy_baseline(slug: str, path: Path) -> float:
    """Seconds PostgreSQL alone takes to load the rows an import as new stores (examples and their first revisions;
    no transitions: the status does not move) from preformatted COPY text in one transaction, foreign keys checked as
    the import checks them: the ceiling of any import on this server, whatever the client does."""
    import uuid

    from django.db import connection, transaction

    from annotate.importing import _copy_text, _CopyLoader
    from annotate.models import Example, Revision, Task

    task = Task.objects.get(slug=slug)
    loader = _CopyLoader(task=task, template_id=task.current_template.pk, status="new", actor=None)
    lines = path.read_bytes().split(b"\n")[:-1]
    signature = "\\\\x" + "5a" * 64
    e, r = [], []
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('annotate_example', 'id')) FROM generate_series(1, %s)",
                       [len(lines)])  # fmt: skip
        ids = [row[0] for row in cursor.fetchall()]
    for i, (line, pk) in enumerate(zip(lines, ids, strict=True)):
        record = orjson.loads(line)
        text = [_copy_text(record[k]) for k in ("instruction", "context", "completion", "kind", "id")]
        # the columns of _CopyLoader.EXAMPLE and REVISION, as it writes them: prompt hash, prompt signature (64 bytes,
        # as bytea COPY text), no warnings, the common tail; a revision without reasoning
        e.append(f"{pk}\t{task.pk}\t{loader.template_id}\t{uuid.uuid4()}\t{text[0]}\t{text[1]}\t\t[]\t{text[2]}\t"
                 f"{text[3]}\timported\t{text[4]}\t{i:064x}\t{signature}\t[]\t\t0{loader.example_tail}")  # fmt: skip
        r.append(f"{pk}\t{text[2]}\t{text[3]}{loader.revision_head}{loader.revision_rest}")
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for model, rows in ((Example, e), (Revision, r)):
            with cursor.cursor.copy(loader.sql[model]) as copy:
                copy.write("".join(rows))
    return time.perf_counter() - started


def drop_task(slug: str) -> None:
    """Delete the benchmark's task and everything it holds, set-wise (the ORM would load a million rows first)."""
    from django.db import connection, transaction

    from annotate.models import Task

    task = Task.objects.filter(slug=slug).first()
    if task is None:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        examples = "SELECT id FROM annotate_example WHERE task_id = %s"
        cursor.execute(f"DELETE FROM annotate_transition WHERE example_id IN ({examples})", [task.pk])
        cursor.execute(f"DELETE FROM annotate_revision WHERE example_id IN ({examples})", [task.pk])
        cursor.execute("DELETE FROM annotate_example WHERE task_id = %s", [task.pk])
        task.delete()
    # Its dead rows go at once, not when autovacuum gets to them: the next run (or benchmark) would otherwise insert
    # next to gigabytes of them, and each run would measure the ones before it.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM annotate_example, annotate_revision, annotate_transition")


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks import")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="records in the large file (default %(default)s)")
    args = parser.parse_args(argv or [])
    setup_django()
    if not require_postgres():
        return
    from annotate import services

    results = []
    with tempfile.TemporaryDirectory(prefix="pairsmith-bench-import-") as folder:
        for n in sorted({max(1, args.n // 10), args.n}):
            path = Path(folder) / f"import-{n}.jsonl"
            started = time.perf_counter()
            size = write_jsonl(path, n)
            print(f"   wrote {n:,} records, {size / 1e6:,.0f} MB ({size / n:,.0f} B/record) in "
                  f"{time.perf_counter() - started:.1f} s")  # fmt: skip
            slug = f"bench-import-{os.getpid()}-{n}"
            drop_task(slug)
            services.task_create(slug=slug, name=f"Import benchmark {n:,}", preset="qa-context")
            try:
                seconds, rss, output = run_child(slug, path)
            finally:
                drop_task(slug)
                path.unlink()
            assert f"Imported {n} examples into {slug}" in output, output
            rate = n / seconds
            results.append((n, rss))
            print(
                f"   {n:>9,} records: {seconds:6.1f} s · {rate:>8,.0f} records/s · {size / seconds / 1e6:5.1f} MB/s"
                f" · peak RSS {rss / 1e6:,.0f} MB"
                + (  # the rate target is the large file's; the small one (start-up included) is for memory
                    f" · {'meets' if rate >= TARGET_RATE else 'MISSES'} {TARGET_RATE:,} rec/s"
                    if n == args.n
                    else " · (start-up of ~1 s included; for the memory ratio)"
                )
                + f" · {'under' if rss < TARGET_RSS_MB * 1e6 else 'OVER'} {TARGET_RSS_MB} MB"
            )
    with tempfile.TemporaryDirectory(prefix="pairsmith-bench-import-") as folder:
        n = max(1, args.n // 10)
        path = Path(folder) / "baseline.jsonl"
        write_jsonl(path, n)
        # The worst case of all or nothing: the last record is bad, found after every other one went in.
        bad = Path(folder) / "bad-last.jsonl"
        bad.write_bytes(path.read_bytes() + orjson.dumps({"instruction": "x", "kind": "weird"}) + b"\n")
        slug = f"bench-import-{os.getpid()}-bad"
        drop_task(slug)
        task = services.task_create(slug=slug, name="Import benchmark: a bad last record", preset="qa-context")
        try:
            seconds, _, output = run_child(slug, bad, fails=True)
            stored = task.examples.count()
        finally:
            drop_task(slug)
        assert f'line {n + 1}, field "kind"' in output and stored == 0, (output, stored)
        print(f"   a bad last record (line {n + 1:,}): refused in {seconds:.1f} s, nothing stored, the problem named "
              f"(the import rolled back, then the file was read again to list every problem)")  # fmt: skip
        slug = f"bench-import-{os.getpid()}-copy"
        drop_task(slug)
        services.task_create(slug=slug, name="Import benchmark: COPY baseline", preset="qa-context")
        try:
            seconds = copy_baseline(slug, path)
        finally:
            drop_task(slug)
        print(f"   baseline, PostgreSQL alone: COPY of the same {n:,} examples and revisions, "
              f"one transaction: {seconds:.1f} s · {n / seconds:,.0f} records/s")  # fmt: skip
    if len(results) == 2:
        (small_n, small_rss), (large_n, large_rss) = results
        print(f"   memory: ×{large_rss / small_rss:.2f} for ×{large_n / small_n:.0f} the records")


if __name__ == "__main__":
    run(sys.argv[1:])
