# ruff: noqa: E501
"""Tools tasks export the way each trainer reads them: a round trip of tricky tool records (nested objects, enums,
unicode in arguments, empty arguments, parallel calls, a multi-step trajectory) gives exactly what was imported in
openai-chat, and its faithful translation in messages and sharegpt; each file loads with `datasets`; what a format
cannot express fails the export naming the examples."""

import copy
import io
import json

import orjson
import pytest
from django.core.management import call_command

from annotate.models import Example, Task
from exports.models import Export
from exports.services import record_problem
from tests.tool_fixtures import RECORDS, TOOLS, call, jsonl

from .conftest import build, version_folder

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_hf")]


def _task(tmp_path, tools=TOOLS, records=RECORDS) -> Task:
    (tmp_path / "tools.json").write_text(json.dumps(tools))
    (tmp_path / "data.jsonl").write_bytes(jsonl(records))
    out = io.StringIO()
    call_command("create_task", "concierge", "--name", "C", "--output-format", "tools", "--tools",
                 str(tmp_path / "tools.json"), stdout=out)  # fmt: skip
    call_command("import_examples", "concierge", str(tmp_path / "data.jsonl"), "--status", "approved", stdout=out)
    return Task.objects.get(slug="concierge")


def _export(task, export_format: str) -> tuple[Export, list[bytes]]:
    export = build(task, export_format=export_format, validation_ratio=0)
    assert export.state == "succeeded", export.error
    data = (version_folder(export) / "train.jsonl").read_bytes()
    return export, [line for line in data.split(b"\n") if line]


def trl_shape(record: dict, *, objects: bool) -> dict:
    """The record as TRL's dataset-format guide shows a tool conversation, written here independently of the
    exporter: calls without ids, arguments as objects (or their JSON text), results naming their function."""
    names = {}
    messages = []
    for message in record["messages"]:
        if message.get("tool_calls"):
            out = {"role": "assistant", **({"content": message["content"]} if message.get("content") else {})}
            out["tool_calls"] = []
            for c in message["tool_calls"]:
                names[c["id"]] = c["function"]["name"]
                arguments = json.loads(c["function"]["arguments"]) if objects else c["function"]["arguments"]
                out["tool_calls"].append(
                    {"type": "function", "function": {"name": c["function"]["name"], "arguments": arguments}}
                )
            messages.append(out)
        elif message["role"] == "tool":
            messages.append({"role": "tool", "name": names[message["tool_call_id"]], "content": message["content"]})
        else:
            messages.append(message)
    return {"messages": messages, "tools": record["tools"]}


def sharegpt_shape(record: dict) -> dict:
    """LLaMA-Factory's sharegpt for the record, written independently: function_call/observation turns."""
    system = ""
    turns = []
    results = []
    for message in record["messages"]:
        if message["role"] == "tool":
            results.append(message["content"])
            continue
        if results:
            turns.append(
                {
                    "from": "observation",
                    "value": results[0] if len(results) == 1 else json.dumps(results, ensure_ascii=False),
                }
            )
            results = []
        if message["role"] == "system":
            system = message["content"]
        elif message.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in message["tool_calls"]
            ]
            turns.append(
                {
                    "from": "function_call",
                    "value": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False),
                }
            )
        else:
            turns.append({"from": "human" if message["role"] == "user" else "gpt", "value": message["content"]})
    tools = json.dumps([t["function"] for t in record["tools"]], ensure_ascii=False)
    return {"conversations": turns, "system": system, "tools": tools}


def test_openai_chat_exports_exactly_the_records_imported(tmp_path):
    task = _task(tmp_path)
    _, lines = _export(task, "openai-chat")
    assert sorted(lines) == sorted(orjson.dumps(r) for r in RECORDS)
    for line in lines:
        assert record_problem("openai-chat", orjson.loads(line)) is None


def test_messages_exports_trl_shape_with_objects_when_the_schemas_agree(tmp_path):
    task = _task(tmp_path)
    _, lines = _export(task, "messages")
    assert sorted(lines) == sorted(orjson.dumps(trl_shape(r, objects=True)) for r in RECORDS)
    for line in lines:
        assert record_problem("messages", orjson.loads(line)) is None


def test_messages_exports_json_strings_when_argument_types_differ(tmp_path):
    """`city` is a string in get_weather and a number in another function: one Arrow column cannot hold both."""
    tools = copy.deepcopy(TOOLS)
    tools[3]["function"]["parameters"]["properties"]["city"] = {"type": "integer"}
    task = _task(tmp_path, tools=tools, records=[{**r, "tools": tools} for r in RECORDS])
    export, lines = _export(task, "messages")
    assert sorted(lines) == sorted(orjson.dumps(trl_shape({**r, "tools": tools}, objects=False)) for r in RECORDS)
    _loads(export, tmp_path, lines)


def test_sharegpt_exports_function_call_and_observation_turns_and_dataset_info(tmp_path):
    task = _task(tmp_path)
    export, lines = _export(task, "sharegpt")
    assert sorted(lines) == sorted(orjson.dumps(sharegpt_shape(r)) for r in RECORDS)
    info = json.loads((version_folder(export) / "dataset_info.json").read_text())
    assert info["concierge_train"]["columns"] == {"messages": "conversations", "system": "system", "tools": "tools"}


def _loads(export, tmp_path, lines):
    from datasets import load_dataset

    path = version_folder(export) / "train.jsonl"
    dataset = load_dataset("json", data_files={"train": str(path)}, cache_dir=str(tmp_path / f"hf-{export.format}"))
    assert dataset["train"].num_rows == len(lines) == 6
    return dataset["train"]


@pytest.mark.parametrize("export_format", ["openai-chat", "messages", "sharegpt"])
def test_every_tool_export_loads_with_datasets(tmp_path, export_format):
    task = _task(tmp_path)
    export, lines = _export(task, export_format)
    rows = _loads(export, tmp_path, lines)
    assert rows.column_names == list(orjson.loads(lines[0]))
    if export_format == "messages":  # the arguments came back as objects, with every key the struct holds
        calls = [m["tool_calls"] for row in rows for m in row["messages"] if m.get("tool_calls")]
        assert {"city": "東京", "unit": "fahrenheit"}.items() <= calls[1][1]["function"]["arguments"].items()


def test_sharegpt_refuses_text_and_calls_in_one_turn_and_a_user_turn_after_a_result_naming_the_examples(tmp_path):
    records = copy.deepcopy(RECORDS)
    calls = records[0]["messages"][1]["tool_calls"]
    records[0]["messages"][1] = {"role": "assistant", "content": "Let me check.", "tool_calls": calls}
    records[3]["messages"][3] = {"role": "user", "content": "And?"}
    records[3]["messages"].append({"role": "assistant", "content": "Nothing open."})
    task = _task(tmp_path, records=records)
    export = build(task, export_format="sharegpt", validation_ratio=0)
    assert export.state == "failed"
    first, _, _, fourth = Example.objects.filter(task=task).order_by("id")[:4]
    reasons = {p["uuid"]: p["reason"] for p in export.problems}
    assert set(reasons) == {str(first.uuid), str(fourth.uuid)}
    assert "says something and calls a tool in one turn" in reasons[str(first.uuid)]
    assert "a user turn right after a tool result" in reasons[str(fourth.uuid)]
    assert str(first.uuid) in export.error
    # the same data exports to openai-chat as it is
    _, lines = _export(task, "openai-chat")
    assert sorted(lines) == sorted(orjson.dumps(r) for r in records)


def test_final_call_without_id_gets_a_stable_one(tmp_path):
    records = [{"messages": [{"role": "user", "content": "Oslo?"},
                             {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]}]}]  # fmt: skip
    task = _task(tmp_path, records=records)
    _, first = _export(task, "openai-chat")
    _, second = _export(task, "openai-chat")
    assert first == second
    assert orjson.loads(first[0])["messages"][1]["tool_calls"][0] == call("call_1", "get_weather", {"city": "Oslo"})


@pytest.mark.parametrize("export_format", ["openai-chat", "messages", "sharegpt"])
def test_each_example_exports_with_its_template_versions_tools_and_a_call_to_none_of_them_fails(
    tmp_path, export_format
):
    """Version 2 of the tool set drops send_message: the version 1 examples that call it still export, with version
    1's tools; a version 2 example calling it fails the export, named."""
    from annotate import services
    from annotate.tools import completion_text

    task = _task(tmp_path)
    v2_tools = [t for t in TOOLS if t["function"]["name"] != "send_message"]
    services.template_save(task=task, values={"tools": json.dumps(v2_tools)})
    assert task.current_template.version == 2
    _, lines = _export(task, export_format)
    records = [orjson.loads(line) for line in lines]
    sends = [r for r in records if "send_message" in line_text(r)]
    assert len(sends) == 1  # the multi-step trajectory of version 1, with version 1's four functions
    assert "send_message" in json.dumps(sends[0]["tools"], ensure_ascii=False)
    late = services.example_create(
        task=task, fields={"instruction": "Text Ana: hi"}, status="approved",
        completion=completion_text("", [{"id": "c1", "name": "send_message", "arguments": '{"to": "Ana", "text": "hi"}'}]),
    )  # fmt: skip
    assert late.template_id == task.current_template.pk
    export = build(task, export_format=export_format, validation_ratio=0)
    assert export.state == "failed"
    assert [p["uuid"] for p in export.problems] == [str(late.uuid)]
    assert (
        "calls “send_message”, which the tool set of its template version does not define"
        in export.problems[0]["reason"]
    )


def line_text(record: dict) -> str:
    return json.dumps(record.get("messages") or record.get("conversations"), ensure_ascii=False)
