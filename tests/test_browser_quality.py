"""Real chromium: the leak warning as the annotator types, a blocking check refusing the submit, the lead's plots."""

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from annotate.models import Example
from tests.browser import login
from tests.conftest import ARTIFACTS
from tests.factories import ExampleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
INPUT = "The ring on my Skylark T3 stays amber for ten minutes after every firmware update and then it turns blue"


@override_settings(CELERY_TASK_ALWAYS_EAGER=True)
def test_leak_warning_blocking_check_and_dashboard(
    page, browser, live_server, screenshot, task, annotator, lead, inline_celery
):
    task.blocking_checks = ["leak"]
    task.coverage_targets = {"negative": 0.2}
    task.save()
    example = ExampleFactory(task=task, instruction="Summarise the customer's problem.", input=INPUT)
    ExampleFactory.create_batch(3, task=task, status="approved", completion="Hold the button for ten seconds.")

    login(page, annotator.username)
    page.goto(f"/tasks/{task.slug}/annotate/")
    page.get_by_role("button", name="Start annotating").click()
    page.locator("#id_completion").fill(INPUT)
    warning = page.locator(".warning[data-code=leak]")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Blocks submit")
    screenshot("leak")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("alert").filter(has_text="Fix these before submitting")).to_be_visible()
    example.refresh_from_db()
    assert example.status != "submitted"

    page.locator("#id_completion").fill("The ring stays amber for a long time after updates.")
    expect(page.locator(".warning[data-code=leak]")).to_have_count(0)
    page.keyboard.press("Control+Enter")  # fixed: the same submit now goes through
    expect(page.get_by_text("Submitted for review.")).to_be_visible()
    example.refresh_from_db()
    assert example.status == "submitted"
    assert example.completion == "The ring stays amber for a long time after updates."

    lead_page = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900}).new_page()
    login(lead_page, lead.username)
    lead_page.goto(f"/tasks/{task.slug}/dashboard/")
    lead_page.get_by_role("button", name="Check the whole task now").click()
    expect(lead_page.locator("[data-plot=coverage] svg")).to_be_visible()
    expect(lead_page.locator("[data-plot=status] svg rect.bar")).to_have_count(6)
    expect(lead_page.get_by_text("Negative examples are 0% of")).to_be_visible()
    lead_page.screenshot(
        path=str(ARTIFACTS / "test_leak_warning_blocking_check_and_dashboard-dashboard.png"), full_page=True
    )
    assert Example.objects.filter(task=task).count() == 4
