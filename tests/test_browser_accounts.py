"""Real chromium: a lead invites a new annotator from the members page; the newcomer sets a password with the
one-time link, logs in, and uses the account menu (change password, sign out)."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from annotate.models import Membership
from tests.browser import login, logout
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_invites_a_member_who_sets_a_password_and_uses_the_account_menu(
    browser, live_server, page, screenshot, task, lead
):
    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/members/")
    page.get_by_label("Username").fill("nadia")
    page.get_by_label("Role", exact=True).select_option("annotator")
    page.get_by_label("Create the account if there is none").check()
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_test_id("invitation")).to_contain_text("Account nadia created")
    link = page.get_by_role("textbox", name="One-time link").input_value()
    assert re.search(r"/account/set-password/[^/]+/[^/]+/$", link)
    for width in (1400, 1024):
        page.set_viewport_size({"width": width, "height": 800})
        screenshot(f"members-invitation-{width}")
    expect(page.get_by_role("row", name=re.compile("nadia"))).to_contain_text("has not set a password")

    newcomer = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 800})
    other = newcomer.new_page()
    other.goto(link)
    expect(other.get_by_role("heading", name="Welcome to Pairsmith")).to_be_visible()
    other.get_by_label("New password", exact=True).fill("nadia-chooses-7x")
    other.get_by_label("New password confirmation").fill("nadia-chooses-7x")
    other.get_by_role("button", name="Set password").click()
    expect(other.get_by_text("Your password is set, nadia")).to_be_visible()
    login(other, "nadia", "nadia-chooses-7x")
    expect(other.get_by_text(task.name)).to_be_visible()

    other.get_by_test_id("account-menu").locator("summary").click()
    expect(other.get_by_role("menuitem", name="API tokens")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    other.screenshot(path=str(ARTIFACTS / "account-menu-open.png"))
    other.get_by_role("menuitem", name="Change password").click()
    other.get_by_label("Old password").fill("nadia-chooses-7x")
    other.get_by_label("New password", exact=True).fill("nadia-second-8y")
    other.get_by_label("New password confirmation").fill("nadia-second-8y")
    other.get_by_role("button", name="Change password").click()
    expect(other.get_by_text("Your password was changed.")).to_be_visible()
    logout(other)
    login(other, "nadia", "nadia-second-8y")

    other.goto(link)  # used: it opens nothing any more
    expect(other.get_by_role("heading", name="This link no longer works")).to_be_visible()
    newcomer.close()
    nadia = get_user_model().objects.get(username="nadia")
    assert nadia.check_password("nadia-second-8y")
    assert Membership.objects.filter(task=task, user=nadia, role="annotator").exists()
