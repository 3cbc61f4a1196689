# ruff: noqa: E501
"""Tools tasks: the tool set given to create_task, and OpenAI chat records with tools imported all or nothing."""

import copy
import io
import json

import orjson
import pytest
from django.core.management import CommandError, call_command

from annotate.models import Example, OutputFormat, Task
from annotate.tools import completion_parts
from tests.tool_fixtures import RECORDS, TOOLS, call, jsonl

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def tools_file(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(TOOLS), encoding="utf-8")
    return path


@pytest.fixture
def tool_task(tools_file):
    run("create_task", "concierge", "--name", "Concierge", "--output-format", "tools", "--tools", str(tools_file))
    return Task.objects.get(slug="concierge")


def test_create_task_with_tools_stores_them_on_the_first_template(tools_file):
    out = run("create_task", "concierge", "--name", "Concierge", "--output-format", "tools", "--tools", str(tools_file))
    assert "4 tools (get_weather, book_table, list_orders, send_message)" in out
    task = Task.objects.get(slug="concierge")
    assert task.output_format == OutputFormat.TOOLS
    assert json.loads(task.current_template.tools) == TOOLS
    assert task.current_template.parallel_tool_calls is True


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t[1]["function"].update(name="bad name!"), 'tools[1] (function "bad name!"): function.name must'),
        (lambda t: t[2]["function"].update(name="get_weather"), 'function.name "get_weather" is defined again'),
        (
            lambda t: t[0]["function"]["parameters"]["properties"]["city"].update(pattern="(?=x)"),
            'tools[0] (function "get_weather"): function.parameters: The pattern',
        ),
        (
            lambda t: t[3]["function"]["parameters"].update(type="array"),
            'tools[3] (function "send_message"): function.parameters must describe an object',
        ),
        (lambda t: t[0].update(type="tool"), 'tools[0] (function "get_weather"): "type" must be "function"'),
        (
            lambda t: t[1]["function"]["parameters"]["properties"].update(x={"$ref": "https://example.com/s"}),
            "nothing is fetched",
        ),
    ],
)
def test_create_task_refuses_a_bad_tool_set_naming_function_and_field_and_creates_nothing(tmp_path, change, expected):
    tools = copy.deepcopy(TOOLS)
    change(tools)
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(tools))
    with pytest.raises(CommandError) as exc:
        run("create_task", "concierge", "--name", "C", "--output-format", "tools", "--tools", str(path))
    assert expected in str(exc.value)
    assert not Task.objects.exists()


def test_create_task_refuses_tools_for_another_format_and_a_broken_file(tools_file, tmp_path):
    with pytest.raises(CommandError, match="--output-format tools"):
        run("create_task", "c", "--name", "C", "--output-format", "chat", "--tools", str(tools_file))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"type": "function",')
    with pytest.raises(CommandError, match="not valid JSON"):
        run("create_task", "c", "--name", "C", "--output-format", "tools", "--tools", str(broken))
    assert not Task.objects.exists()


def test_tricky_tool_records_import_with_turns_and_final_calls(tool_task, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(RECORDS))
    out = run("import_examples", "concierge", str(path), "--status", "approved")
    assert "6" in out
    examples = list(Example.objects.filter(task=tool_task).order_by("id"))
    assert len(examples) == 6
    parallel = examples[1]
    assert parallel.instruction == "Weather in Zürich and 東京, please."
    assert parallel.messages == [{"role": "user", "content": "Weather in Zürich and 東京, please."}]
    content, calls = completion_parts(parallel.completion)
    assert content == ""
    assert calls == [
        {"id": "call_b1", "name": "get_weather", "arguments": '{"city": "Zürich"}'},
        {"id": "call_b2", "name": "get_weather", "arguments": '{"city": "東京", "unit": "fahrenheit"}'},
    ]
    trajectory = examples[5]
    assert trajectory.instruction == "Text Ana the weather in Lyon and Nice."
    assert [m["role"] for m in trajectory.messages] == ["user", "assistant", "user", "assistant", "tool", "tool",
                                                        "assistant", "tool"]  # fmt: skip
    assert trajectory.messages[3]["tool_calls"][1] == {
        "id": "call_e2",
        "name": "get_weather",
        "arguments": '{"city": "Nice"}',
    }
    assert trajectory.messages[5] == {"role": "tool", "content": "21 °C", "tool_call_id": "call_e2"}
    assert completion_parts(trajectory.completion) == ("Sent to Ana.", [])
    empty = examples[3]
    assert empty.messages[1]["tool_calls"][0]["arguments"] == "{}"
    refusal = examples[4]
    assert completion_parts(refusal.completion)[1] == []


def _broken(i: int, change) -> list[dict]:
    records = copy.deepcopy(RECORDS)
    change(records[i])
    return records


BROKEN = [
    (
        "unknown function",
        _broken(0, lambda r: r["messages"][1]["tool_calls"][0]["function"].update(name="fly_drone")),
        1,
        'field "messages[1].tool_calls[0].function.name": unknown function "fly_drone"',
    ),
    (
        "arguments not an object",
        _broken(0, lambda r: r["messages"][1]["tool_calls"][0]["function"].update(arguments='["Paris"]')),
        1,
        'field "messages[1].tool_calls[0].function.arguments": must be a JSON object',
    ),
    (
        "arguments not JSON",
        _broken(0, lambda r: r["messages"][1]["tool_calls"][0]["function"].update(arguments="{city: Paris}")),
        1,
        "function.arguments\": not valid JSON",
    ),
    (
        "enum",
        _broken(1, lambda r: r["messages"][1]["tool_calls"].__setitem__(1, call("call_b2", "get_weather", {"city": "x", "unit": "kelvin"}))),
        2,
        'field "messages[1].tool_calls[1].function.arguments.unit": does not match get_weather\'s parameters: '
        "'kelvin' is not one of ['celsius', 'fahrenheit']",
    ),
    (
        "nested required",
        _broken(2, lambda r: r["messages"][2]["tool_calls"].__setitem__(0, call("call_c1", "book_table", {"restaurant": "R", "party": {"children": 1}, "time": "8"}))),
        3,
        "arguments.party\": does not match book_table's parameters: 'adults' is a required property",
    ),
    (
        "duplicate call id",
        _broken(5, lambda r: r["messages"][3]["tool_calls"][1].update(id="call_e1")),
        6,
        'duplicate call id "call_e1"',
    ),
    (
        "a call with no result",
        _broken(3, lambda r: r["messages"].pop(2)),
        4,
        'the call list_orders ("call_d1") has no tool result before this assistant turn',
    ),
    (
        "a result answering no call",
        _broken(2, lambda r: r["messages"][3].update(tool_call_id="call_zz")),
        3,
        'the tool result "call_zz" answers no call',
    ),
    (
        "roles out of order",
        _broken(4, lambda r: r["messages"].insert(0, {"role": "assistant", "content": "Hi"})),
        5,
        "the conversation must start with the user's turn",
    ),
    (
        "parallel calls refused",
        [{**r, "parallel_tool_calls": False} for r in RECORDS[:2]],
        1,
        'field "parallel_tool_calls": is false, but the task\'s tool set allows parallel calls',
    ),
    (
        "a function the task does not define",
        _broken(0, lambda r: r["tools"].append({"type": "function", "function": {"name": "fly_drone"}})),
        1,
        'field "tools[4]": the function "fly_drone" is not in the task\'s tool set',
    ),
]  # fmt: skip


@pytest.mark.parametrize(("case", "records", "line", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_tool_file_is_refused_whole_with_line_and_field(tool_task, tmp_path, case, records, line, expected):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(records))
    with pytest.raises(CommandError) as exc:
        run("import_examples", "concierge", str(path))
    message = str(exc.value)
    assert f"line {line}" in message
    assert expected in message
    assert not Example.objects.exists()


def test_a_tool_file_into_a_chat_task_is_refused_naming_the_keys(tmp_path):
    run("create_task", "chatty", "--name", "C", "--output-format", "chat")
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(RECORDS[:1]))
    with pytest.raises(CommandError) as exc:
        run("import_examples", "chatty", str(path))
    assert "tools" in str(exc.value)
    assert not Example.objects.exists()


def test_openai_drone_example_without_content_and_with_content_imports(tool_task, tmp_path):
    records = [
        {"messages": [{"role": "user", "content": "Weather in Oslo?"},
                      {"role": "assistant", "content": "Checking.", "tool_calls": [call("c1", "get_weather", {"city": "Oslo"})]}]},
        {"messages": [{"role": "user", "content": "Weather in Rome?"},
                      {"role": "assistant", "content": None, "tool_calls": [call("c1", "get_weather", {"city": "Rome"})]}]},
    ]  # fmt: skip
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    run("import_examples", "concierge", str(path))
    first, second = Example.objects.order_by("id")
    assert completion_parts(first.completion)[0] == "Checking."
    assert completion_parts(second.completion) == (
        "",
        [{"id": "c1", "name": "get_weather", "arguments": '{"city": "Rome"}'}],
    )


def test_the_tool_set_is_versioned_with_the_template_and_frozen_once_used(tool_task, tmp_path):
    from django.core.exceptions import ValidationError

    from annotate import services

    v1 = tool_task.current_template
    bad = copy.deepcopy(TOOLS)
    bad[2]["function"]["parameters"] = {"type": "object", "properties": {"n": {"type": "integr"}}}
    with pytest.raises(ValidationError) as exc:
        services.template_save(task=tool_task, values={"tools": json.dumps(bad)})
    assert 'tools[2] (function "list_orders"): function.parameters: Not a valid JSON Schema' in str(exc.value)
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(RECORDS[:1]))
    run("import_examples", "concierge", str(path))
    fewer = json.dumps(TOOLS[:2])
    v2 = services.template_save(task=tool_task, values={"tools": fewer})
    assert (v2.version, json.loads(v2.tools)) == (2, TOOLS[:2])
    v1.refresh_from_db()
    assert json.loads(v1.tools) == TOOLS  # the version the example uses is frozen
    assert Example.objects.get().template_id == v1.pk
