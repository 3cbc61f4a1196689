"""The schema limits as people meet them in chromium: the lead's settings form, the annotator's live feedback."""

import json

import pytest
from playwright.sync_api import expect

from tests.browser import login
from tests.factories import ExampleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_lead_sees_why_a_schema_is_refused_on_its_field(page, screenshot, task, lead):
    task.output_format = "json"
    task.save()
    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/settings/")
    schema = {"type": "object", "properties": {"order": {"$ref": "http://169.254.169.254/latest/meta-data/"}}}
    page.get_by_label("JSON Schema").fill(json.dumps(schema, indent=2))
    page.get_by_role("button", name="Save settings").click()
    error = page.get_by_text(
        "The schema refers to “http://169.254.169.254/latest/meta-data/” (at /properties/order/$ref)"
    )
    expect(error).to_be_visible()
    screenshot("refused")
    task.refresh_from_db()
    assert task.json_schema is None


def test_the_annotator_sees_the_number_limit_as_they_type(page, screenshot, task, annotator):
    task.output_format = "json"
    task.json_schema = {"type": "object"}
    task.save()
    ExampleFactory(task=task, instruction="Extract the order as JSON.")
    login(page, annotator.username)
    page.goto(f"/tasks/{task.slug}/annotate/")
    page.get_by_role("button", name="Start annotating").click()  # a GET claims nothing; the button does
    page.locator("#id_completion").fill("1" * 5_000)
    warning = page.locator(".warning[data-code=format]")
    expect(warning).to_contain_text("a number longer than 4,300 digits (the limit) at line 1, column 1")
    screenshot("number")
