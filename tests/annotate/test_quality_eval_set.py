"""The labelled evaluation set of the quality checks (benchmarks/quality_eval/) and the precision benchmark's scorer.

These tests check the set's shape and the scoring arithmetic, not how good the checks are: that is what
`make bench BENCH_ARGS=precision` measures.
"""

import json
from collections import Counter

import pytest

from annotate.models import Kind, Task
from annotate.quality import CHECKS
from benchmarks.bench_precision import (
    APPLIES,
    FORMATS,
    EvalSetError,
    Flag,
    Item,
    load_eval_set,
    measure,
    report,
    score,
    unit_of,
)

SET = load_eval_set()
EXAMPLES = [(task, example) for task in SET for example in task.examples]
SCOPES = {code: check.scope for code, check in CHECKS.items()}


def planted() -> Counter:
    """Planted problems per check code: labelled examples, and the task-level units of the summary checks."""
    counts = Counter(code for _, example in EXAMPLES for code in example.get("problems", []))
    counts.update(code for task in SET for unit in task.units() for code in unit.problems)
    return counts


def test_the_set_is_large_and_varied_enough():
    assert len(EXAMPLES) >= 400
    assert len(SET) >= 12
    assert all(len(task.examples) >= 30 for task in SET), "every kind needs 30 examples for the task-wide checks"
    assert {task.output_format for task in SET} == FORMATS


def test_every_label_is_a_check_code_the_task_format_can_raise():
    for task, example in EXAMPLES:
        for code in example.get("problems", []):
            assert code in CHECKS, f"{task.kind}/{example['id']}: unknown check code {code!r}"
            assert CHECKS[code].scope != "summary", f"{task.kind}/{example['id']}: {code} is about a task"
            assert task.output_format in APPLIES.get(code, FORMATS), (
                f"{task.kind}/{example['id']}: {code} never fires in a {task.output_format} task"
            )
    for task in SET:
        for finding in task.definition.get("expected_task_findings", []):
            assert CHECKS[finding["code"]].scope == "summary", f"{task.kind}: {finding}"
            units = {unit.id for unit in task.units()}
            assert unit_of(finding) in units, f"{task.kind}: {finding} names no unit"


def test_every_check_has_at_least_three_planted_problems():
    counts = planted()
    # no_call_share judges a whole tools task (its examples all call, or none does): one planted, in tool_commands.
    too_few = {code: counts[code] for code in CHECKS if counts[code] < (1 if code == "no_call_share" else 3)}
    assert not too_few, f"plant at least 3 of each (see benchmarks/quality_eval/README.md): {too_few}"


def test_clean_examples_are_the_majority_in_the_set_and_in_every_kind():
    clean = sum(1 for _, example in EXAMPLES if not example.get("problems"))
    assert clean > len(EXAMPLES) / 2
    for task in SET:
        clean_here = sum(1 for example in task.examples if not example.get("problems"))
        assert clean_here > len(task.examples) / 2, task.kind


def test_every_example_has_the_fields_its_task_format_needs():
    for task, example in EXAMPLES:
        where = f"{task.kind}/{example['id']}"
        assert example.get("kind", "happy") in Kind.values, where
        if task.output_format == "chat":
            turns = example["messages"]
            assert turns and turns[-1]["role"] == "user", f"{where}: the last prior turn must be the user's"
            assert not {"instruction", "input"} & set(example), f"{where}: a chat example gives messages only"
        elif task.output_format == "tools":
            turns = example["messages"]
            assert turns and turns[-1]["role"] in ("user", "tool"), f"{where}: the prior turns end with a user or tool"
            assert not {"instruction", "input"} & set(example), f"{where}: a tools example gives messages only"
            final = example.get("completion") or {"content": "", "tool_calls": []}
            assert set(final) == {"content", "tool_calls"}, f"{where}: the final turn is {{content, tool_calls}}"
        else:
            assert "messages" not in example, where
            assert example.get("instruction", "").strip(), f"{where}: the import refuses an empty instruction"
        if example.get("status", "approved") != "new":
            assert example.get("completion"), f"{where}: an approved or submitted example needs a completion"


def test_task_definitions_name_a_known_format_labels_and_schema():
    for task in SET:
        spec = task.definition["task"]
        assert spec["output_format"] in FORMATS, task.kind
        assert (spec["output_format"] == "label") == bool(spec.get("labels")), task.kind
        assert ("json_schema" in spec) <= (spec["output_format"] == "json"), task.kind
        assert ("tools" in spec) == (spec["output_format"] == "tools"), task.kind
        assert task.definition.get("description"), task.kind


def test_a_malformed_set_is_refused_naming_the_file_line_and_field(tmp_path):
    definition = {"task": {"output_format": "text"}}
    (tmp_path / "tiny.task.json").write_text(json.dumps(definition))
    (tmp_path / "tiny.jsonl").write_text(
        json.dumps({"id": "a", "instruction": "Say hi", "completion": "Hi!"})
        + "\n"
        + json.dumps({"id": "b", "instruction": "Say hi", "completion": "Hi!", "problem": ["short"]})
        + "\n"
    )
    with pytest.raises(EvalSetError, match=r"tiny\.jsonl, line 2: unknown keys problem"):
        load_eval_set(tmp_path)
    (tmp_path / "tiny.jsonl").write_text(json.dumps({"id": "a", "instruction": "Say hi", "status": "approved"}))
    with pytest.raises(EvalSetError, match=r"tiny\.jsonl, line 1: an approved or submitted example needs a completion"):
        load_eval_set(tmp_path)
    with pytest.raises(EvalSetError, match="no such kind in .*: other"):
        load_eval_set(tmp_path, kinds=["other"])


def test_the_scorer_counts_hits_misses_false_alarms_and_the_clean_share():
    items = [
        Item("t", "leaky", "text", frozenset({"leak"})),
        Item("t", "leaky-too", "text", frozenset({"leak", "short"})),
        Item("t", "blank", "text", frozenset({"empty"})),
        Item("t", "ok-1", "text", frozenset()),
        Item("t", "ok-2", "text", frozenset()),
        Item("t", "ok-3", "text", frozenset()),
        Item("t", "ok-4", "text", frozenset()),
        Item("j", "ok-json", "json", frozenset()),
        Item("j", "label:x", "label", frozenset({"label_balance"}), level="label_balance"),
        Item("j", "label:y", "label", frozenset(), level="label_balance"),
    ]
    flags = [
        Flag("t", "leaky", "leak", "repeats the input"),
        Flag("t", "leaky", "leak", "the same warning twice counts once"),
        Flag("t", "blank", "leak", "a false alarm on an item with another problem"),
        Flag("t", "ok-1", "leak", "a false alarm on a clean item"),
        Flag("t", "ok-2", "short", "a false alarm of short"),
        Flag("j", "ok-json", "short", "short never reads json: not in its denominator, still a false alarm"),
        Flag("j", "label:y", "label_balance", "a false alarm of a summary check"),
        Flag("t", "ghost", "leak", "an item the set does not know"),
    ]
    scopes = {"leak": "example", "short": "example", "empty": "example", "length_outlier": "task"}
    scopes["label_balance"] = "summary"
    scores = score(items, flags, scopes)

    leak = scores["leak"]
    assert (leak.planted, leak.found, [i.id for i in leak.missed]) == (2, 1, ["leaky-too"])
    assert [f.id for f in leak.false_alarms] == ["blank", "ok-1", "ghost"]
    assert (leak.clean_flagged, leak.clean_total) == (1, 5)  # the five clean examples, json included
    assert leak.recall == 0.5 and leak.precision == pytest.approx(1 / 4) and leak.clean_share == pytest.approx(0.2)
    assert not leak.meets and leak.limit == 0.01

    short = scores["short"]
    assert (short.planted, short.found, short.clean_total, short.clean_flagged) == (1, 0, 4, 1)
    assert short.precision == 0.0 and [f.id for f in short.false_alarms] == ["ok-2", "ok-json"]

    empty = scores["empty"]
    assert (empty.planted, empty.found, empty.precision, empty.recall) == (1, 0, None, 0.0)

    style = scores["length_outlier"]
    assert (style.scope, style.limit, style.recall, style.meets) == ("style", 0.03, None, False)

    balance = scores["label_balance"]
    assert (balance.planted, balance.found, balance.clean_total, balance.clean_flagged) == (1, 0, 1, 1)
    assert balance.scope == "summary" and balance.limit == 0.0

    perfect = score(items[:4], [Flag("t", "leaky", "leak"), Flag("t", "leaky-too", "leak")], {"leak": "example"})
    assert perfect["leak"].meets and perfect["leak"].precision == 1.0 and perfect["leak"].clean_share == 0.0


@pytest.mark.django_db
def test_measure_loads_scans_and_reads_back_each_example_then_leaves_the_database_as_it_was(tmp_path):
    definition = {"task": {"output_format": "label", "labels": ["yes", "no"], "preset": "classification"}}
    instruction = "Does the message ask for a refund?"
    examples = [
        {"id": f"ok-{i}", "instruction": instruction, "input": text, "completion": "yes", "problems": []}
        for i, text in enumerate(["Refund me please.", "I want my money back.", "Can I get a refund for order 12?"])
    ]
    examples += [
        {"id": "case", "instruction": instruction, "input": "Where is my parcel?", "completion": "No"},
        {"id": "blank", "instruction": instruction, "input": "Refund?", "completion": "  ", "status": "submitted"},
        {"id": "todo", "instruction": instruction, "input": "Thanks!", "status": "new"},
    ]
    examples[3]["problems"], examples[4]["problems"] = ["label_case"], ["empty"]
    (tmp_path / "yesno.task.json").write_text(json.dumps(definition))
    (tmp_path / "yesno.jsonl").write_text("\n".join(json.dumps(e) for e in examples))
    tasks_before = Task.objects.count()

    measurement = measure(load_eval_set(tmp_path))

    assert Task.objects.count() == tasks_before  # rolled back
    found = {(f.id, f.code) for f in measurement.flags}
    assert {("case", "label_case"), ("blank", "empty")} <= found
    assert not {code for item_id, code in found if item_id.startswith("ok-") or item_id == "todo"}
    scores = score(measurement.items, measurement.flags, measurement.scopes)
    assert (scores["label_case"].found, scores["empty"].found) == (1, 1)
    assert [i.id for i in measurement.items if i.level == "label_balance"] == ["label:yes", "label:no"]
    lines = report(measurement, scores)
    assert any(line.split()[:4] == ["label_case", "example", "1", "1"] for line in lines)


def _call(call_id: str, name: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


@pytest.mark.django_db
def test_measure_loads_a_tools_task_with_its_tool_set_and_types_what_the_import_refuses_in_the_editor(tmp_path):
    tools = [
        {"type": "function", "function": {"name": "lights", "parameters": {"type": "object", "properties": {
            "on": {"type": "boolean"}}, "required": ["on"], "additionalProperties": False}}},
        {"type": "function", "function": {"name": "unused", "parameters": {"type": "object", "properties": {}}}},
    ]  # fmt: skip
    definition = {
        "task": {"output_format": "tools", "tools": tools},
        "expected_task_findings": [{"code": "tool_coverage", "function": "unused"}, {"code": "no_call_share"}],
    }
    examples = [
        {"id": f"ok-{i}", "messages": [{"role": "user", "content": text}], "problems": [],
         "completion": {"content": "", "tool_calls": [_call(f"c{i}", "lights", '{"on": true}')]}}
        for i, text in enumerate(["Lights on", "Light please", "Turn the lamp on", "Can I get some light", "On!",
                                  "Switch the lights on", "It's dark in here", "Lamp on", "Need light", "Lights!"])
    ]  # fmt: skip
    typed = {"status": "submitted", "via": "editor"}
    examples += [
        {"id": "ghost", "messages": [{"role": "user", "content": "Lock up"}], "problems": ["unknown_tool"], **typed,
         "completion": {"content": "", "tool_calls": [_call("g", "lock_door", "{}")]}},
        {"id": "bad", "messages": [{"role": "user", "content": "Lights off"}], "problems": ["tool_arguments"], **typed,
         "completion": {"content": "", "tool_calls": [_call("b", "lights", '{"on": "no"}')]}},
    ]  # fmt: skip
    (tmp_path / "home.task.json").write_text(json.dumps(definition))
    (tmp_path / "home.jsonl").write_text("\n".join(json.dumps(e) for e in examples))

    measurement = measure(load_eval_set(tmp_path))

    found = {(f.id, f.code) for f in measurement.flags}
    assert {("ghost", "unknown_tool"), ("bad", "tool_arguments")} <= found
    assert {("function:unused", "tool_coverage"), ("no_call_share", "no_call_share")} <= found
    assert not {code for item_id, code in found if item_id.startswith("ok-") or item_id == "function:lights"}
    scores = score(measurement.items, measurement.flags, measurement.scopes)
    assert all(scores[code].meets for code in ("unknown_tool", "tool_arguments", "tool_coverage", "no_call_share"))
    assert [i.id for i in measurement.items if i.level != "example"] == [
        "function:lights",
        "function:unused",
        "no_call_share",
    ]
