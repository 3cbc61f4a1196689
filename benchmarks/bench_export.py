"""Exports on PostgreSQL: records/s of each format's whole export job against a plain COPY of the same rows, and the
job's peak memory, at each size.

`make bench BENCH_ARGS="export"` (sizes N/10 and N, N = 1,000,000 or BENCH_EXPORT_N), or
`python -m benchmarks export --sizes 100000,1000000 --formats openai-chat,sharegpt [--no-extras] [--keep]
[--repeat 3]`.
Needs DATABASE_URL pointing at PostgreSQL: it creates its own database `<name>_bench_export` next to it (dropped at
the end, unless --keep), loads one task of approved examples of about 1 KB per size with COPY (with their stored
prompt hashes, as an import stores them), then runs each export in a child process, as a worker would run it (render,
check, split 0.1 validation, contamination check, hash, write, fsync, rename), and reads the child's peak resident
memory (VmHWM, read from /proc while it runs) plus the peak of the matching process it starts (the contamination
check's, exports/matching.py). The COPY (SELECT ...) TO STDOUT of the same columns, in the same order, right after
each export, is the baseline: what PostgreSQL can hand out at best. Every format runs at every size (each on its own,
with no earlier version to compare with); at the largest size, the extras: a second version compared with the first,
a test split, and nothing held out (no contamination check), so that the check's cost shows. At each size every
format runs once a round, for --repeat rounds (after a CHECKPOINT of the load), and the table shows each format's run
of median ratio, with the highest peak RSS of its runs: a shared machine slows single runs now and then, and the
first exports after the load run slower (measured: 8.8, 7.7, then 7.3 µs a record). The generated prompts all look
alike (a shared context, one of 97 questions), so about 90% of train is a near duplicate of a validation prompt: the
contamination check's worst case. A table closes the run: per format records/s, ratio to COPY and peak RSS at each
size, and whether each target is met (at least 0.25 of COPY at the largest size, peak RSS growing less than x1.2 from
the smallest size to the largest). The machine may be shared: CPU seconds per record (the export process's threads,
not the database's) compare runs better than wall time.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from annotate.quality import prompt_signature
from annotate.quality.text import fold, prompt_key
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
    varying = ("uuid", "instruction", "context", "completion", "kind", "prompt_hash", "prompt_signature")
    names = list(fixed) + [name for name in varying if name not in fixed]
    context = _filler(1, 480)
    folded_context = fold(context)
    questions = [_filler(i, 60) for i in range(97)]
    answers = [_filler(i + 3, 300) for i in range(89)]
    rng = random.Random(start)

    def write(copy, batch: list[dict]) -> None:
        # the prompt signatures an import stores with each example (annotate.quality.prompt_signature), a batch at once
        signatures = prompt_signature.stored([((row["instruction"], context, ""), None) for row in batch])
        for values, signature in zip(batch, signatures, strict=True):
            values["prompt_signature"] = f"\\\\x{signature.hex()}"
        lines = ("\t".join(row[name] if name in row else fixed[name] for name in names) for row in batch)
        copy.write("".join(line + "\n" for line in lines))
        batch.clear()

    with conn.cursor() as cursor, cursor.copy(f"COPY annotate_example ({', '.join(names)}) FROM STDIN") as copy:
        batch = []
        for i in range(start, start + n):
            instruction = f"Customer {i} asks: why does my thermostat blink amber after the update? {questions[i % 97]}"
            batch.append({
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "instruction": instruction,
                # the hash the app stores for every example (annotate.services.prompt_hash), as an import stores it
                "prompt_hash": prompt_key((fold(instruction), folded_context, b"")),
                "context": context,
                "completion": f"Answer {i}: hold the reset button for ten seconds. " + answers[i % 89],
                "kind": KINDS[i % len(KINDS)],
            })  # fmt: skip
            if len(batch) == LOAD_BATCH:
                write(copy, batch)
        if batch:
            write(copy, batch)


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


FORMATS = ("openai-chat", "messages", "prompt-completion", "alpaca", "sharegpt")
MIN_RATIO = 0.25  # each format's records/s against COPY's rows/s, in the same run
MAX_GROWTH = 1.2  # peak RSS at the largest size against the smallest


def _measure(label: str, slug: str, env: dict, conn, task_id: int, *args: str) -> dict:
    """One export in a child process (after a COPY that warms the cache), and a COPY of the same rows right after."""
    _copy_rate(conn, task_id=task_id)
    result, rss = _run_child(["export", slug, *args], env)
    copy_rate, _ = _copy_rate(conn, task_id=task_id)
    rate = result["records"] / result["seconds"]
    figures = {
        "label": label,
        "records": result["records"],
        "rate": rate,
        "copy": copy_rate,
        "ratio": rate / copy_rate,
        "cpu_us": result["cpu"] / result["records"] * 1e6,
        "rss": rss,
        "bytes": result["bytes"] / result["records"],
        "contamination": result.get("contamination"),
        "sha256": result["sha256"],
    }
    contamination = figures["contamination"]
    _say(
        f"   {figures['records']:>9,} {label:<34} {rate:>9,.0f} rec/s · COPY {copy_rate:>9,.0f} rows/s · "
        f"ratio {figures['ratio']:.2f} · {figures['cpu_us']:5.1f} µs CPU/record · peak RSS {rss / 2**20:,.0f} MB"
        + (
            f" · held out {contamination['held_out']:,}, exact {contamination['exact']:,}, near "
            f"{contamination['near']:,}"
            if contamination
            else ""
        )
    )
    return figures


def _median(runs: list[dict]) -> dict:
    """The run of median speed (its COPY and ratio with it), with the highest peak RSS of all the runs."""
    middle = sorted(runs, key=lambda run: run["ratio"])[len(runs) // 2]
    return {**middle, "rss": max(run["rss"] for run in runs)}


def _table(results: dict[tuple[str, int], dict], sizes: list[int], formats: tuple[str, ...]) -> None:
    """Per format: records/s, ratio to COPY and peak RSS at each size, and whether the targets are met."""
    head = " | ".join(f"{n:,}: rec/s · /COPY · MB" for n in sizes)
    _say(f"\n   | format | {head} | RSS growth | targets |")
    _say("   | --- |" + " --- |" * (len(sizes) + 2))
    for export_format in formats:
        row = [results[export_format, n] for n in sizes]
        cells = " | ".join(f"{r['rate']:,.0f} · {r['ratio']:.2f} · {r['rss'] / 2**20:,.0f}" for r in row)
        growth = row[-1]["rss"] / row[0]["rss"]
        ratio_ok = row[-1]["ratio"] >= MIN_RATIO  # the target: at the largest size (1,000,000)
        flat = len(sizes) == 1 or growth < MAX_GROWTH
        verdict = ("meets" if ratio_ok else "MISSES") + f" ≥ {MIN_RATIO} of COPY at {sizes[-1]:,}; "
        verdict += "flat" if flat else "NOT FLAT"
        _say(f"   | {export_format} | {cells} | ×{growth:.2f} | {verdict} |")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks export", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default=f"{max(1, DEFAULT_N // 10)},{DEFAULT_N}",
        help="approved examples per run, comma-separated, smallest first (default %(default)s)",
    )
    parser.add_argument("--n", type=int, help="shorthand for --sizes N/10,N")
    parser.add_argument("--formats", default=",".join(FORMATS), help="formats, comma-separated (default: all)")
    parser.add_argument("--no-extras", action="store_true", help="skip v2-vs-v1, test split and no-check runs")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each format at each size; the table shows the median (3)"
    )
    args = parser.parse_args(argv or [])
    if args.n:
        args.sizes = f"{max(1, args.n // 10)},{args.n}"
    args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.formats = tuple(args.formats.split(","))
    unknown = set(args.formats) - set(FORMATS)
    if unknown:
        parser.error(f"unknown format(s) {', '.join(sorted(unknown))}; choose from {', '.join(FORMATS)}")
    return args


def run(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    sizes, formats = args.sizes, args.formats
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
        setup, _ = _run_child(["setup", *map(str, sizes)], env)
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
            for position, count in enumerate(sizes):
                task = setup["tasks"][str(count)]
                started = time.perf_counter()
                _load(
                    conn,
                    task_id=task["task"],
                    template_id=task["template"],
                    defaults=setup["defaults"],
                    n=count,
                    start=position * 10 * sizes[-1],
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
            # The load's pages written out now, not by a spread checkpoint that would run under the first exports
            # (measured: the first format of a run lost a fifth of its speed to it).
            with suppress(psycopg.Error):  # needs a superuser or pg_checkpoint; a figure without it reads lower
                conn.execute("CHECKPOINT")
            results: dict[tuple[str, int], dict] = {}
            for count in sizes:
                task = setup["tasks"][str(count)]
                # --fresh: no earlier version to compare with, so each figure is the format's own work (a diff
                # against the version before would be measured too, and differ from format to format).
                # Round after round of every format, so that a slow spell of a shared machine (or the first exports
                # after the load) falls on each format alike rather than on the one that runs first.
                runs: dict[str, list[dict]] = {export_format: [] for export_format in formats}
                for _ in range(args.repeat):
                    for export_format in formats:
                        runs[export_format].append(
                            _measure(export_format, task["slug"], env, conn, task["task"], "--format", export_format,
                                     "--fresh")
                        )  # fmt: skip
                for export_format in formats:
                    results[export_format, count] = _median(runs[export_format])
            if not args.no_extras:
                count, task = sizes[-1], setup["tasks"][str(sizes[-1])]
                first = _measure("openai-chat, v1", task["slug"], env, conn, task["task"], "--fresh")
                again = _measure("openai-chat, v2 diffed against v1", task["slug"], env, conn, task["task"])
                _say(f"   {'':>9} v2 identical to v1: {again['sha256'] == first['sha256']}")
                for what, ratios in (("test split 0.1", ["--test-ratio", "0.1"]),
                                     ("nothing held out (no check)", ["--validation-ratio", "0"])):  # fmt: skip
                    _measure(f"openai-chat, {what}", task["slug"], env, conn, task["task"], "--fresh", *ratios)
        _table(results, sizes, formats)
        _say(f"   (this process: peak RSS {peak_rss() / 2**20:,.0f} MB)")
    finally:
        shutil.rmtree(export_root, ignore_errors=True)
        if not args.keep:
            with _connect(maintenance) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- children: run with Django, in their own process ------------------------------------------------------------------


def _child_setup(sizes: list[int]) -> dict:
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
    answer["tasks"] = {}
    for size in sizes:
        task = task_create(
            slug=f"bench-{size}", name=f"Bench {size:,}", preset="qa-context", system_prompt="You are the support bot."
        )
        answer["tasks"][str(size)] = {"task": task.pk, "template": task.current_template.pk, "slug": task.slug}
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
        from exports.storage import export_dir

        earlier = Export.objects.filter(task=task, state=JobState.SUCCEEDED, deleted_at__isnull=True)
        for old in earlier:  # their files too: 1,000,000 records take about 1.1 GB a version
            shutil.rmtree(export_dir(old), ignore_errors=True)
        earlier.update(deleted_at=timezone.now(), deletion="deleted")
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
    if not argv or argv[0] not in ("setup", "export"):
        _say("== export")
        run(argv)
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_export", description="a benchmark's child")
    sub = parser.add_subparsers(dest="child")
    setup = sub.add_parser("setup")
    setup.add_argument("sizes", nargs="+", type=int)
    child = sub.add_parser("export")
    child.add_argument("slug")
    child.add_argument("--format", default="openai-chat")
    child.add_argument("--validation-ratio", type=float, default=None)
    child.add_argument("--test-ratio", type=float, default=None)
    child.add_argument("--fresh", action="store_true", help="delete earlier versions: no diff")
    args = parser.parse_args(argv)
    if args.child == "setup":
        print(json.dumps(_child_setup(args.sizes)))
    else:
        print(json.dumps(_child_export(args.slug, args.format, args.validation_ratio, args.test_ratio, args.fresh)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
