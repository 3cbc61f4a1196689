"""`GET /api/tasks/<slug>/exports/latest/<file>?format=F`: the newest succeeded version of that format."""

from hashlib import sha256

import pytest

from exports import services

from .conftest import approve, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(task, lead, django_capture_on_commit_callbacks):
    approve(task, 4)
    made = {}
    for export_format in ("alpaca", "openai-chat", "prompt-completion"):  # v1, v2, v3
        with django_capture_on_commit_callbacks(execute=True):
            made[export_format] = build(task, export_format=export_format, user=lead)
    return made


def _get(client, task, token, query=""):
    return client.get(
        f"/api/tasks/{task.slug}/exports/latest/train.jsonl{query}", headers={"Authorization": f"Bearer {token}"}
    )


def test_format_picks_the_newest_version_of_that_format(client, task, reviewer, versions):
    token = services.token_create(user=reviewer, name="pipeline")[1]
    alpaca = _get(client, task, token, "?format=alpaca")
    assert alpaca.status_code == 200
    body = b"".join(alpaca.streaming_content)
    assert sha256(body).hexdigest() == versions["alpaca"].files["train.jsonl"]["sha256"]
    assert b'"instruction"' in body  # an Alpaca record, though v3 is newer
    newest = _get(client, task, token)
    assert (
        sha256(b"".join(newest.streaming_content)).hexdigest()
        == (versions["prompt-completion"].files["train.jsonl"]["sha256"])
    )


def test_an_unknown_format_is_a_400_naming_it_and_a_format_with_no_version_a_404(client, task, reviewer, versions):
    token = services.token_create(user=reviewer, name="pipeline")[1]
    bad = _get(client, task, token, "?format=<llama>")
    assert bad.status_code == 400
    assert b"Unknown format '<llama>' in ?format=; use one of " in bad.content
    assert bad["Content-Type"].startswith("text/plain")
    versions["alpaca"].delete()
    assert _get(client, task, token, "?format=alpaca").status_code == 404


def test_without_a_token_the_format_changes_nothing(client, task, versions):
    assert client.get(f"/api/tasks/{task.slug}/exports/latest/train.jsonl?format=alpaca").status_code == 401


def test_a_bad_format_without_a_token_is_still_a_401(client, task):
    assert client.get(f"/api/tasks/{task.slug}/exports/latest/train.jsonl?format=nope").status_code == 401
