"""Real chromium: the demo lead logs in, creates a task with a template, and watches the preview follow the edits."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_lead_creates_task_and_sees_the_preview_update(page, screenshot):
    call_command("seed_demo", quiet_accounts=True, stdout=StringIO())
    login(page, "lead", "lead-demo-pairs")
    assert page.get_by_role("link", name=re.compile("Skylark", re.I)).first.is_visible()
    screenshot("home")

    page.get_by_role("link", name="New task").click()
    page.get_by_label("Name").fill("Refund triage")
    page.get_by_label("Slug").fill("refund-triage")
    page.get_by_label("Preset").select_option("qa-context")
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url("**/tasks/refund-triage/template/")
    assert page.get_by_text("Task “Refund triage” created").is_visible()

    prompt = page.locator("[data-testid=rendered-prompt]")
    page.get_by_label("Instruction", exact=True).fill("Can I get a refund after 40 days?")
    page.get_by_label("Context", exact=True).fill("Order #1042, delivered 40 days ago")
    expect(prompt).to_contain_text("refund after 40 days")
    assert "### Context:\nOrder #1042, delivered 40 days ago" in prompt.text_content()

    page.get_by_label("Prompt format").fill("Q: {instruction}\n[[Facts: {context}\n]]A:")
    expect(prompt).to_have_text(re.compile(r"^Q: Can I"))
    assert (
        prompt.text_content() == "Q: Can I get a refund after 40 days?\nFacts: Order #1042, delivered 40 days ago\nA:"
    )
    assert '"prompt": "Q: Can I get a refund' in page.locator("[data-format=prompt-completion]").text_content()

    page.get_by_label("Prompt format").fill("Q: {question}")
    page.get_by_text("cannot be rendered yet").wait_for()
    screenshot("template-error")

    page.get_by_label("Prompt format").fill("Q: {instruction}\nA:")
    page.keyboard.press("Control+s")
    page.get_by_text("Template version 1 saved.").wait_for()
    screenshot("template")
    from annotate.models import Task

    assert Task.objects.get(slug="refund-triage").current_template.prompt_format == "Q: {instruction}\nA:"
