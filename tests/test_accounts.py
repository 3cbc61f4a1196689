"""Accounts: login throttling per account and per address (django-axes), production cookies, password rules for
add_member, and what the API tokens keep (see also tests/exports/test_views.py for the token API itself)."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains

from annotate.models import AuditEvent, Membership, Role
from exports import services as export_services
from exports.models import ApiToken

pytestmark = pytest.mark.django_db
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "pw-for-tests-1"  # UserFactory's
LIMIT = 10


def log_in(client, username: str, password: str, address: str = "10.0.0.1", **headers):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, username: str, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        response = log_in(client, username, "wrong password", address)
        assert response.status_code in (200, 429)


# --- throttling -------------------------------------------------------------------------------------------------


def test_the_right_password_logs_in(client, lead):
    response = log_in(client, "leo", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_an_account_locks_after_the_limit_even_from_different_addresses(client, lead):
    for i in range(LIMIT - 1):
        assert log_in(client, "leo", "wrong", f"10.0.1.{i}").status_code == 200  # the form says: did not match
    locked = log_in(client, "leo", "wrong", "10.0.1.200")
    assert locked.status_code == 429
    refused = log_in(client, "leo", PASSWORD, "10.0.2.1")  # the right password, from a fresh address
    assert refused.status_code == 429 and not logged_in(client)
    assertContains(refused, "try again in 15 minutes", status_code=429)


def test_an_address_locks_after_the_limit_even_for_different_accounts(client, lead, annotator):
    for i in range(LIMIT):
        log_in(client, f"guess{i}", "wrong", "10.9.9.9")
    refused = log_in(client, "leo", PASSWORD, "10.9.9.9")
    assert refused.status_code == 429 and not logged_in(client)
    elsewhere = log_in(client, "anna", PASSWORD, "10.9.9.10")  # other addresses are not affected
    assert elsewhere.status_code == 302 and logged_in(client)


def test_the_lock_lifts_after_the_cool_off(client, lead, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    fail(client, "leo", LIMIT)
    time_machine.shift(timedelta(minutes=14))
    assert log_in(client, "leo", PASSWORD, "10.0.3.1").status_code == 429
    time_machine.shift(timedelta(minutes=2))
    assert log_in(client, "leo", PASSWORD, "10.0.3.1").status_code == 302 and logged_in(client)


def test_attempts_during_a_lockout_do_not_extend_it(client, lead, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    fail(client, "leo", LIMIT)
    time_machine.shift(timedelta(minutes=10))
    fail(client, "leo", 3)
    time_machine.shift(timedelta(minutes=6))  # 16 minutes after the last counted failure
    assert log_in(client, "leo", PASSWORD).status_code == 302


def test_a_successful_login_clears_the_users_failures(client, lead):
    fail(client, "leo", LIMIT - 1)
    assert log_in(client, "leo", PASSWORD).status_code == 302
    client.logout()
    fail(client, "leo", LIMIT - 1)
    assert log_in(client, "leo", PASSWORD).status_code == 302


def test_logging_in_to_ones_own_account_does_not_clear_failures_against_another(client, lead, annotator):
    """Axes' stock reset would delete every failure from the address, letting an insider guess without limit."""
    fail(client, "leo", LIMIT - 1, address="10.5.5.5")
    assert log_in(client, "anna", PASSWORD, "10.5.5.5").status_code == 302  # the attacker's own account
    client.logout()
    assert log_in(client, "leo", "wrong", "10.6.6.6").status_code == 429  # leo's tenth failure
    assert log_in(client, "leo", PASSWORD, "10.7.7.7").status_code == 429


def test_lockout_page_is_readable_and_names_no_user_text(client, db):
    fail(client, "<b>bold</b>", LIMIT - 1)
    response = log_in(client, "<b>bold</b>", "wrong")
    assert response.status_code == 429
    assertContains(response, "Too many failed logins", status_code=429)
    assert "<b>bold</b>" not in response.content.decode()


@override_settings(PROXY_CLIENT_IP_HEADER="X-Forwarded-For")
def test_behind_a_proxy_the_address_is_the_one_the_proxy_appended(client, lead):
    for i in range(LIMIT):  # one real client; whatever it puts on the left of the header does not matter
        log_in(client, f"guess{i}", "wrong", "172.16.0.1", HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 203.0.113.7")
    assert log_in(client, "leo", PASSWORD, "172.16.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    other = log_in(client, "leo", PASSWORD, "172.16.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")  # same proxy
    assert other.status_code == 302


@override_settings(PROXY_CLIENT_IP_HEADER="X-Real-IP")  # what docker-compose.yml passes (tests/test_compose.py)
def test_behind_the_compose_proxy_two_clients_are_counted_apart(client, lead, annotator):
    proxy = "172.18.0.5"  # every request comes from the proxy's container
    for i in range(LIMIT):
        log_in(client, f"guess{i}", "wrong", proxy, HTTP_X_REAL_IP="203.0.113.7")
    assert log_in(client, "anna", PASSWORD, proxy, HTTP_X_REAL_IP="203.0.113.7").status_code == 429
    other = log_in(client, "leo", PASSWORD, proxy, HTTP_X_REAL_IP="198.51.100.4")  # another client, same proxy
    assert other.status_code == 302 and logged_in(client)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_without_the_setting_the_forwarded_header_is_ignored(client, lead):
    for i in range(LIMIT):  # a client cannot dodge the per-address count by sending its own header
        log_in(client, f"guess{i}", "wrong", "10.8.8.8", HTTP_X_FORWARDED_FOR=f"1.2.3.{i}")
    assert log_in(client, "leo", PASSWORD, "10.8.8.8", HTTP_X_FORWARDED_FOR="9.9.9.9").status_code == 429


def test_force_login_keeps_working_with_the_axes_backend_first(client, lead, settings):
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesBackend"
    client.force_login(lead)
    assert client.get(reverse("home")).status_code == 200


# --- production settings, in a fresh interpreter ------------------------------------------------------------------

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.test import RequestFactory

SessionStore.save = lambda self, must_create=False: setattr(self, "_session_key", "k" * 32)  # no database here

def view(request):
    get_token(request)
    request.session["seen"] = True
    return HttpResponse("ok")

request = RequestFactory().get("/", secure=True)
middleware = SessionMiddleware(CsrfViewMiddleware(view))
response = middleware(request)
cookies = {
    name: {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"])}
    for name, morsel in response.cookies.items()
}
print(json.dumps({"cookies": cookies, "proxy_header": settings.PROXY_CLIENT_IP_HEADER}))
"""


def probe(**env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DEBUG", "SECRET_KEY"}}
    environment.update(DJANGO_SETTINGS_MODULE="pairsmith.settings", **env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "s" * 64, "ALLOWED_HOSTS": "x"}


def test_production_cookies_are_secure_and_http_only():
    cookies = probe(**PRODUCTION)["cookies"]
    assert cookies["sessionid"] == {"secure": True, "httponly": True}
    assert cookies["csrftoken"] == {"secure": True, "httponly": True}  # no script reads it: htmx gets hx-headers


def test_the_proxy_header_is_trusted_only_in_production():
    assert probe(**PRODUCTION, PROXY_CLIENT_IP_HEADER="X-Real-IP")["proxy_header"] == "X-Real-IP"
    assert probe(DEBUG="1", PROXY_CLIENT_IP_HEADER="X-Real-IP")["proxy_header"] == ""


# --- passwords of add_member --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("123", "too short"),
        ("12345678901", "entirely numeric"),
        ("password123", "too common"),
        ("newbie-x", "too similar"),
    ],
)
def test_add_member_refuses_a_weak_password_and_creates_nobody(task, password, message):
    with pytest.raises(CommandError, match=message):
        call_command("add_member", task.slug, "newbie", role="annotator", password=password)
    assert not Membership.objects.filter(user__username="newbie").exists()
    assert not AuditEvent.objects.exists()
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="newbie").exists()


def test_add_member_refuses_a_weak_new_password_for_an_existing_user(task, annotator):
    with pytest.raises(CommandError, match="too short"):
        call_command("add_member", task.slug, "anna", role="reviewer", password="123")
    annotator.refresh_from_db()
    assert annotator.check_password(PASSWORD)
    assert not Membership.objects.filter(user=annotator, role=Role.REVIEWER).exists()


def test_add_member_accepts_a_strong_password(task):
    call_command("add_member", task.slug, "newbie", role="annotator", password="long-and-unusual-phrase-42")
    from django.contrib.auth import authenticate
    from django.test import RequestFactory

    request = RequestFactory().post("/login/")
    assert authenticate(request, username="newbie", password="long-and-unusual-phrase-42") is not None


# --- API tokens (the token API's access rules are in tests/exports/test_views.py) ----------------------------------


def test_the_database_holds_no_raw_token_anywhere(client, reviewer):
    """The token row keeps a digest (tests/exports/test_views.py); the audit events keep the prefix only."""
    client.force_login(reviewer)
    raw = client.post(reverse("exports:tokens"), {"name": "nightly"}).context["new_token"]
    row = ApiToken.objects.get()
    client.post(reverse("exports:token_revoke", args=[row.pk]))
    stored = str(list(ApiToken.objects.values())) + str(list(AuditEvent.objects.values()))
    assert raw not in stored and raw[len(row.prefix) :] not in stored
    assert row.prefix in stored


def test_a_token_of_a_non_member_gets_404_for_versioned_files_too(client, task, outsider):
    from tests.exports.conftest import approve, build

    approve(task, 3)
    build(task)
    token = export_services.token_create(user=outsider, name="x")[1]
    for path in ("v1/train.jsonl", "latest/train.jsonl", "v1/manifest.json"):
        response = client.get(f"/api/tasks/{task.slug}/exports/{path}", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404, path
        assert b"No such task" in response.content


def test_a_staff_token_still_needs_to_be_active(client, task, staff):
    from tests.exports.conftest import approve, build

    approve(task, 3)
    build(task)
    row, token = export_services.token_create(user=staff, name="x")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/tasks/{task.slug}/exports/v1/train.jsonl", headers=headers).status_code == 200
    export_services.token_revoke(token=row, actor=staff)
    assert client.get(f"/api/tasks/{task.slug}/exports/v1/train.jsonl", headers=headers).status_code == 401
