# ruff: noqa: E501
"""Tool-calling examples on PostgreSQL: import and export of N tool records (default 200,000), in records/s and as a
ratio to COPY of the same rows.

`make bench BENCH_ARGS=tools`, or `python -m benchmarks tools --n 50000`. Needs DATABASE_URL pointing at
PostgreSQL. It writes a JSONL file of OpenAI chat records with `tools` (the demo's four functions), a quarter each of
single calls, parallel calls, multi-step trajectories (a call, its result, the answer) and answers without a call;
creates a tools task; imports the file as approved with `manage.py import_examples` in a child process (every call
checked against its function's JSON Schema, the conversation's order checked, then COPY). The import's baseline is
PostgreSQL alone loading the very rows the import wrote (examples, revisions, transitions) with COPY FROM in one
transaction, constraints checked at once (rolled back). Then each tool format (openai-chat, messages, sharegpt) is
exported by the export job in a child process, against COPY (SELECT <the export's columns>) TO STDOUT of the same
rows. The task, its rows and its exports are deleted at the end.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

from .common import ROOT, require_postgres, run_watched, setup_django

DEFAULT_N = int(os.environ.get("BENCH_TOOLS_N", 200_000))
FORMATS = ("openai-chat", "messages", "sharegpt")
ROOMS = ("Living room", "Bedroom", "Office", "Nursery", "Kitchen", "Garage")


def _call(call_id: str, name: str, **arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def record(i: int, tools: list) -> dict:
    """One of four shapes, by i % 4, with distinct texts."""
    room = ROOMS[i % len(ROOMS)]
    order = f"SK-{i % 1_000_000:06d}"
    user = {"role": "user", "content": f"Request {i}: about {room.lower()} and order {order}, please help."}
    shape = i % 4
    if shape == 0:
        final = {"role": "assistant", "tool_calls": [_call(f"c{i}", "get_order_status", order_id=order)]}
        messages = [user, final]
    elif shape == 1:
        final = {"role": "assistant", "tool_calls": [
            _call(f"c{i}a", "set_temperature", room=room, celsius=10 + i % 20, mode="eco"),
            _call(f"c{i}b", "get_thermostat", room=ROOMS[(i + 1) % len(ROOMS)])]}  # fmt: skip
        messages = [user, final]
    elif shape == 2:
        messages = [
            user,
            {"role": "assistant", "tool_calls": [_call(f"c{i}", "get_thermostat", room=room)]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps({"online": False, "seen": f"{i % 9} days"})},
            {"role": "assistant", "tool_calls": [
                _call(f"c{i}t", "book_technician", room=room, visit={"date": "2026-12-08", "window": "morning"})]},
            {"role": "tool", "tool_call_id": f"c{i}t", "content": f'{{"booking": "TV-{i}"}}'},
            {"role": "assistant", "content": f"Booked a technician for the {room.lower()} (TV-{i})."},
        ]  # fmt: skip
    else:
        messages = [user, {"role": "assistant", "content": f"I can't do that for order {order} without a human."}]
    return {"messages": messages, "tools": tools, "parallel_tool_calls": True, "id": f"bench-{i}"}


def write_jsonl(path: Path, n: int, tools: list) -> int:
    with open(path, "wb") as f:
        for i in range(n):
            f.write(orjson.dumps(record(i, tools)) + b"\n")
    return path.stat().st_size


def import_copy_baseline(task_id: int) -> float:
    """Seconds PostgreSQL takes to load the rows the import wrote, from their own COPY text, in one transaction with
    the constraints checked at once; rolled back, so the rows stay as they were."""
    from django.db import connection, transaction

    examples = f"SELECT id FROM annotate_example WHERE task_id = {int(task_id)}"
    tables = {
        "annotate_example": f"SELECT * FROM annotate_example WHERE task_id = {int(task_id)}",
        "annotate_revision": f"SELECT * FROM annotate_revision WHERE example_id IN ({examples})",
        "annotate_transition": f"SELECT * FROM annotate_transition WHERE example_id IN ({examples})",
    }
    data = {}
    with connection.cursor() as cursor:
        for table, select in tables.items():
            with cursor.cursor.copy(f"COPY ({select}) TO STDOUT") as copy:
                data[table] = b"".join(bytes(chunk) for chunk in copy)

    class Rollback(Exception):
        pass

    seconds = 0.0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in ("annotate_transition", "annotate_revision"):
                cursor.execute(f"DELETE FROM {table} WHERE example_id IN ({examples})")
            cursor.execute(f"DELETE FROM annotate_example WHERE task_id = {int(task_id)}")
            started = time.perf_counter()
            for table in tables:
                with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    copy.write(data[table])
            seconds = time.perf_counter() - started
            raise Rollback
    except Rollback:
        pass
    return seconds


def drop(slug: str) -> None:
    from exports.models import Export

    from .bench_import import drop_task

    Export.objects.filter(task__slug=slug).delete()
    drop_task(slug)


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks tools")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="tool records (default %(default)s)")
    args = parser.parse_args(argv or [])
    setup_django()
    if not require_postgres():
        return
    import psycopg
    from django.conf import settings

    from annotate import services
    from annotate.demo_tools import TOOLS
    from annotate.models import Task

    from .bench_export import _copy_rate

    n = args.n
    slug = f"bench-tools-{os.getpid()}"
    drop(slug)
    with tempfile.TemporaryDirectory(prefix="pairsmith-bench-tools-") as folder:
        path = Path(folder) / "tools.jsonl"
        started = time.perf_counter()
        size = write_jsonl(path, n, TOOLS)
        print(f"   wrote {n:,} tool records, {size / 1e6:,.0f} MB ({size / n:,.0f} B/record) in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        services.task_create(slug=slug, name="Tools benchmark", output_format="tools", tools=TOOLS)
        try:
            env = {**os.environ, "REDIS_URL": "", "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "pairsmith.settings",
                   "EXPORT_ROOT": str(Path(folder) / "exports")}  # fmt: skip
            command = [sys.executable, "manage.py", "import_examples", slug, str(path), "--status", "approved"]
            code, output, seconds, peak = run_watched(command, cwd=ROOT, env=env)
            if code:
                raise SystemExit(f"import_examples exited with {code}:\n{output}")
            task = Task.objects.get(slug=slug)
            assert task.examples.count() == n, output
            baseline = import_copy_baseline(task.pk)
            rate = n / seconds
            print(f"   import: {seconds:6.1f} s · {rate:>8,.0f} records/s · peak RSS {peak / 1e6:,.0f} MB · "
                  f"COPY of the same rows {baseline:5.1f} s ({n / baseline:,.0f} rows/s) · import/COPY "
                  f"{rate / (n / baseline):.2f}")  # fmt: skip
            db = settings.DATABASES["default"]
            url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            with psycopg.connect(url, password=db.get("PASSWORD") or None, autocommit=True) as conn:
                copy_rate, copy_bytes = _copy_rate(conn, task_id=task.pk)
            for export_format in FORMATS:
                code, output, wall, peak = run_watched(
                    [sys.executable, "-m", "benchmarks.bench_export", "export", slug, "--format", export_format,
                     "--validation-ratio", "0", "--fresh"], cwd=ROOT, env=env)  # fmt: skip
                if code:
                    raise SystemExit(f"export {export_format} exited with {code}:\n{output}")
                result = json.loads(output.strip().splitlines()[-1])
                assert result["records"] == n, result
                rate = n / result["seconds"]
                print(f"   export {export_format:<12} {result['seconds']:6.1f} s · {rate:>8,.0f} records/s · "
                      f"{result['bytes'] / 1e6:,.0f} MB · peak RSS {peak / 1e6:,.0f} MB · COPY {copy_rate:,.0f} rows/s "
                      f"({copy_bytes / 1e6:,.0f} MB) · export/COPY {rate / copy_rate:.2f}")  # fmt: skip
        finally:
            drop(slug)


if __name__ == "__main__":
    run(sys.argv[1:])
