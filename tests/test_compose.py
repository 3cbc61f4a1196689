"""docker-compose.yml, read as compose reads it (anchors and `<<` merges resolved): what production gets by default."""

import re
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
# Compose's ${VAR}, ${VAR-default} and ${VAR:-default}: the variable's name and its default.
VARIABLE = re.compile(r"^\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}$")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def default_of(value: str) -> str:
    """What compose substitutes for `value` when the variable is not set in the shell."""
    match = VARIABLE.match(str(value))
    return (match.group("default") or "") if match else str(value)


def test_web_passes_the_proxys_client_address_header_with_a_default(services):
    """Without it every client has the proxy's address: ten failed logins from anyone lock every user out."""
    environment = services["web"]["environment"]
    assert "PROXY_CLIENT_IP_HEADER" in environment
    value = environment["PROXY_CLIENT_IP_HEADER"]
    assert VARIABLE.match(value).group("name") == "PROXY_CLIENT_IP_HEADER"  # an operator can change it
    assert default_of(value) == "X-Real-IP"  # the header the README tells the proxy to overwrite


def test_web_is_reachable_from_this_host_only(services):
    """Clients go through the proxy, which overwrites the header; none can reach gunicorn with a forged one."""
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert all("ports" not in service for name, service in services.items() if name != "web")


def test_web_runs_in_production_mode(services):
    environment = services["web"]["environment"]
    assert environment["DEBUG"] == "0"  # the client-address header is read only with DEBUG off


def test_the_s3_profile_adds_minio_and_its_bucket_without_building_or_publishing(services):
    minio, bucket = services["minio"], services["minio-bucket"]
    assert minio["profiles"] == bucket["profiles"] == ["s3"]
    assert "build" not in minio and "build" not in bucket and "ports" not in minio
    assert bucket["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert bucket["command"] == ["mb", "--ignore-existing", "local/pairsmith"]
    for name in ("web", "worker", "beat"):  # every node reads the same store settings
        environment = services[name]["environment"]
        assert {"STORAGE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_S3_ENDPOINT_URL"} <= set(environment)
    assert all("profiles" not in services[name] for name in ("web", "worker", "beat", "postgres", "redis"))
