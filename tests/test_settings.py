"""Start-up from the environment: bad configuration stops with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# The browser fixture allows sync ORM calls under Playwright's event loop; a production start must not inherit that.
NOT_INHERITED = {"DATABASE_URL", "DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def clean_env(**env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    environment.update(env)
    return environment


def start(**env) -> subprocess.CompletedProcess:
    environment = clean_env(**env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_malformed_database_url_stops_start_up_naming_the_variable():
    result = start(DATABASE_URL="postgres://user@host:notaport/db")
    assert result.returncode != 0
    assert "DATABASE_URL is malformed" in result.stderr


def test_unknown_database_scheme_stops_start_up():
    result = start(DATABASE_URL="mongodb://localhost/x")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_production_refuses_the_development_secret_key():
    result = start(DEBUG="0", ALLOWED_HOSTS="example.org")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_bad_boolean_is_named():
    result = start(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_production_settings_pass_check_deploy():
    environment = clean_env(
        DEBUG="0", SECRET_KEY="x" * 20 + "-a-long-random-production-secret-key-for-tests", ALLOWED_HOSTS="example.org"
    )
    environment["DATABASE_URL"] = os.environ.get("DATABASE_URL", "")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_postgresql_connections_run_without_jit():
    code = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS']['options'])"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=clean_env(DATABASE_URL="postgres://u@127.0.0.1:5432/x", DJANGO_SETTINGS_MODULE="pairsmith.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-c jit=off"
