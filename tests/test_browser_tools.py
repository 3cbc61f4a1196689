# ruff: noqa: E501
"""Real chromium and the real database: the lead reads a tool set from a file; an annotator writes a final turn of
tool calls in the form generated from the functions' JSON Schemas (enums as choices, nested objects, required fields
marked, raw JSON checked as typed, parallel calls, Alt+C); the server's checks answer inline; a reviewer sees the
calls as function calls and flags one with a tool reason."""

import json
import re

import pytest
from playwright.sync_api import expect

from annotate import services
from annotate.models import Example, Role
from annotate.tools import completion_parts
from reviews.models import Verdict
from tests.browser import login, logout
from tests.conftest import _member
from tests.tool_fixtures import TOOLS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tool_task(db):
    task = services.task_create(slug="concierge", name="Concierge", output_format="tools", tools=TOOLS)
    services.example_create(
        task=task, fields={"instruction": "Weather in Zürich, in celsius please?"}, external_id="w1"
    )
    return task


def test_annotator_writes_tool_calls_and_reviewer_flags_wrong_arguments(page, screenshot, tool_task, tmp_path):
    lead = _member(tool_task, "lena", Role.LEAD)
    annotator = _member(tool_task, "anna", Role.ANNOTATOR)
    reviewer = _member(tool_task, "rita", Role.REVIEWER)
    page.set_viewport_size({"width": 1400, "height": 1000})

    login(page, lead.username)
    page.goto(f"/tasks/{tool_task.slug}/tools/")
    expect(page.get_by_test_id("tool-list")).to_contain_text("book_table")
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(TOOLS[:2]))
    page.locator("[data-tools-file]").set_input_files(str(path))
    expect(page.locator("#tools-json-status")).to_contain_text("Valid JSON: 2 functions (get_weather, book_table)")
    page.locator("[data-tools-json]").fill('[{"type": "function"')
    expect(page.locator("#tools-json-status")).to_contain_text("Not valid JSON yet")
    screenshot("tool-set")
    page.goto(f"/tasks/{tool_task.slug}/tools/")  # nothing saved: still the four functions
    expect(page.get_by_test_id("tool-list")).to_contain_text("send_message")
    logout(page)

    login(page, annotator.username)
    page.goto(f"/tasks/{tool_task.slug}/annotate/")
    page.get_by_role("button", name="Start annotating").click()
    page.wait_for_url(re.compile(r"/edit/$"))
    expect(page.get_by_test_id("tool-list")).to_contain_text("get_weather")
    page.locator("[data-tool-content]").focus()
    page.keyboard.press("Alt+c")  # a first call: get_weather, the first function
    first = page.locator(".tool-call").nth(0)
    expect(first.locator("select[data-function]")).to_be_focused()
    expect(first.locator(".tool-status")).to_contain_text("city is required")
    first.get_by_label("city").fill("Zürich")
    first.get_by_label("unit").select_option(label="celsius")
    expect(first.locator(".tool-status")).to_have_text("Arguments look valid.")

    page.get_by_role("button", name="Add a tool call").click()  # a parallel call
    second = page.locator(".tool-call").nth(1)
    second.locator("select[data-function]").select_option("book_table")
    expect(second.locator("fieldset.tool-object legend")).to_have_text("party *")  # nested, required
    expect(second.locator(".tool-status")).to_contain_text("restaurant is required")
    second.locator("summary", has_text="Raw JSON of the arguments").click()
    second.locator("[data-raw-arguments]").fill('{"restaurant": "Chez Ré", "party": ')
    expect(second.locator(".tool-status")).to_have_text("The arguments are not a JSON object.")
    # The server's check answers inline too: the arguments as they stand are not valid.
    expect(page.locator("#feedback")).to_contain_text("book_table: the arguments are not valid JSON", timeout=8000)
    screenshot("editor-calls")
    second.get_by_role("button", name="Remove this call").click()
    expect(page.locator(".tool-call")).to_have_count(1)
    expect(page.locator("#save-status")).to_contain_text("Saved", timeout=8000)
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Submitted for review.")).to_be_visible()
    example = Example.objects.get(external_id="w1")
    assert example.status == "submitted"
    content, calls = completion_parts(example.completion)
    assert content == ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Zürich", "unit": "celsius"})
    ]
    logout(page)

    login(page, reviewer.username)
    page.goto(f"/tasks/{tool_task.slug}/review/{example.uuid}/")
    expect(page.get_by_test_id("final-turn")).to_contain_text('get_weather(city="Zürich", unit="celsius")')
    page.keyboard.press("f")
    page.keyboard.press("2")  # wrong arguments: the tool reasons come first in a tools task
    expect(page.locator("input[name=reasons][value=wrong_arguments]")).to_be_checked()
    page.keyboard.press("c")
    page.keyboard.type("They asked for celsius; fine. But add the country: Zürich, CH.")
    screenshot("review-tools")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(rf"/tasks/{tool_task.slug}/review/$"))
    verdict = Verdict.objects.get(example=example)
    assert (verdict.decision, verdict.reasons) == ("flag", ["wrong_arguments"])
