# ruff: noqa: E501
"""Real chromium and the real database: a tools task whose earlier turns are editable (as a chat task's). With the
keyboard, the annotator changes an earlier call's argument in the tool-call builder, rewrites a tool result, adds a
call to that earlier turn (Alt+C: the result it lacks is warned about inline) and removes it, then saves and submits;
the stored messages are checked."""

import json
import re

import pytest
from playwright.sync_api import expect

from annotate import services
from annotate.models import Example, Role
from annotate.tools import completion_text
from tests.browser import login
from tests.conftest import _member
from tests.tool_fixtures import TOOLS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRIOR = [
    {"role": "user", "content": "What's the weather in Lyon?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_l1", "name": "get_weather", "arguments": '{"city": "Lyon"}'}]},
    {"role": "tool", "content": "18 °C", "tool_call_id": "call_l1"},
]  # fmt: skip


def test_annotator_edits_an_earlier_call_and_its_result_with_the_keyboard(page, screenshot, db):
    task = services.task_create(slug="concierge", name="Concierge", output_format="tools", tools=TOOLS)
    task.chat_turns_editable = True
    task.save(update_fields=["chat_turns_editable"])
    annotator = _member(task, "anna", Role.ANNOTATOR)
    example = services.example_create(task=task, fields={"instruction": PRIOR[0]["content"]}, messages=PRIOR,
                                      completion=completion_text("It is 18 °C in Lyon.", []), status="draft", author=annotator)  # fmt: skip
    page.set_viewport_size({"width": 1400, "height": 1100})
    login(page, annotator.username)
    page.goto(f"/tasks/{task.slug}/examples/{example.uuid}/edit/")
    turn = page.locator("[data-tool-builder][data-for='turn-1-turn']")
    expect(turn.locator(".tool-call legend")).to_have_text("Call 1 · call_l1")
    turn.locator("[data-tool-content]").focus()
    page.keyboard.press("Tab")  # the function of the call
    expect(turn.locator("select[data-function]")).to_be_focused()
    page.keyboard.press("Tab")  # its first argument: city
    expect(turn.get_by_label("city")).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("Lyon, FR")
    page.keyboard.press("Tab")  # unit: an enum, chosen with the arrow keys
    expect(turn.get_by_label("unit")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(turn.get_by_label("unit")).to_have_value("0")  # celsius
    expect(turn.locator(".tool-status")).to_have_text("Arguments look valid.")

    result = page.get_by_label("Result of turn 3")
    result.focus()
    page.keyboard.press("Control+a")
    page.keyboard.type('{"temp": 18, "unit": "C"}')

    turn.locator("[data-tool-content]").focus()
    page.keyboard.press("Alt+c")  # a second call in the earlier turn: nothing answers it yet
    expect(turn.locator(".tool-call")).to_have_count(2)
    expect(turn.locator(".tool-call").nth(1).locator("select[data-function]")).to_be_focused()
    expect(page.locator("#feedback")).to_contain_text("has no tool result", timeout=8000)
    screenshot("earlier-turns")
    turn.locator(".tool-call").nth(1).locator("[data-remove-call]").focus()
    page.keyboard.press("Enter")
    expect(turn.locator(".tool-call")).to_have_count(1)
    expect(page.locator("#feedback")).not_to_contain_text("has no tool result", timeout=8000)
    page.keyboard.press("Control+s")
    expect(page.locator("#save-status")).to_contain_text("Saved", timeout=8000)

    stored = Example.objects.get(pk=example.pk)
    assert stored.messages == [
        PRIOR[0],
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_l1", "name": "get_weather", "arguments": json.dumps({"city": "Lyon, FR", "unit": "celsius"})}]},
        {"role": "tool", "content": '{"temp": 18, "unit": "C"}', "tool_call_id": "call_l1"},
    ]  # fmt: skip
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(rf"/tasks/{task.slug}/"))
    expect(page.get_by_text("Submitted for review.")).to_be_visible()
    assert Example.objects.get(pk=example.pk).status == "submitted"
