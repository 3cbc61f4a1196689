"""Exports to an S3-compatible store against exports to a local folder, in the same run.

`make bench BENCH_ARGS=s3` (N = 1,000,000, or BENCH_S3_N). Needs DATABASE_URL at PostgreSQL: like `export`, it makes its
own database, loads N/10 and N approved examples of about 1 KB, then runs each export in a child process as a worker
would: once with local folders, once with STORAGE_URL at moto's S3 server (`moto_server`, a process of its own on a
free loopback port: files go over HTTP, multipart above 16 MB). Figures: records/s of each, their ratio, and the
child's peak resident memory at N/10 and at N (flat: it does not grow with N, whatever the file's size).
"""

import os
import subprocess
import sys
import tempfile
import time
from contextlib import suppress

import psycopg

from benchmarks.bench_export import ROOT, _bench_url, _child_env, _connect, _load, _run_child, _say
from benchmarks.common import peak_rss

DEFAULT_N = int(os.environ.get("BENCH_S3_N", 1_000_000))
BUCKET = "pairsmith-bench"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_store() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            return server, endpoint
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("moto_server did not start") from None
            time.sleep(0.2)


def run(n: int = DEFAULT_N) -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        _say("   skipped: set DATABASE_URL to a PostgreSQL server (the benchmark makes its own database there)")
        return
    url, name, maintenance = _bench_url(database_url)
    name_s3 = name.replace("_bench_export", "_bench_s3")
    url = url.replace(name, name_s3)
    _say(f"   {os.cpu_count()} CPUs, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    with _connect(maintenance) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name_s3}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name_s3}"')
    export_root = tempfile.mkdtemp(prefix="pairsmith-bench-s3-")
    local_env = _child_env(url, export_root)
    server, endpoint = _start_store()
    s3_env = local_env | {
        "STORAGE_URL": f"s3://{BUCKET}/bench",
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SCRATCH_DIR": os.path.join(export_root, "scratch"),
    }
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=local_env,
                       check=True)  # fmt: skip
        setup, _ = _run_child(["setup"], local_env)
        sizes = [("small", max(1, n // 10)), ("large", n)]
        with _connect(url) as conn:
            with suppress(psycopg.Error):
                conn.execute("SET session_replication_role = replica")
            for label, count in sizes:
                _load(conn, task_id=setup[label]["task"], template_id=setup[label]["template"],
                      defaults=setup["defaults"], n=count, start=0 if label == "small" else 10 * n)  # fmt: skip
            conn.execute("SET session_replication_role = DEFAULT")
            conn.execute("VACUUM ANALYZE annotate_example")
        rss: dict[str, int] = {}
        for label, count in sizes:
            slug = setup[label]["slug"]
            local, local_rss = _run_child(["export", slug, "--fresh"], local_env)
            remote, remote_rss = _run_child(["export", slug, "--fresh"], s3_env)
            rss[label] = remote_rss
            local_rate = local["records"] / local["seconds"]
            remote_rate = remote["records"] / remote["seconds"]
            _say(
                f"   {count:>9,} records ({remote['bytes'] / 1e6:,.0f} MB of JSONL): local folder "
                f"{local_rate:,.0f} rec/s ({local['seconds']:.1f} s, peak RSS {local_rss / 2**20:,.0f} MB) · S3 store "
                f"{remote_rate:,.0f} rec/s ({remote['seconds']:.1f} s, peak RSS {remote_rss / 2**20:,.0f} MB) · "
                f"S3/local {remote_rate / local_rate:.2f}"
                f" · identical train.jsonl: {remote['sha256'] == local['sha256']}"
            )
        growth = rss["large"] / rss["small"]
        verdict = "flat" if growth < 1.2 else "GROWS"
        _say(f"   peak RSS with the S3 store, N/10 -> N: x{growth:.2f} ({verdict})")
        _say(f"   (this process: peak RSS {peak_rss() / 2**20:,.0f} MB)")
    finally:
        import shutil

        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(export_root, ignore_errors=True)
        with _connect(maintenance) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name_s3}" WITH (FORCE)')
