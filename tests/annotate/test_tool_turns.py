# ruff: noqa: E501
"""A tools task's earlier turns, editable where the task allows it (as a chat task's): an assistant turn's calls and a
tool result's content read back into the stored messages; the last user turn stays the instruction; a call with no
result or a result answering no call is warned about as typed and refused at submit, naming the turn; bad input is
named and nothing changes."""

import json

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services
from annotate.models import Example, Role
from annotate.tools import completion_text
from tests.conftest import _member
from tests.tool_fixtures import RECORDS, TOOLS

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
# The multi-step trajectory of the fixtures, as stored: its prior turns and its final turn.
PRIOR = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Text Ana the weather in Lyon and Nice."},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_e1", "name": "get_weather", "arguments": '{"city": "Lyon"}'},
                                                        {"id": "call_e2", "name": "get_weather", "arguments": '{"city": "Nice"}'}]},
    {"role": "tool", "content": "18 °C, sunny", "tool_call_id": "call_e1"},
    {"role": "tool", "content": "21 °C", "tool_call_id": "call_e2"},
]  # fmt: skip
FINAL = completion_text("Sent.", [])
assert RECORDS[5]["messages"][3]["tool_calls"][0]["id"] == "call_e1"


@pytest.fixture
def setup(db):
    task = services.task_create(slug="concierge", name="Concierge", output_format="tools", tools=TOOLS)
    task.chat_turns_editable = True
    task.save(update_fields=["chat_turns_editable"])
    annotator = _member(task, "anna", Role.ANNOTATOR)
    example = services.example_create(task=task, fields={"instruction": PRIOR[2]["content"]}, messages=PRIOR,
                                      completion=FINAL, status="draft", author=annotator)  # fmt: skip
    return task, annotator, example


def posted(turns: list[dict], **extra) -> dict:
    """The editor's form for these turns (as _tool_turns_edit.html names its fields)."""
    data = {"completion": FINAL, "kind": "happy", "version": 1, **extra}
    for i, turn in enumerate(turns):
        data[f"turn-{i}-role"] = turn["role"]
        if turn["role"] == "assistant":
            data[f"turn-{i}-turn"] = completion_text(turn["content"], turn.get("tool_calls", []))
        else:
            data[f"turn-{i}-content"] = turn["content"]
        if turn["role"] == "tool":
            data[f"turn-{i}-tool_call_id"] = turn["tool_call_id"]
    return data


def edited(changes: dict) -> list[dict]:
    turns = json.loads(json.dumps(PRIOR))
    for (i, key), value in changes.items():
        turns[i][key] = value
    return turns


def test_the_editor_offers_each_earlier_turn_in_its_form(client, setup):
    task, annotator, example = setup
    client.force_login(annotator)
    page = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assertContains(page, 'id="prior-turns"')
    assertContains(page, 'name="turn-3-turn"')  # the calls, in a builder
    assertContains(page, 'data-for="turn-3-turn"')
    assertContains(page, 'name="turn-4-tool_call_id" value="call_e1"')
    assertContains(page, 'name="turn-5-content"')
    assertNotContains(page, "answers call_e1")  # the read-only list of turns is not shown twice


def test_edited_arguments_and_a_result_are_stored_and_the_instruction_follows_the_last_user_turn(client, setup):
    task, annotator, example = setup
    client.force_login(annotator)
    calls = [dict(PRIOR[3]["tool_calls"][0], arguments='{"city":"Lyon","unit":"celsius"}'), PRIOR[3]["tool_calls"][1]]
    turns = edited(
        {
            (3, "tool_calls"): calls,
            (4, "content"): "19 °C",
            (2, "content"): "Text Ana the weather in Lyon and Nice, in °C.",
        }
    )
    response = client.post(reverse("annotate:save", args=[task.slug, example.uuid]), posted(turns), headers=HTMX)
    assertContains(response, "Saved")
    example.refresh_from_db()
    expected = edited({(3, "tool_calls"): [dict(calls[0], arguments='{"city": "Lyon", "unit": "celsius"}'), calls[1]]})
    expected[4]["content"] = "19 °C"
    expected[2]["content"] = "Text Ana the weather in Lyon and Nice, in °C."
    assert example.messages == expected
    assert example.instruction == "Text Ana the weather in Lyon and Nice, in °C."
    assert example.warning_codes == ""


def test_a_result_answering_no_call_is_warned_as_typed_and_refused_at_submit(client, setup):
    task, annotator, example = setup
    client.force_login(annotator)
    turns = edited({(3, "tool_calls"): PRIOR[3]["tool_calls"][:1]})  # call_e2 removed: its result answers nothing
    feedback = client.post(reverse("annotate:feedback", args=[task.slug, example.uuid]), posted(turns), headers=HTMX)
    assertContains(feedback, "the tool result &quot;call_e2&quot; answers no call")
    response = client.post(reverse("annotate:submit", args=[task.slug, example.uuid]), posted(turns))
    assertContains(
        response,
        "The earlier turns are out of order: turn 6 tool_call_id: the tool result &quot;call_e2&quot; answers no call",
    )
    example.refresh_from_db()
    assert (example.status, example.messages) == ("draft", PRIOR)


def test_a_call_with_no_result_is_refused_at_submit_naming_it(client, setup):
    task, annotator, example = setup
    client.force_login(annotator)
    turns = edited({(5, "tool_call_id"): "call_zz"})
    response = client.post(reverse("annotate:submit", args=[task.slug, example.uuid]), posted(turns))
    assertContains(response, "get_weather (&quot;call_e2&quot;) has no tool result")
    assert Example.objects.get(pk=example.pk).status == "draft"
    response = client.post(reverse("annotate:submit", args=[task.slug, example.uuid]), posted(PRIOR), follow=True)
    assertContains(response, "Submitted for review.")
    assert Example.objects.get(pk=example.pk).status == "submitted"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("turn-3-turn", '{"content": "", "tool_calls": [{"name": "get_weather"', "Turn 4 (assistant): not valid JSON"),
        (
            "turn-3-turn",
            '{"content": "", "tool_calls": [{"name": "get_weather", "arguments": "{}"}]}',
            "Turn 4 (assistant), call 1: a call before the final turn needs an id",
        ),
        ("turn-4-tool_call_id", "", "Turn 5 (tool): name the call this result answers"),
        ("turn-0-content", "  ", "Turn 1 (user) is empty."),
        ("turn-0-role", "robot", "Turn 1: unknown role &#x27;robot&#x27;"),
    ],
)
def test_a_bad_turn_is_named_and_nothing_is_saved(client, setup, field, value, named):
    task, annotator, example = setup
    client.force_login(annotator)
    data = {**posted(PRIOR), field: value}
    response = client.post(reverse("annotate:save", args=[task.slug, example.uuid]), data, headers=HTMX)
    assertContains(response, named)
    example.refresh_from_db()
    assert (example.version, example.messages) == (1, PRIOR)


def test_turns_are_not_editable_where_the_task_does_not_allow_it(client, setup):
    task, annotator, example = setup
    task.chat_turns_editable = False
    task.save(update_fields=["chat_turns_editable"])
    client.force_login(annotator)
    page = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assertNotContains(page, 'name="turn-3-turn"')
    assertContains(page, "answers call_e1")
    data = posted(edited({(4, "content"): "changed"}))
    client.post(reverse("annotate:save", args=[task.slug, example.uuid]), data, headers=HTMX)
    assert Example.objects.get(pk=example.pk).messages == PRIOR
