"""Drafts for N new examples (default 10,000) against a fake OpenAI-compatible endpoint answering in 200 ms.

The fake (tests/fake_llm.py) runs in this process on a loopback port; the draft run runs in a child process, as a
worker would (its peak memory is the run's), with the endpoint and the concurrency limit in its environment. Prints
examples/s against the ceiling the limit allows (limit / latency), the most requests the fake saw at once, and the
run's peak memory. Works on SQLite and PostgreSQL (the figures of record are PostgreSQL's). The examples are made
again on every run (task `bench-drafts`).
"""

import argparse
import os
import subprocess
import sys
import time

from .common import ROOT, bulk_load_examples, setup_django

SLUG = "bench-drafts"
KEY = "sk-bench"

CHILD = """
import os, sys, time
from benchmarks.common import peak_rss
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairsmith.settings")
import django; django.setup()
from models_loop.models import ModelRun
from models_loop.runs import model_run
run_id = int(sys.argv[1])
started = time.perf_counter()
model_run(run_id=run_id)
elapsed = time.perf_counter() - started
run = ModelRun.objects.get(pk=run_id)
print(f"{run.state} {elapsed:.2f} {peak_rss() / 2**20:.0f} {run.counts.get('drafted', 0)}")
print(run.error)
"""


def prepare(n: int):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotate import services
    from annotate.models import Example, Task
    from models_loop import services as loop_services

    task = Task.objects.filter(slug=SLUG).first()
    if task is not None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM annotate_revision WHERE example_id IN "
                           "(SELECT id FROM annotate_example WHERE task_id = %s)", [task.pk])  # fmt: skip
            cursor.execute("DELETE FROM annotate_example WHERE task_id = %s", [task.pk])
        task.model_runs.all().delete()
        task.delete()
    lead, _ = get_user_model().objects.get_or_create(username="bench-lead")
    task = services.task_create(slug=SLUG, name="Benchmark: drafts", preset="qa-context", created_by=lead)
    if connection.vendor == "postgresql":
        bulk_load_examples(task=task, n=n)
    else:
        template = task.current_template
        Example.objects.bulk_create(
            (
                Example(task=task, template=template, instruction=f"Question {i}: where is parcel {i}?")
                for i in range(n)
            ),
            batch_size=2000,
        )
    loop_services.model_settings_save(task=task, user=lead, values={"drafts_enabled": True})
    return task


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench drafts")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.2, help="Seconds the fake endpoint takes per answer.")
    parser.add_argument("--concurrency", type=int, default=8, help="LLM_CONCURRENCY of the run (default 8).")
    args = parser.parse_args(argv or [])
    from tests.fake_llm import FakeLLM

    with FakeLLM(key=KEY, delay=args.latency) as fake:
        env = {"LLM_BASE_URL": fake.url, "LLM_API_KEY": KEY, "LLM_MODEL": "bench-model",
               "LLM_CONCURRENCY": str(args.concurrency), "LLM_TIMEOUT": "30"}  # fmt: skip
        os.environ.update(env)  # read by the settings of this process and of the child
        setup_django()
        from django.db import connection

        from models_loop.models import ModelRun

        task = prepare(args.n)
        run_row = ModelRun.objects.create(task=task, kind="draft", model="bench-model")
        print(f"   {args.n:,} new examples on {connection.vendor}; the fake answers in {args.latency * 1000:.0f} ms")
        connection.close()  # the child writes; SQLite wants no other open transaction
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(run_row.pk)], cwd=ROOT, capture_output=True, text=True, check=False,
            env={**os.environ, **env},
        )  # fmt: skip
        wall = time.perf_counter() - started
        lines = result.stdout.strip().splitlines()
        if result.returncode or not lines or not lines[0].startswith("succeeded"):
            print(f"   the run failed: {result.stdout[-800:]} {result.stderr[-2000:]}")
            return
        _, seconds, peak_mb, drafted = lines[0].split()
        rate = int(drafted) / float(seconds)
        ceiling = args.concurrency / args.latency
        print(
            f"   {int(drafted):,} drafts in {float(seconds):.1f} s: {rate:,.1f} examples/s with LLM_CONCURRENCY="
            f"{args.concurrency} ({100 * rate / ceiling:.0f}% of the ceiling {ceiling:,.0f}/s that the limit and the "
            f"latency allow); {len(fake.requests):,} requests, at most {fake.max_in_flight} at once"
        )
        print(f"   the run's peak memory: {peak_mb} MB (child process, {wall:.1f} s with its start)")
