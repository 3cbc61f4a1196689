# ruff: noqa: E501
"""Real chromium and the real database: the tool-call builder of the annotator's editor, reused where a final turn is
written by hand elsewhere. A reviewer fixes a call's argument with it in "Edit…" and approves (the revision stored in
their name, the argument diff shown); a new example is written with it (a function picked, its form filled)."""

import json
import re

import pytest
from playwright.sync_api import expect

from annotate import services
from annotate.models import Example, Role
from annotate.tools import completion_parts, completion_text
from reviews.models import Verdict
from tests.browser import login
from tests.conftest import _member
from tests.tool_fixtures import TOOLS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PARIS = completion_text(
    "", [{"id": "call_p1", "name": "get_weather", "arguments": '{"city": "Paris", "unit": "fahrenheit"}'}]
)


@pytest.fixture
def tool_task(db):
    task = services.task_create(slug="concierge", name="Concierge", output_format="tools", tools=TOOLS)
    task.allow_new_examples = True
    task.save(update_fields=["allow_new_examples"])
    return task


def test_reviewer_fixes_a_calls_argument_with_the_builder_and_approves(page, screenshot, tool_task):
    annotator = _member(tool_task, "anna", Role.ANNOTATOR)
    reviewer = _member(tool_task, "rita", Role.REVIEWER)
    example = services.example_create(task=tool_task, fields={"instruction": "Weather in Paris, in celsius?"},
                                      completion=PARIS, status="submitted", author=annotator)  # fmt: skip
    page.set_viewport_size({"width": 1400, "height": 1000})
    login(page, reviewer.username)
    page.goto(f"/tasks/{tool_task.slug}/review/{example.uuid}/")
    page.keyboard.press("e")  # edit: the builder's text box takes the focus, the call's form below it
    panel = page.locator("[data-panel=edit]")
    expect(panel.locator("[data-tool-content]")).to_be_focused()
    call = panel.locator(".tool-call").nth(0)
    expect(call.locator("select[data-function]")).to_have_value("get_weather")
    expect(call.get_by_label("city")).to_have_value("Paris")
    call.get_by_label("unit").select_option(label="celsius")
    expect(call.locator(".tool-status")).to_have_text("Arguments look valid.")
    call.locator("summary", has_text="Raw JSON of the arguments").click()
    expect(call.locator("[data-raw-arguments]")).to_have_value('{"city":"Paris","unit":"celsius"}')
    screenshot("review-edit-builder")
    page.keyboard.press("Control+Enter")  # save the edit and approve
    page.wait_for_url(re.compile(rf"/tasks/{tool_task.slug}/review/$"))

    example.refresh_from_db()
    assert example.status == "approved"
    verdict = Verdict.objects.get(example=example)
    assert verdict.decision == "approve" and verdict.revision.reason == "reviewer_edit"
    assert verdict.revision.author == reviewer
    content, calls = completion_parts(verdict.revision.text)
    assert content == "" and [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("call_p1", "get_weather", {"city": "Paris", "unit": "celsius"})
    ]
    assert example.completion == verdict.revision.text

    page.goto(f"/tasks/{tool_task.slug}/review/{example.uuid}/")
    diff = page.get_by_test_id("tool-diff")
    expect(diff).to_contain_text("get_weather.unit")
    expect(diff.locator("tbody tr")).to_have_count(1)
    expect(diff.locator("tbody tr td").nth(2)).to_have_text('"fahrenheit"')
    expect(diff.locator("tbody tr td").nth(3)).to_have_text('"celsius"')
    expect(page.get_by_test_id("final-turn")).to_contain_text('get_weather(city="Paris", unit="celsius")')
    screenshot("review-after-edit")


def test_a_new_example_is_written_with_the_builder(page, screenshot, tool_task):
    annotator = _member(tool_task, "anna", Role.ANNOTATOR)
    page.set_viewport_size({"width": 1400, "height": 1000})
    login(page, annotator.username)
    page.goto(f"/tasks/{tool_task.slug}/examples/new/")
    page.get_by_label("Instruction").fill("Book Chez Ré for 2 adults at 8pm.")
    page.locator("[data-tool-content]").focus()
    page.keyboard.press("Alt+c")
    call = page.locator(".tool-call").nth(0)
    expect(call.locator("select[data-function]")).to_be_focused()
    call.locator("select[data-function]").select_option("book_table")
    expect(call.locator("fieldset.tool-object legend")).to_have_text("party *")
    expect(call.locator(".tool-status")).to_contain_text("restaurant is required")
    call.get_by_label("restaurant").fill("Chez Ré")
    call.get_by_label("adults").fill("2")
    call.get_by_label("time").fill("20:00")
    expect(call.locator(".tool-status")).to_have_text("Arguments look valid.")
    screenshot("new-example-builder")
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_url(re.compile(r"/edit/$"))
    example = Example.objects.get(instruction="Book Chez Ré for 2 adults at 8pm.")
    assert (example.status, example.template_id) == ("draft", tool_task.current_template.pk)
    content, calls = completion_parts(example.completion)
    assert content == "" and [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("book_table", {"restaurant": "Chez Ré", "party": {"adults": 2}, "time": "20:00"})
    ]
    assert example.warning_codes == ""
