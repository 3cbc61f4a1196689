# ruff: noqa: E501
"""Quality checks of tools tasks: schema-valid arguments, calls to functions that exist, each function's coverage,
the share of examples that call nothing, and duplicates/contradictions that compare calls by function and
arguments."""

import copy
import io
import json

import pandas as pd
import pytest
from django.core.management import call_command

from annotate import quality
from annotate.models import Example, Task
from annotate.tools import completion_text
from tests.tool_fixtures import RECORDS, TOOLS, function, jsonl

pytestmark = pytest.mark.django_db


def _task(tmp_path, tools=TOOLS, records=RECORDS) -> Task:
    (tmp_path / "tools.json").write_text(json.dumps(tools))
    (tmp_path / "data.jsonl").write_bytes(jsonl(records))
    out = io.StringIO()
    call_command("create_task", "concierge", "--name", "C", "--output-format", "tools", "--tools",
                 str(tmp_path / "tools.json"), stdout=out)  # fmt: skip
    call_command("import_examples", "concierge", str(tmp_path / "data.jsonl"), "--status", "approved", stdout=out)
    return Task.objects.get(slug="concierge")


def _codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_calls_to_unknown_functions_and_invalid_arguments_are_found_per_example(tmp_path):
    task = _task(tmp_path)
    good = completion_text("", [{"id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    assert quality.check_example(task, instruction="Oslo?", completion=good) == []
    unknown = completion_text("", [{"id": "c1", "name": "fly_drone", "arguments": "{}"}])
    found = quality.check_example(task, instruction="Fly", completion=unknown)
    assert _codes(found) == ["unknown_tool"]
    assert "the final turn calls “fly_drone”" in found[0].message
    bad = completion_text("", [{"id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo", "unit": "kelvin"}'}])
    found = quality.check_example(task, instruction="Oslo?", completion=bad)
    assert _codes(found) == ["tool_arguments"]
    assert "get_weather.unit" in found[0].message and "'kelvin' is not one of" in found[0].message
    missing = [{"role": "user", "content": "Oslo?"},
               {"role": "assistant", "content": "", "tool_calls": [{"id": "c9", "name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}]}]  # fmt: skip
    found = quality.check_example(task, instruction="Oslo?", messages=missing, completion=completion_text("Sunny.", []))
    assert _codes(found) == ["format"]
    assert 'get_weather ("c9") has no tool result' in found[0].message


def test_imported_examples_are_clean_and_the_task_scan_reports_coverage_and_the_no_call_share(tmp_path):
    tools = [*TOOLS, function("cancel_order", "Cancel an order.", {"order": {"type": "string"}}, ["order"])]
    task = _task(tmp_path, tools=tools, records=[{**r, "tools": tools} for r in RECORDS])
    assert not Example.objects.exclude(warnings=[]).exists()
    rows = pd.DataFrame(list(Example.objects.values("id", "instruction", "context", "input", "messages", "completion",
                                                    "kind", "status", "prompt_hash")))  # fmt: skip
    report = quality.check_task(rows, task)
    assert report.findings.empty
    coverage = [f for f in report.task_findings if f.code == "tool_coverage"]
    assert [f.detail["function"] for f in coverage] == ["cancel_order"]
    assert report.totals["tools"]["tool_calls"]["get_weather"] == 5
    assert report.totals["tools"]["no_call"] == 1  # the refusal
    assert not [f for f in report.task_findings if f.code == "no_call_share"]  # fewer than 10 examples yet


def test_no_example_without_a_call_is_reported(tmp_path):
    records = [copy.deepcopy(RECORDS[0]) for _ in range(12)]
    for i, r in enumerate(records):
        r["messages"][0]["content"] = f"Weather in city {i}?"
    task = _task(tmp_path, records=records)
    rows = pd.DataFrame(list(Example.objects.values("id", "instruction", "messages", "completion", "status")))
    report = quality.check_task(rows, task)
    [finding] = [f for f in report.task_findings if f.code == "no_call_share"]
    assert "No example answers without calling a tool" in finding.message


def test_contradictions_compare_calls_by_function_and_arguments_not_ids(tmp_path):
    task = _task(tmp_path, records=RECORDS[:1])
    same = completion_text(
        "", [{"id": "other_id", "name": "get_weather", "arguments": '{"unit": "celsius", "city": "Paris"}'}]
    )
    differs = completion_text("", [{"id": "x", "name": "get_weather", "arguments": '{"city": "Lyon"}'}])
    base = {
        "instruction": "What's the weather in Paris?",
        "status": "approved",
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
    }
    first = Example.objects.get()
    rows = pd.DataFrame([
        {"id": first.id, **base, "completion": first.completion},
        {"id": 2, **base, "completion": same},
    ])  # fmt: skip
    assert "contradiction" not in quality.check_task(rows, task).counts()
    rows.loc[1, "completion"] = differs
    assert quality.check_task(rows, task).counts()["contradiction"] == 2
