"""Exports on PostgreSQL: records/s of the whole export job against a plain COPY of the same rows, and the job's
peak memory at two sizes.

`python -m benchmarks export` (N = 1,000,000, or BENCH_EXPORT_N), or `python -m benchmarks.bench_export --n 100000`.
Needs DATABASE_URL pointing at PostgreSQL: it creates its own database `<name>_bench_export` next to it (dropped at
the end, unless --keep), loads N/10 and N approved examples of about 1 KB with COPY, then runs each export in a child
process, as a worker would run it (render, check, split, hash, write, fsync, rename), and reads the child's peak
resident memory (VmHWM, read from /proc while it runs). The COPY (SELECT ...) TO STDOUT of the same columns, in
the same order, is the baseline: what PostgreSQL can hand out at best. The figures are for openai-chat (the most
work per record), then, at N, a second version (compared with the first), every other format (--formats), and
openai-chat with a test split and with nothing held out (no contamination check), so that the check's cost shows.
The machine may be shared: CPU seconds per record (the export process's threads, not the database's) compare runs
better than wall time.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.common import peak_rss, run_watched

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_N = int(os.environ.get("BENCH_EXPORT_N", 1_000_000))
COLUMNS_SQL = "id, uuid, template_id, instruction, context, input, completion, kind, messages"
KINDS = ("happy", "happy", "edge", "negative")
LOAD_BATCH = 5_000


def _bench_url(url: str) -> tuple[str, str, str]:
    """(url of the benchmark database, its name, url of the server's maintenance database)."""
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'pairsmith'}_bench_export"
    return (
        urlunsplit(parts._replace(path=f"/{name}")),
        name,
        urlunsplit(parts._replace(path="/postgres")),
    )


def _connect(url: str):
    return psycopg.connect(url, autocommit=True)


def _child_env(url: str, export_root: str) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "", "EXPORT_ROOT": export_root, "LOG_LEVEL": "WARNING"}
    env.pop("PAIRSMITH_EXPORT_THROTTLE", None)
    env["DJANGO_SETTINGS_MODULE"] = "pairsmith.settings"
    return env


def _run_child(args: list[str], env: dict) -> tuple[dict, int]:
    """Run `python -m benchmarks.bench_export <args>`; its JSON answer and its peak RSS in bytes (VmHWM)."""
    code, output, _, peak = run_watched([sys.executable, "-m", "benchmarks.bench_export", *args], cwd=ROOT, env=env)
    if code != 0:
        raise SystemExit(f"benchmark child {args[0]} failed with exit code {code}")
    return json.loads(output.strip().splitlines()[-1]), peak


def _filler(i: int, length: int) -> str:
    words = ("thermostat", "firmware", "amber", "light", "refund", "parcel", "customer", "update", "reset", "warranty")
    text = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(length // 8 + 1))
    return text[:length]


def _load(conn, *, task_id: int, template_id: int, defaults: dict, n: int, start: int) -> None:
    """n approved examples of about 1 KB each (as a record), with COPY in text format. `defaults` holds the COPY
    text of every column's model default, so that columns added later by other features are filled too."""
    now = "2026-01-01 00:00:00+00"
    fixed = defaults | {
        "task_id": str(task_id),
        "template_id": str(template_id),
        "input": "",
        "messages": "[]",
        "source": "imported",
        "status": "approved",
        "created_at": now,
        "updated_at": now,
    }
    varying = ("uuid", "instruction", "context", "completion", "kind")
    names = list(fixed) + [name for name in varying if name not in fixed]
    context = _filler(1, 480)
    questions = [_filler(i, 60) for i in range(97)]
    answers = [_filler(i + 3, 300) for i in range(89)]
    rng = random.Random(start)
    with conn.cursor() as cursor, cursor.copy(f"COPY annotate_example ({', '.join(names)}) FROM STDIN") as copy:
        batch = []
        for i in range(start, start + n):
            values = {
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "instruction": f"Customer {i} asks: why does my thermostat blink amber after the update? "
                + questions[i % 97],
                "context": context,
                "completion": f"Answer {i}: hold the reset button for ten seconds. " + answers[i % 89],
                "kind": KINDS[i % len(KINDS)],
            }
            batch.append("\t".join(values[name] if name in values else fixed[name] for name in names))
            if len(batch) == LOAD_BATCH:
                copy.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            copy.write("\n".join(batch) + "\n")


def _copy_rate(conn, *, task_id: int) -> tuple[float, int]:
    """Rows/s and bytes of COPY (SELECT <the export's columns> ... ORDER BY id) TO STDOUT."""
    sql = (
        f"COPY (SELECT {COLUMNS_SQL} FROM annotate_example WHERE task_id = {int(task_id)} AND status = 'approved' "
        "ORDER BY id) TO STDOUT"
    )
    size = rows = 0
    started = time.perf_counter()
    with conn.cursor() as cursor, cursor.copy(sql) as copy:
        for data in copy:
            size += len(data)
            rows += bytes(data).count(b"\n")
    return rows / (time.perf_counter() - started), size


def _say(text: str) -> None:
    print(text, flush=True)  # a long run shows each figure as it comes


def _targets(measured: dict[str, dict], sizes: list[tuple[str, int]]) -> None:
    """Each target of the issue, met or missed, from the figures of this run."""
    large, small = measured["large"], measured["small"]
    growth = large["rss"] / small["rss"]
    (_, n_small), (_, n_large) = sizes
    checks = [
        (f"export >= 50,000 rec/s at {n_large:,}", large["rate"] >= 50_000, f"{large['rate']:,.0f} rec/s"),
        ("export >= 1/4 of COPY's rows/s", large["ratio"] >= 0.25, f"{large['ratio']:.2f}"),
        ("worker peak RSS < 300 MB", large["rss"] < 300 * 2**20, f"{large['rss'] / 2**20:,.0f} MB"),
        (
            f"peak RSS does not grow with N ({n_small:,} -> {n_large:,} records)",
            growth < 1.2,
            f"x{growth:.2f} ({small['rss'] / 2**20:,.0f} -> {large['rss'] / 2**20:,.0f} MB)",
        ),
    ]
    for what, ok, figure in checks:
        _say(f"   {'meets ' if ok else 'MISSES'} {what}: {figure}")


FORMATS = ("openai-chat", "messages", "prompt-completion", "alpaca", "sharegpt")


def _say_run(label: str, count: int, result: dict, rss: int, copy_rate: float) -> None:
    rate = result["records"] / result["seconds"]
    _say(
        f"   {count:>9,} records as {label}: {rate:,.0f} rec/s · export/COPY {rate / copy_rate:.2f} · "
        f"{result['cpu'] / result['records'] * 1e6:,.1f} µs CPU/record ({result['records'] / result['cpu']:,.0f} "
        f"records per CPU second) · {result['bytes'] / result['records']:,.0f} B/record · peak RSS "
        f"{rss / 2**20:,.0f} MB"
        + (f" · contamination {result['contamination']}" if result.get("contamination") else "")
    )


def run(n: int = DEFAULT_N, keep: bool = False, formats: tuple[str, ...] = FORMATS) -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        _say("   skipped: set DATABASE_URL to a PostgreSQL server (the benchmark makes its own database there)")
        return
    url, name, maintenance = _bench_url(database_url)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    _say(f"   {os.cpu_count()} CPUs, load average {load} (other work on the machine slows every figure)")
    with _connect(maintenance) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    export_root = tempfile.mkdtemp(prefix="pairsmith-bench-export-")
    env = _child_env(url, export_root)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        setup, _ = _run_child(["setup"], env)
        sizes = [("small", max(1, n // 10)), ("large", n)]
        with _connect(url) as conn:
            # A throwaway database, filled with rows that reference only what setup made: skip the foreign-key
            # triggers (when allowed) and build the secondary indexes once after the load rather than row by row.
            with suppress(psycopg.Error):
                conn.execute("SET session_replication_role = replica")
            indexes = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'annotate_example' AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE conrelid = 'annotate_example'::regclass)"
            ).fetchall()
            for index_name, _ in indexes:
                conn.execute(f'DROP INDEX "{index_name}"')
            for label, count in sizes:
                started = time.perf_counter()
                _load(
                    conn,
                    task_id=setup[label]["task"],
                    template_id=setup[label]["template"],
                    defaults=setup["defaults"],
                    n=count,
                    start=0 if label == "small" else 10 * n,
                )
                seconds = time.perf_counter() - started
                rate = count / seconds
                _say(f"   loaded {count:>9,} approved examples with COPY in {seconds:5.1f} s ({rate:,.0f}/s)")
            started = time.perf_counter()
            for _, definition in indexes:
                conn.execute(definition)
            _say(f"   rebuilt {len(indexes)} indexes in {time.perf_counter() - started:.1f} s")
            conn.execute("SET session_replication_role = DEFAULT")
            conn.execute("VACUUM ANALYZE annotate_example")
            measured: dict[str, dict] = {}
            for label, count in sizes:
                task_id = setup[label]["task"]
                _copy_rate(conn, task_id=task_id)  # warm the cache, so both sides read from memory
                result, rss = _run_child(["export", setup[label]["slug"]], env)
                copy_rate, copy_bytes = _copy_rate(conn, task_id=task_id)
                rate = result["records"] / result["seconds"]
                measured[label] = {"rate": rate, "ratio": rate / copy_rate, "rss": rss}
                _say(
                    f"   {count:>9,} records: export {rate:>9,.0f} rec/s ({result['seconds']:.1f} s, "
                    f"{result['bytes'] / 1e6:,.0f} MB written, {result['bytes'] / result['records']:,.0f} B/record)"
                    f" · COPY {copy_rate:>9,.0f} rows/s ({copy_bytes / 1e6:,.0f} MB)"
                    f" · export/COPY {rate / copy_rate:.2f}"
                    f" · worker peak RSS {rss / 2**20:,.0f} MB (of which {result['baseline_rss'] / 2**20:,.0f} MB"
                    " before the export)"
                )
                _say(
                    f"   {'':>9} the export used {result['cpu']:.1f} s of CPU (its threads): "
                    f"{result['records'] / result['cpu']:,.0f} records per CPU second"
                )
                if label == "large":
                    again, rss = _run_child(["export", setup[label]["slug"]], env)
                    _say(
                        f"   {count:>9,} records, v2 compared with v1 (streaming diff): "
                        f"{again['records'] / again['seconds']:,.0f} rec/s · peak RSS {rss / 2**20:,.0f} MB"
                        f" · identical train.jsonl: {again['sha256'] == result['sha256']}"
                    )
                    # --fresh: no earlier version to compare with, so each figure is the format's own work (a diff
                    # against the version before would be measured too, and differ from format to format).
                    for export_format in formats:
                        other, rss = _run_child(
                            ["export", setup[label]["slug"], "--format", export_format, "--fresh"], env
                        )
                        _say_run(export_format, count, other, rss, copy_rate)
                    for what, ratios in (("test split 0.1", ["--test-ratio", "0.1"]),
                                         ("nothing held out", ["--validation-ratio", "0"])):  # fmt: skip
                        other, rss = _run_child(["export", setup[label]["slug"], "--fresh", *ratios], env)
                        _say_run(f"openai-chat, {what}", count, other, rss, copy_rate)
        _targets(measured, sizes)
        _say(f"   (this process: peak RSS {peak_rss() / 2**20:,.0f} MB)")
    finally:
        import shutil

        shutil.rmtree(export_root, ignore_errors=True)
        if not keep:
            with _connect(maintenance) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- children: run with Django, in their own process ------------------------------------------------------------------


def _child_setup() -> dict:
    import django

    django.setup()
    from django.db.models import JSONField

    from annotate.models import Example
    from annotate.services import task_create

    answer: dict = {"defaults": {}}
    for field in Example._meta.concrete_fields:
        if field.primary_key:
            continue
        value = field.get_default()
        if value is None:
            text = r"\N"
        elif isinstance(field, JSONField):
            text = json.dumps(value)
        elif isinstance(value, bool):
            text = "t" if value else "f"
        else:
            text = str(value)
        answer["defaults"][field.column] = text
    for label in ("small", "large"):
        task = task_create(
            slug=f"bench-{label}", name=f"Bench {label}", preset="qa-context", system_prompt="You are the support bot."
        )
        answer[label] = {"task": task.pk, "template": task.current_template.pk, "slug": task.slug}
    return answer


def _child_export(
    slug: str, export_format: str, validation_ratio: float | None, test_ratio: float | None, fresh: bool = False
) -> dict:
    import django

    django.setup()
    from annotate.models import Task
    from exports.services import export_request
    from pairsmith.jobs import JobState

    task = Task.objects.get(slug=slug)
    if fresh:  # earlier versions count as deleted: nothing to compare with (this database is thrown away)
        from django.utils import timezone

        from exports.models import Export

        Export.objects.filter(task=task, state=JobState.SUCCEEDED, deleted_at__isnull=True).update(
            deleted_at=timezone.now(), deletion="deleted"
        )
    baseline = peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    # no REDIS_URL: the job runs inline, here
    export = export_request(
        task=task, export_format=export_format, validation_ratio=validation_ratio, test_ratio=test_ratio
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    export.refresh_from_db()
    if export.state != JobState.SUCCEEDED:
        raise SystemExit(f"export {export.state}: {export.error}")
    size = sum(meta["size"] for name, meta in export.files.items() if name.endswith(".jsonl"))
    return {
        "records": export.counts["total"],
        "seconds": seconds,
        "cpu": cpu,
        "bytes": size,
        "baseline_rss": baseline,
        "sha256": export.files["train.jsonl"]["sha256"],
        "contamination": {key: export.contamination.get(key) for key in ("held_out", "exact", "near")}
        if export.contamination
        else None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_export", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--n", type=int, default=DEFAULT_N, help="approved examples of the large task (default %(default)s)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    sub = parser.add_subparsers(dest="child")
    sub.add_parser("setup")
    child = sub.add_parser("export")
    child.add_argument("slug")
    child.add_argument("--format", default="openai-chat")
    child.add_argument("--validation-ratio", type=float, default=None)
    child.add_argument("--test-ratio", type=float, default=None)
    child.add_argument("--fresh", action="store_true", help="mark earlier versions deleted: no diff")
    parser.add_argument(
        "--formats", default=",".join(FORMATS), help="formats measured at N, comma-separated (default: all)"
    )
    args = parser.parse_args(argv)
    if args.child == "setup":
        print(json.dumps(_child_setup()))
    elif args.child == "export":
        print(json.dumps(_child_export(args.slug, args.format, args.validation_ratio, args.test_ratio, args.fresh)))
    else:
        _say("== export")
        run(args.n, keep=args.keep, formats=tuple(args.formats.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
