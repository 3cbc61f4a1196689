"""Real chromium: the API page renders the OpenAPI schema (Swagger UI from static files, under the content security
policy), and a pipeline's token works from it."""

import pytest
from playwright.sync_api import expect

from exports import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_page_shows_every_endpoint_and_calls_one_with_a_token(page, screenshot, task, lead):
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    token = services.token_create(user=lead, name="pipeline")[1]
    page.goto("/api/docs")
    expect(page.get_by_text("Pairsmith API", exact=False).first).to_be_visible()
    for summary in ("The tasks this token reaches", "Start the next export version", "Upload a file and import it"):
        expect(page.get_by_text(summary, exact=False).first).to_be_visible()
    screenshot("docs")
    page.get_by_role("button", name="Authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").first.fill(token)
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()
    page.get_by_text("The tasks this token reaches").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    live = page.locator(".live-responses-table")
    expect(live.locator("tr.response td.response-col_status").first).to_contain_text("200")
    expect(live).to_contain_text('"slug": "support"')
    screenshot("tried")
    assert violations == []
