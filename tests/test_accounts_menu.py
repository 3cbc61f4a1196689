"""The account menu (change password, API tokens, sign out) and accounts made by leads with a one-time link."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import AuditEvent, Membership
from tests.browser import FACTORY_PASSWORD
from tests.factories import UserFactory

User = get_user_model()

pytestmark = pytest.mark.django_db

LINK = re.compile(r'value="https?://[^/"]+(/account/set-password/[^"]+)"')


def _invite(client, task, lead, username="nadia", role="annotator", create="on"):
    client.force_login(lead)
    data = {"action": "add", "username": username, "role": role}
    if create:
        data["create"] = create
    return client.post(reverse("annotate:members", args=[task.slug]), data)


def test_every_page_has_the_account_menu_with_its_three_entries(client, annotator):
    client.force_login(annotator)
    response = client.get(reverse("home"))
    assertContains(response, 'data-testid="account-menu"')
    assertContains(response, f'href="{reverse("annotate:password_change")}"')
    assertContains(response, f'href="{reverse("exports:tokens")}"')
    assertContains(response, f'action="{reverse("logout")}"')
    assertContains(response, "Sign out")


def test_a_user_changes_their_password_and_stays_logged_in(client, annotator):
    client.force_login(annotator)
    url = reverse("annotate:password_change")
    assert client.get(url)["Cache-Control"].startswith("max-age=0")
    wrong = client.post(
        url, {"old_password": "nope", "new_password1": "a-new-long-pass-9", "new_password2": "a-new-long-pass-9"}
    )
    assertContains(wrong, "Your old password was entered incorrectly")
    annotator.refresh_from_db()
    assert annotator.check_password(FACTORY_PASSWORD)
    response = client.post(
        url,
        {"old_password": FACTORY_PASSWORD, "new_password1": "a-new-long-pass-9", "new_password2": "a-new-long-pass-9"},
    )
    assert response.status_code == 302
    annotator.refresh_from_db()
    assert annotator.check_password("a-new-long-pass-9")
    assert client.get(reverse("home")).status_code == 200  # the session survived the change


def test_a_lead_creates_an_account_and_the_link_sets_its_password_once(client, task, lead):
    response = _invite(client, task, lead)
    assert response.status_code == 200
    assertContains(response, "Account nadia created")
    path = LINK.search(response.content.decode()).group(1)
    nadia = User.objects.get(username="nadia")
    assert not nadia.has_usable_password()
    assert Membership.objects.filter(task=task, user=nadia, role="annotator").exists()
    event = AuditEvent.objects.get(action="account_created")
    assert (event.actor, event.task, event.target) == (lead, task, "nadia")

    client.logout()
    page = client.get(path, follow=True)  # Django swaps the token into the session and redirects
    assertContains(page, "Choose the password of your account")
    form_url = page.redirect_chain[-1][0]
    done = client.post(
        form_url, {"new_password1": "nadia-chooses-7x", "new_password2": "nadia-chooses-7x"}, follow=True
    )
    assertContains(done, "Your password is set, nadia")
    nadia.refresh_from_db()
    assert nadia.check_password("nadia-chooses-7x")
    logged_in = client.post(reverse("login"), {"username": "nadia", "password": "nadia-chooses-7x"})
    assert logged_in.status_code == 302 and logged_in.url == "/"
    client.logout()
    again = client.get(path, follow=True)
    assertContains(again, "This link no longer works")


def test_adding_an_existing_account_never_touches_it_and_shows_no_link(client, task, lead):
    nina = UserFactory(username="nina")
    response = _invite(client, task, lead, username="nina", role="reviewer")
    assert response.status_code == 302
    nina.refresh_from_db()
    assert nina.check_password(FACTORY_PASSWORD)
    assert Membership.objects.filter(task=task, user=nina, role="reviewer").exists()
    assert not AuditEvent.objects.filter(action="account_created").exists()


def test_an_unknown_name_without_create_is_refused_and_nothing_is_made(client, task, lead):
    response = _invite(client, task, lead, username="ghost", create="")
    assertContains(response, "No account is called “ghost”")
    assert not User.objects.filter(username="ghost").exists()


def test_a_username_with_bad_characters_is_refused_by_name(client, task, lead):
    response = _invite(client, task, lead, username="bad name!")
    assertContains(response, "Enter a valid username")
    assert not User.objects.filter(username="bad name!").exists()
    assert not Membership.objects.filter(task=task, user__username="bad name!").exists()


def test_a_new_link_only_for_a_member_who_never_set_a_password(client, task, lead, annotator):
    _invite(client, task, lead)
    nadia = User.objects.get(username="nadia")
    url = reverse("annotate:members", args=[task.slug])
    members = client.get(url)
    assertContains(members, "has not set a password")
    renewed = client.post(url, {"action": "renew", "user_id": nadia.pk})
    assertContains(renewed, "A new link for nadia")
    assert LINK.search(renewed.content.decode())
    assert AuditEvent.objects.filter(action="invitation_renewed", target="nadia").exists()
    # an account in use (annotator has a password) never gets a link: a lead must not take it over
    refused = client.post(url, {"action": "renew", "user_id": annotator.pk}, follow=True)
    assertContains(refused, "has already set a password")
    assertNotContains(refused, "/account/set-password/")
    assert client.post(url, {"action": "renew", "user_id": "x"}, follow=True).status_code == 200


def test_only_the_tasks_lead_invites(client, task, annotator, reviewer, outsider):
    url = reverse("annotate:members", args=[task.slug])
    for user, status in ((annotator, 403), (reviewer, 403), (outsider, 404)):
        client.force_login(user)
        assert (
            client.post(url, {"action": "add", "username": "mallory", "role": "lead", "create": "on"}).status_code
            == status
        )
    assert not User.objects.filter(username="mallory").exists()


def test_a_link_for_another_user_id_or_a_forged_token_sets_nothing(client, task, lead):
    _invite(client, task, lead)
    nadia = User.objects.get(username="nadia")
    forged = reverse("annotate:set_password", args=["MQ", "abc-123"])
    page = client.get(forged, follow=True)
    assertContains(page, "This link no longer works")
    nadia.refresh_from_db()
    assert not nadia.has_usable_password()
