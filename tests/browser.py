"""Helpers of the real-browser tests (the fixtures are in conftest.py)."""

import re

FACTORY_PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory's


def login(page, username: str, password: str = FACTORY_PASSWORD) -> None:
    """Log in through the login form, as a person does, and wait for the home page."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))


def logout(page) -> None:
    """Sign out through the account menu, as a person does."""
    page.get_by_test_id("account-menu").locator("summary").click()
    page.get_by_role("menuitem", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/|/$"))
