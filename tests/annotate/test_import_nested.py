"""Nested records: paths into nested values, keys that no field takes refused until dropped or kept, metadata.

The records have the shape of instruction-tuning seed files: `{id, name, instruction, instances: [{input, output}],
is_classification}`. Before, the default mapping imported such a file "successfully" and only then said that
`instances`, `is_classification` and `name` were ignored: every output and input was lost.
"""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate import importing
from annotate.importing.mapping import MAX_PATH_CHARS, MAX_PATH_STEPS, Mapping, PathError, parse_path, path_text
from annotate.importing.previews import path_picks, unstored_keys
from annotate.models import Example, ImportJob, Revision, Transition

pytestmark = pytest.mark.django_db

SEED = [
    {
        "id": f"seed_task_{i}",
        "name": f"task <{i}>",
        "instruction": f"Instruction {i}",
        "instances": [{"input": "" if i % 3 == 0 else f"Input {i}", "output": f"Output {i}"}],
        "is_classification": i % 2 == 0,
    }
    for i in range(1, 7)
]
NOT_TAKEN = "no field takes this key"


def write(tmp_path: Path, records, name: str = "seed.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run(task, path: Path, *args) -> str:
    out = StringIO()
    call_command("import_examples", task.slug, str(path), *args, stdout=out)
    return out.getvalue()


def rows() -> tuple[int, int, int]:
    return Example.objects.count(), Revision.objects.count(), Transition.objects.count()


# --- keys that no field takes: refused, named, and the way out -------------------------------------------------


def test_the_default_mapping_refuses_the_nested_file_and_names_every_key_it_would_drop(task, tmp_path):
    with pytest.raises(CommandError) as caught:
        run(task, write(tmp_path, SEED))
    message = str(caught.value)
    assert message.startswith("Nothing was imported.\n")
    assert (
        "Keys that no field takes: name (in 6 records), instances (in 6 records), is_classification (in 6 records): "
        "map them, or choose to drop them or to keep them on each example as metadata" in message
    )
    for key in ("name", "instances", "is_classification"):
        assert f'line 1, field "{key}": {NOT_TAKEN}' in message
    assert 'line 2, field "name"' not in message  # each key once, at its first record
    assert message.endswith(
        "To import without them: --allow-unmapped name,instances,is_classification "
        "(or keep them: --keep-unmapped name,instances,is_classification)"
    )
    assert rows() == (0, 0, 0)


def test_nested_paths_take_the_input_and_output_and_the_rest_is_dropped_when_allowed(task, tmp_path):
    out = run(
        task,
        write(tmp_path, SEED),
        "--path", "input=instances[0].input",
        "--path", "completion=instances[0].output",
        "--allow-unmapped", "name,is_classification",
    )  # fmt: skip
    assert "Imported 6 examples into support (status new): 6 with completions" in out
    assert "Ignored keys (no matching field): is_classification, name" in out
    stored = {e.external_id: (e.instruction, e.input, e.completion, e.metadata) for e in task.examples.all()}
    assert stored["seed_task_1"] == ("Instruction 1", "Input 1", "Output 1", {})
    assert stored["seed_task_3"] == ("Instruction 3", "", "Output 3", {})  # an empty input is absent
    assert Revision.objects.filter(reason="import").count() == 6


def test_a_key_that_paths_take_only_in_part_is_refused_with_the_line(task, tmp_path):
    args = ("--path", "completion=instances[0].output", "--allow-unmapped", "name,is_classification")
    with pytest.raises(CommandError) as caught:
        run(task, write(tmp_path, SEED), *args)
    assert f'line 1, field "instances": {NOT_TAKEN}' in str(caught.value)  # instances[0].input is left
    assert rows() == (0, 0, 0)
    # A second instance in one record is also a part no path takes.
    two = [*SEED[:2], {**SEED[2], "instances": [{"output": "a"}, {"output": "b"}]}]
    with pytest.raises(CommandError, match=f'line 3, field "instances": {NOT_TAKEN}'):
        run(task, write(tmp_path, two), *args[:2], "--allow-unmapped", "name,is_classification", "--path",
            "input=instances[0].input")  # fmt: skip
    assert rows() == (0, 0, 0)


def test_unmapped_keys_kept_as_metadata_are_stored_on_each_example(task, tmp_path):
    out = run(
        task,
        write(tmp_path, SEED),
        "--path", "completion=instances[0].output",
        "--keep-unmapped", "name,is_classification,instances",
        "--status", "submitted",
    )  # fmt: skip
    assert "Imported 6 examples" in out and "Kept as metadata: instances, is_classification, name" in out
    example = task.examples.get(external_id="seed_task_2")
    assert example.completion == "Output 2" and example.status == "submitted"
    # A key paths take in part is kept whole.
    assert example.metadata == {
        "name": "task <2>",
        "instances": [{"input": "Input 2", "output": "Output 2"}],
        "is_classification": True,
    }


def test_a_key_met_after_the_keys_allowed_is_refused_with_its_line(task, tmp_path):
    records = [{"prompt": f"p{i}", "note": "n"} for i in range(300)]
    records[249]["late"] = "surprise"
    with pytest.raises(CommandError) as caught:
        run(task, write(tmp_path, records), "--allow-unmapped", "note")
    assert f'line 250, field "late": {NOT_TAKEN}' in str(caught.value)
    assert "--allow-unmapped late " in str(caught.value)
    assert rows() == (0, 0, 0)


def test_a_key_with_a_comma_can_be_allowed_escaped(task, tmp_path):
    path = write(tmp_path, [{"prompt": "p", "a,b": 1}])
    with pytest.raises(CommandError, match=r"--allow-unmapped a\\,b "):
        run(task, path)
    assert "Imported 1 examples" in run(task, path, "--allow-unmapped", "a\\,b")


def test_dropping_and_keeping_one_key_is_refused(task, tmp_path):
    with pytest.raises(CommandError, match="Keys both dropped and kept: name; choose one for each."):
        run(task, write(tmp_path, SEED), "--allow-unmapped", "name", "--keep-unmapped", "name")


# --- paths: what they find, and their problems ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("instances[0].output", ("instances", 0, "output")),
        ("a.b.c", ("a", "b", "c")),
        ('["a.b"][12]["say \\"hi\\""]', ("a.b", 12, 'say "hi"')),
        ("  spaced key  ", ("spaced key",)),
    ],
)
def test_paths_are_parsed_and_written_back(text, steps):
    assert parse_path(text) == steps
    assert parse_path(path_text(steps)) == steps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the path is empty"),
        ("x" * (MAX_PATH_CHARS + 1), f"over the limit of {MAX_PATH_CHARS}"),
        ("a" + ".b" * MAX_PATH_STEPS, f"more than {MAX_PATH_STEPS} steps, the limit"),
        ("a[1234567]", "the index [1234567] is over the limit of 999,999"),
        ("a[0", 'cannot read the path from character 2 ("[0"): use .name or [N]'),
        ("a[-1]", "cannot read the path from character 2"),
        (".a", "a path starts with a key of the record"),
    ],
)
def test_a_path_that_cannot_be_read_is_refused_by_the_command_naming_the_problem(task, tmp_path, text, message):
    with pytest.raises(PathError, match=None) as caught:
        parse_path(text)
    assert message in str(caught.value)
    with pytest.raises(CommandError, match="--path 'completion="):
        run(task, write(tmp_path, SEED), "--path", f"completion={text}")
    assert rows() == (0, 0, 0)


def test_a_path_through_the_wrong_kind_of_value_names_the_line_and_the_path(task, tmp_path):
    records = [*SEED[:3], {**SEED[3], "instances": {"output": "not an array"}}]
    with pytest.raises(CommandError) as caught:
        run(task, write(tmp_path, records), "--path", "completion=instances[0].output", "--keep-unmapped",
            "name,is_classification,instances")  # fmt: skip
    assert 'line 4, field "instances[0].output": instances is an object, not an array: [0] cannot be read' in str(
        caught.value
    )
    assert rows() == (0, 0, 0)


def test_a_path_that_finds_nothing_leaves_an_optional_field_empty_and_names_a_missing_instruction(task, tmp_path):
    records = [{"q": {"text": "Asked"}, "a": [{"text": "Answered"}]}, {"q": {"text": "Only asked"}, "a": []}]
    path = write(tmp_path, records)
    out = run(task, path, "--path", "instruction=q.text", "--path", "completion=a[0].text")
    assert "Imported 2 examples" in out and "1 with completions" in out
    assert task.examples.get(instruction="Only asked").completion == ""
    task.examples.all().delete()
    missing = write(tmp_path, [*records, {"q": {}, "a": []}], "missing.jsonl")
    with pytest.raises(CommandError) as caught:
        run(task, missing, "--path", "instruction=q.text", "--path", "completion=a[0].text")
    assert 'line 3, field "q.text": finds nothing here, and an instruction is needed' in str(caught.value)
    # Imported as submitted, the completion is needed: its absence is named as always.
    with pytest.raises(CommandError, match='line 2, field "completion": missing, and an example submitted needs one'):
        run(task, path, "--path", "instruction=q.text", "--path", "completion=a[0].text", "--status", "submitted")
    assert rows() == (0, 0, 0)


def test_a_path_and_a_key_giving_one_field_are_named(task, tmp_path):
    records = [{"instruction": "a", "output": "top", "nested": {"output": "inner"}}]
    with pytest.raises(CommandError, match='field "nested.output": gives the completion again \\(so does "output"\\)'):
        run(task, write(tmp_path, records), "--path", "completion=nested.output")


# --- metadata: bounded and storable -------------------------------------------------------------------------


def test_metadata_over_its_limit_or_with_a_nul_is_refused(task, tmp_path):
    big = [{"prompt": "p", "notes": "x" * 100_001}]
    with pytest.raises(CommandError) as caught:
        run(task, write(tmp_path, big), "--keep-unmapped", "notes")
    assert 'line 1, field "notes": the keys kept as metadata take 100,013 characters as JSON, over the limit of ' in (
        str(caught.value)
    )
    nul = [{"prompt": "p", "notes": "a\u0000b", "literal": "\\u0000 is fine"}]
    with pytest.raises(CommandError, match=r'line 1, field "notes": a kept value holds a NUL character'):
        run(task, write(tmp_path, nul), "--keep-unmapped", "notes,literal")
    assert "Imported 1 examples" in run(task, write(tmp_path, [nul[0] | {"notes": "ok"}]), "--keep-unmapped",
                                        "notes,literal")  # fmt: skip
    assert task.examples.get().metadata == {"notes": "ok", "literal": "\\u0000 is fine"}


# --- the mapping on the job row, and the previews ---------------------------------------------------------------


def test_an_older_job_row_with_a_plain_mapping_still_imports(task, tmp_path):
    path = write(tmp_path, [{"question": "Q?", "answer": "A."}])
    older = {"question": "instruction", "answer": "completion"}  # as rows were written before paths
    job = ImportJob.objects.create(
        task=task, filename="a.jsonl", path=str(path), file_format="jsonl", size=path.stat().st_size, mapping=older
    )
    importing.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    assert task.examples.get().completion == "A."
    assert Mapping.of(Mapping(paths={"completion": "a.b"}, drop=frozenset({"x"})).as_json()) == Mapping(
        paths={"completion": "a.b"}, drop=frozenset({"x"})
    )


def test_the_previews_list_what_is_not_stored_and_what_each_path_picks(tmp_path):
    path = write(tmp_path, SEED)
    found = unstored_keys(path=path, file_format="jsonl", mapping=Mapping(paths={"completion": "instances[0].output"}))
    assert [(u.key, u.records, u.where, u.parts) for u in found] == [
        ("name", 6, "line 1", []),
        ("instances", 6, "line 1", ["instances[0].input"]),
        ("is_classification", 6, "line 1", []),
    ]
    both = Mapping(paths={"completion": "instances[0].output", "input": "instances[0].input"}, keys={"name": ""})
    assert [u.key for u in unstored_keys(path=path, file_format="jsonl", mapping=both)] == ["name", "is_classification"]
    picks = path_picks(path=path, file_format="jsonl", paths={"completion": "instances[0].output", "input": "x[0",
                                                               "context": "instances.output", "kind": ""})  # fmt: skip
    assert picks["completion"] == ["line 1: Output 1", "line 2: Output 2", "line 3: Output 3"]
    assert picks["input"].startswith("the path for input (x[0): cannot read the path")
    assert picks["context"][0] == 'line 1: instances is an array, not an object: "output" cannot be read'
    assert "kind" not in picks


def test_a_key_a_path_starts_from_is_read_through_the_path_only(task, tmp_path):
    # "input" matches the input field by name; the path into it wins, so the object is not taken as the input text.
    records = [{"instruction": "Translate", "input": {"text": "Bonjour", "lang": "fr"}}]
    path = write(tmp_path, records)
    with pytest.raises(CommandError, match=f'line 1, field "input": {NOT_TAKEN}'):  # "lang" is left
        run(task, path, "--path", "input=input.text")
    assert "Imported 1 examples" in run(task, path, "--path", "input=input.text", "--keep-unmapped", "input")
    example = task.examples.get()
    assert example.input == "Bonjour" and example.metadata == {"input": {"text": "Bonjour", "lang": "fr"}}
