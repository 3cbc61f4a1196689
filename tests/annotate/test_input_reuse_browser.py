"""The task setting "The completion" (issue 14) as a lead meets it in chromium: a labelled choice with its help."""

import pytest
from playwright.sync_api import expect

from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_lead_says_the_completion_transforms_the_input(page, screenshot, task, lead):
    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/settings/")
    choice = page.get_by_label("The completion")
    expect(choice).to_have_value("")  # automatic until the lead says otherwise
    expect(page.get_by_text("What the answer-leak check expects.")).to_be_visible()
    choice.select_option(label="Transforms the input (rewrites, fills in, completes, anonymises, extracts to JSON)")
    choice.scroll_into_view_if_needed()
    screenshot("input-reuse")
    page.get_by_role("button", name="Save settings").click()
    expect(page).not_to_have_url(f"/tasks/{task.slug}/settings/")
    task.refresh_from_db()
    assert task.input_reuse == "transforms"
