"""Real chromium: in a task that asks for the reasoning, the annotator types it in its own box, the autosave stores
it with the completion, and the reviewer sees it above the answer."""

import re

import pytest
from playwright.sync_api import expect

from annotate.models import Example, Revision
from tests.browser import login, logout
from tests.factories import ExampleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reasoning_is_typed_autosaved_and_shown_to_the_reviewer(page, screenshot, task, annotator, reviewer):
    task.asks_reasoning = True
    task.save()
    ExampleFactory(task=task, instruction="Where is my parcel? It shipped on Monday.")
    login(page, annotator.username)
    page.goto(f"/tasks/{task.slug}/annotate/")
    page.locator("[data-start]").click()
    page.wait_for_url(re.compile(r"/edit/"))
    reasoning = page.locator("#id_reasoning")
    expect(reasoning).to_be_visible()
    reasoning.fill("Shipped Monday; the carrier takes 4 days.")
    page.locator("#id_completion").fill("It arrives on Friday.")
    expect(page.locator("#save-status")).to_contain_text("version", timeout=15_000)
    page.wait_for_function("document.querySelector('#save-status').textContent.includes('Saved') || "
                           "document.querySelector('#save-status').textContent.includes('version 3')")  # fmt: skip
    example = Example.objects.get()
    assert example.reasoning == "Shipped Monday; the carrier takes 4 days."
    assert Revision.objects.filter(example=example).latest("id").reasoning == example.reasoning
    screenshot("editor")
    page.reload()
    expect(page.locator("#id_reasoning")).to_have_value("Shipped Monday; the carrier takes 4 days.")
    page.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_load_state()
    example.refresh_from_db()
    assert example.status == "submitted"
    logout(page)
    login(page, reviewer.username)
    page.goto(f"/tasks/{task.slug}/review/{example.uuid}/")
    expect(page.get_by_test_id("reasoning")).to_have_text("Shipped Monday; the carrier takes 4 days.")
    screenshot("review")
