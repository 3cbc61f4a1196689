"""Exports of preference pairs on PostgreSQL: records/s of the whole export job against a plain COPY of the same rows,
and the job's peak memory at two sizes.

`make bench BENCH_ARGS=preferences` (N = 1,000,000, or BENCH_PREFERENCES_N), or `python -m benchmarks.bench_preferences
--n 100000`. Needs DATABASE_URL pointing at PostgreSQL: it creates its own database `<name>_bench_pref` next to it
(dropped at the end unless --keep), loads N/10 and N reviewed pairs (prompt of about 500 characters, each side about
300) with COPY, then runs each export in a child process as a worker runs it (render, check, split by pair UUID,
hash, write, fsync, rename) and reads the child's peak resident memory (VmHWM). The baseline is COPY (SELECT ...)
TO STDOUT of the columns the export reads, in id order. trl-preference at both sizes, then openai-preference at N.
"""

import argparse
import hashlib
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

from benchmarks.bench_export import _child_env, _filler
from benchmarks.common import peak_rss, run_watched

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_N = int(os.environ.get("BENCH_PREFERENCES_N", 1_000_000))
COLUMNS_SQL = "id, uuid, template_id, instruction, context, input, chosen, rejected, source, messages, prompt_hash"
LOAD_BATCH = 5_000


def _say(text: str) -> None:
    print(text, flush=True)


def _urls(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'pairsmith'}_bench_pref"
    return urlunsplit(parts._replace(path=f"/{name}")), name, urlunsplit(parts._replace(path="/postgres"))


def _child(args: list[str], env: dict) -> tuple[dict, int]:
    command = [sys.executable, "-m", "benchmarks.bench_preferences", *args]
    code, output, _, peak = run_watched(command, cwd=ROOT, env=env)
    if code != 0:
        raise SystemExit(f"benchmark child {args[0]} failed with exit code {code}")
    return json.loads(output.strip().splitlines()[-1]), peak


def _load(conn, *, task_id: int, template_id: int, defaults: dict, n: int, seed: int) -> None:
    now = "2026-01-01 00:00:00+00"
    fixed = defaults | {
        "task_id": str(task_id), "template_id": str(template_id), "input": "", "messages": "[]", "source": "import",
        "reviewed": "t", "created_at": now, "updated_at": now, "external_id": "",
    }  # fmt: skip
    varying = ("uuid", "instruction", "context", "chosen", "rejected", "prompt_hash")
    names = [name for name in fixed if name not in varying] + list(varying)
    context = _filler(1, 420)
    answers = [_filler(i + 3, 300) for i in range(89)]
    rng = random.Random(seed)
    sql = f"COPY preferences_preferencepair ({', '.join(names)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(sql) as copy:
        batch = []
        for i in range(n):
            values = {
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "instruction": f"Customer {i} asks: why does my thermostat blink amber after the update?",
                "context": context,
                "chosen": f"Answer {i}: hold the reset button for ten seconds. " + answers[i % 89],
                "rejected": f"Answer {i}: no idea, try again later. " + answers[(i + 7) % 89],
                # A real-looking hash: the export's contamination check reads its first 16 hex digits, and
                # zero-padded counters there made every train pair an exact twin of every held-out one.
                "prompt_hash": hashlib.sha256(b"prompt %d" % i).hexdigest(),
            }
            batch.append("\t".join(values[name] if name in values else fixed[name] for name in names))
            if len(batch) == LOAD_BATCH:
                copy.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            copy.write("\n".join(batch) + "\n")


def _copy_rate(conn, *, task_id: int) -> float:
    sql = (
        f"COPY (SELECT {COLUMNS_SQL} FROM preferences_preferencepair WHERE task_id = {int(task_id)} AND reviewed "
        "ORDER BY id) TO STDOUT"
    )
    rows = 0
    started = time.perf_counter()
    with conn.cursor() as cursor, cursor.copy(sql) as copy:
        for data in copy:
            rows += bytes(data).count(b"\n")
    return rows / (time.perf_counter() - started)


def run(argv: list[str] | None = None) -> None:
    """`python -m benchmarks preferences [--n N] [--keep]`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks preferences")
    parser.add_argument("--n", type=int, default=DEFAULT_N)
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args(argv or [])
    _run(options.n, options.keep)


def _run(n: int, keep: bool) -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        _say("   skipped: set DATABASE_URL to a PostgreSQL server (the benchmark makes its own database there)")
        return
    url, name, maintenance = _urls(database_url)
    _say(f"   {os.cpu_count()} CPUs, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    with psycopg.connect(maintenance, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    export_root = tempfile.mkdtemp(prefix="pairsmith-bench-pref-")
    env = _child_env(url, export_root)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        setup, _ = _child(["setup"], env)
        sizes = [("small", max(1, n // 10)), ("large", n)]
        measured = {}
        with psycopg.connect(url, autocommit=True) as conn:
            with suppress(psycopg.Error):
                conn.execute("SET session_replication_role = replica")
            for label, count in sizes:
                started = time.perf_counter()
                _load(conn, task_id=setup[label]["task"], template_id=setup[label]["template"],
                      defaults=setup["defaults"], n=count, seed=count)  # fmt: skip
                _say(f"   loaded {count:>9,} reviewed pairs with COPY in {time.perf_counter() - started:5.1f} s")
            conn.execute("SET session_replication_role = DEFAULT")
            conn.execute("VACUUM ANALYZE preferences_preferencepair")
            runs = [(label, count, "trl-preference") for label, count in sizes] + [("large", n, "openai-preference")]
            for label, count, export_format in runs:
                task_id = setup[label]["task"]
                _copy_rate(conn, task_id=task_id)  # warm the cache: both sides read from memory
                result, rss = _child(["export", setup[label]["slug"], export_format], env)
                copy_rate = _copy_rate(conn, task_id=task_id)
                rate = result["records"] / result["seconds"]
                measured.setdefault(label, {"rss": rss, "rate": rate, "ratio": rate / copy_rate})
                _say(
                    f"   {count:>9,} pairs as {export_format}: {rate:,.0f} rec/s ({result['seconds']:.1f} s, "
                    f"{result['bytes'] / result['records']:,.0f} B/record) · COPY {copy_rate:,.0f} rows/s · "
                    f"export/COPY {rate / copy_rate:.2f} · {result['records'] / result['cpu']:,.0f} records per CPU "
                    f"second · worker peak RSS {rss / 2**20:,.0f} MB"
                )
        small, large = measured["small"], measured["large"]
        growth = large["rss"] / small["rss"]
        _say(f"   peak RSS {small['rss'] / 2**20:,.0f} MB at {sizes[0][1]:,} -> {large['rss'] / 2**20:,.0f} MB at "
             f"{n:,} pairs (x{growth:.2f}): {'flat' if growth < 1.2 else 'GROWS'}")  # fmt: skip
        _say(f"   (this process: peak RSS {peak_rss() / 2**20:,.0f} MB)")
    finally:
        shutil.rmtree(export_root, ignore_errors=True)
        if not keep:
            with psycopg.connect(maintenance, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _child_setup() -> dict:
    import django

    django.setup()
    from django.db.models import JSONField

    from annotate.services import task_create
    from preferences.models import PreferencePair

    answer: dict = {"defaults": {}}
    for field in PreferencePair._meta.concrete_fields:
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
        task = task_create(slug=f"bench-{label}", name=f"Bench {label}", preset="qa-context",
                           system_prompt="You are the support bot.")  # fmt: skip
        answer[label] = {"task": task.pk, "template": task.current_template.pk, "slug": task.slug}
    return answer


def _child_export(slug: str, export_format: str) -> dict:
    import django

    django.setup()
    from annotate.models import Task
    from exports.services import export_request
    from pairsmith.jobs import JobState

    task = Task.objects.get(slug=slug)
    started, cpu = time.perf_counter(), time.process_time()
    export = export_request(task=task, export_format=export_format, validation_ratio=0.1, test_ratio=0.05)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    export.refresh_from_db()
    if export.state != JobState.SUCCEEDED:
        raise SystemExit(f"export {export.state}: {export.error}")
    size = sum(meta["size"] for name, meta in export.files.items() if name.endswith(".jsonl"))
    return {"records": export.counts["total"], "seconds": seconds, "cpu": cpu, "bytes": size}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_preferences")
    parser.add_argument("command", nargs="?", default="run")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--n", type=int, default=DEFAULT_N)
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args(argv)
    if options.command == "setup":
        print(json.dumps(_child_setup()))
    elif options.command == "export":
        print(json.dumps(_child_export(*options.args)))
    else:
        _run(options.n, options.keep)


if __name__ == "__main__":
    main(sys.argv[1:])
