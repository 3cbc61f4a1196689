# ruff: noqa: E501
"""Pairs of a tools task whose sides call the task's functions: imported all or nothing with line and field, checked
against the task's tools as tool examples are, and exported in both preference formats the way each documents (a
round trip of imported records gives exactly them back)."""

import io
import json

import orjson
import pytest
from django.core.management import call_command

from annotate.importing import examples_import
from annotate.importing.common import ImportFailed
from annotate.models import Task
from exports import services
from exports.services import record_problem
from preferences.models import PreferencePair
from tests.exports.conftest import build, read_lines
from tests.tool_fixtures import TOOLS, call

from .test_import import jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def tool_task(tmp_path) -> Task:
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    call_command("create_task", "concierge", "--name", "C", "--output-format", "tools", "--tools",
                 str(tmp_path / "tools.json"), stdout=io.StringIO())  # fmt: skip
    return Task.objects.get(slug="concierge")


def openai_records() -> list[dict]:
    def record(question: str, preferred: dict, other: dict) -> dict:
        return {
            "input": {"messages": [{"role": "user", "content": question}], "tools": TOOLS, "parallel_tool_calls": True},
            "preferred_output": [preferred],
            "non_preferred_output": [other],
        }

    return [
        record(
            "What's the weather in Paris?",
            {"role": "assistant", "tool_calls": [call("call_a1", "get_weather", {"city": "Paris", "unit": "celsius"})]},
            {"role": "assistant", "content": "I cannot check the weather."},
        ),  # fmt: skip
        record(
            "Weather in Zürich and 東京, please.",
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    call("call_b1", "get_weather", {"city": "Zürich"}),
                    call("call_b2", "get_weather", {"city": "東京", "unit": "fahrenheit"}),
                ],
            },
            {"role": "assistant", "tool_calls": [call("call_x", "get_weather", {"city": "Zurich"})]},
        ),  # fmt: skip
        record(
            "A table for 2 adults at Chez Ré, 8pm.",
            {
                "role": "assistant",
                "tool_calls": [
                    call("call_c1", "book_table", {"restaurant": "Chez Ré", "party": {"adults": 2}, "time": "20:00"})
                ],
            },
            {"role": "assistant", "tool_calls": [call("call_c2", "list_orders", {})]},
        ),  # fmt: skip
    ]


def trl_records() -> list[dict]:
    def calls(*found: tuple[str, dict]) -> list[dict]:
        return [{"type": "function", "function": {"name": name, "arguments": arguments}} for name, arguments in found]

    return [
        {"prompt": [{"role": "user", "content": "What's the weather in Paris?"}],
         "chosen": [{"role": "assistant", "content": "", "tool_calls": calls(("get_weather", {"city": "Paris"}))}],
         "rejected": [{"role": "assistant", "content": "No idea."}], "tools": TOOLS},
        {"prompt": [{"role": "system", "content": "You are the concierge."},
                    {"role": "user", "content": "Text Ana that I'm late, and book Chez Ré for 3 at 9."}],
         "chosen": [{"role": "assistant", "content": "On it.", "tool_calls": calls(
             ("send_message", {"to": "Ana", "text": "I'm late ✓"}),
             ("book_table", {"restaurant": "Chez Ré", "party": {"adults": 3}, "time": "21:00"}))}],
         "rejected": [{"role": "assistant", "content": "", "tool_calls": calls(("list_orders", {}))}], "tools": TOOLS},
    ]  # fmt: skip


def _written(export) -> list[dict]:
    folder = services.export_dir(export)
    return [record for split in ("train", "validation") for record in read_lines(folder / f"{split}.jsonl")]


@pytest.mark.parametrize(
    ("export_format", "make"), [("openai-preference", openai_records), ("trl-preference", trl_records)]
)
def test_tool_pairs_round_trip_exactly(tool_task, lead, tmp_path, export_format, make):
    records = make()
    counts = examples_import(task=tool_task, path=jsonl(tmp_path, records), file_format="jsonl", status="approved")
    assert counts["pairs"] == len(records)
    export = build(tool_task, export_format=export_format, user=lead, validation_ratio=0.3)
    assert export.state == "succeeded", export.error
    written = _written(export)
    assert sorted(map(orjson.dumps, written)) == sorted(map(orjson.dumps, records))
    for record in written:
        assert record_problem(export_format, record) is None


def test_one_import_exports_to_the_other_format_as_it_documents(tool_task, lead, tmp_path):
    examples_import(task=tool_task, path=jsonl(tmp_path, openai_records()[:1]), file_format="jsonl", status="approved")
    (record,) = _written(build(tool_task, export_format="trl-preference", user=lead, validation_ratio=0))
    assert record["chosen"] == [{"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]}]  # fmt: skip
    assert record["rejected"] == [{"role": "assistant", "content": "I cannot check the weather."}]
    assert record["tools"] == TOOLS


def test_ids_left_out_are_numbered_in_openai_preference(tool_task, lead, tmp_path):
    examples_import(task=tool_task, path=jsonl(tmp_path, trl_records()[1:]), file_format="jsonl", status="approved")
    (record,) = _written(build(tool_task, export_format="openai-preference", user=lead, validation_ratio=0))
    assert [c["id"] for c in record["preferred_output"][0]["tool_calls"]] == ["call_1", "call_2"]
    assert record["preferred_output"][0]["tool_calls"][0]["function"]["arguments"] == json.dumps(
        {"to": "Ana", "text": "I'm late ✓"}, ensure_ascii=False
    )


def _refused(task, tmp_path, records) -> list[str]:
    with pytest.raises(ImportFailed) as caught:
        examples_import(task=task, path=jsonl(tmp_path, records), file_format="jsonl", status="approved")
    assert not PreferencePair.objects.filter(task=task).exists()  # all or nothing
    return caught.value.problems


def test_calls_are_checked_against_the_tasks_tools_with_line_and_field(tool_task, tmp_path):
    good = openai_records()[0]
    unknown = json.loads(json.dumps(good))
    unknown["preferred_output"][0]["tool_calls"][0]["function"]["name"] = "launch_rocket"
    invalid = json.loads(json.dumps(good))
    invalid["non_preferred_output"] = [{"role": "assistant", "tool_calls": [call("c9", "get_weather", {"city": 7})]}]
    twice = json.loads(json.dumps(good))
    twice["preferred_output"][0]["tool_calls"].append(call("call_a1", "list_orders", {}))
    other_tools = json.loads(json.dumps(good))
    other_tools["input"]["tools"] = TOOLS[:1] + [{"type": "function", "function": {"name": "rm_rf", "parameters": {}}}]
    text = "\n".join(_refused(tool_task, tmp_path, [good, unknown, invalid, twice, other_tools]))
    assert "line 2" in text and "preferred_output[0].tool_calls[0].function.name" in text and "launch_rocket" in text
    assert "line 3" in text and "non_preferred_output[0].tool_calls[0].function.arguments.city" in text
    assert "line 4" in text and "distinct ids" in text
    assert "line 5" in text and "input.tools[1]" in text
    assert "line 1" not in text


def test_tool_calls_on_a_task_without_tools_are_refused_naming_the_field(task, tmp_path):
    record = openai_records()[0]
    del record["input"]["tools"], record["input"]["parallel_tool_calls"]
    text = "\n".join(_refused(task, tmp_path, [record]))
    assert "preferred_output[0].tool_calls" in text and "output format tools" in text


@pytest.mark.parametrize(
    ("export_format", "make"), [("openai-preference", openai_records), ("trl-preference", trl_records)]
)
@pytest.mark.usefixtures("offline_hf")
def test_tool_pair_files_load_with_datasets(tool_task, lead, tmp_path, export_format, make):
    from datasets import load_dataset

    records = make()
    examples_import(task=tool_task, path=jsonl(tmp_path, records), file_format="jsonl", status="approved")
    export = build(tool_task, export_format=export_format, user=lead, validation_ratio=0)
    dataset = load_dataset(str(services.export_dir(export)), cache_dir=str(tmp_path / "hf-cache"))
    rows = dataset["train"].to_list()
    assert len(rows) == len(records)
    side = "preferred_output" if export_format == "openai-preference" else "chosen"
    names = sorted(c["function"]["name"] for row in rows for c in row[side][0]["tool_calls"] or ())
    expected = sorted(c["function"]["name"] for r in records for c in r[side][0].get("tool_calls", ()))
    assert names == expected


def test_the_card_passes_the_tools_to_the_dpo_trainer(tool_task, lead, tmp_path):
    examples_import(task=tool_task, path=jsonl(tmp_path, openai_records()), file_format="jsonl", status="approved")
    export = build(tool_task, export_format="openai-preference", user=lead, validation_ratio=0)
    card = (services.export_dir(export) / "README.md").read_text()
    assert 'tools = json.loads(records.readline())["input"]["tools"]' in card
    assert 'DPOConfig(output_dir="out", tools=tools)' in card


def test_candidates_with_tool_calls_are_refused_saying_they_are_compared_as_text(tool_task, tmp_path):
    calling = {"role": "assistant", "tool_calls": [call("c1", "list_orders", {})]}
    record = {"prompt": "My orders?", "candidates": ["Here they are.", calling]}
    text = "\n".join(_refused(tool_task, tmp_path, [record]))
    assert "candidates[1].tool_calls" in text and "candidates to compare are text" in text
