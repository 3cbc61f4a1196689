"""Real chromium: the live preview names the limit a template breaks, and saving refuses it under the field."""

import pytest
from playwright.sync_api import expect

from annotate.models import PromptTemplate
from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_preview_and_the_save_name_the_placeholder_limit(page, screenshot, task, lead):
    before = PromptTemplate.objects.get(task=task).prompt_format
    login(page, "leo")
    page.goto(f"/tasks/{task.slug}/template/")
    page.get_by_label("Prompt format").fill("### Input:\n" + "{input}\n" * 25)
    preview = page.locator("#preview")
    expect(preview).to_contain_text("The template cannot be rendered yet:")
    expect(preview).to_contain_text(
        "Prompt format: The prompt format has 25 placeholders, over the limit of 20 (MAX_TEMPLATE_PLACEHOLDERS)"
    )
    expect(preview.locator("[data-format]")).to_have_count(0)
    screenshot("preview")
    page.get_by_role("button", name="Save template").click()
    field_error = page.locator(".field.has-error").filter(has=page.get_by_label("Prompt format"))
    expect(field_error.locator(".error")).to_have_text(
        "The prompt format has 25 placeholders, over the limit of 20 (MAX_TEMPLATE_PLACEHOLDERS): each one copies a "
        "whole field into every record."
    )
    screenshot("saved")
    assert PromptTemplate.objects.get(task=task).prompt_format == before
