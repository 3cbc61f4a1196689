"""Import of preference pairs and candidates through import_examples: every shape, all or nothing, line and field."""

from pathlib import Path

import orjson
import pytest
from django.core.management import CommandError, call_command

from annotate.importing import ImportFailed, examples_import, import_check
from annotate.models import Example
from preferences.models import Comparison, PreferencePair, Source

pytestmark = pytest.mark.django_db

ASSISTANT = {"role": "assistant", "content": "Tomorrow."}


def jsonl(tmp_path: Path, records: list, name: str = "pairs.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    return path


def test_every_pair_shape_imports_and_counts_as_reviewed_when_approved(task, tmp_path):
    records = [
        {"id": "p1", "prompt": "Where is my parcel?", "chosen": "On its way.", "rejected": "No idea."},
        {"instruction": "Summarise", "input": "A long text", "chosen": ASSISTANT,
         "rejected": [ASSISTANT | {"content": "Meh"}]},
        {"prompt": [{"role": "system", "content": "Be kind"}, {"role": "user", "content": "Hi"}],
         "chosen": [{"role": "assistant", "content": "Hello!"}],
         "rejected": [{"role": "assistant", "content": "What"}]},
        {"messages": [{"role": "user", "content": "Q"}], "chosen": "A", "rejected": "B"},
        {"input": {"messages": [{"role": "user", "content": "Capital of France?"}]},
         "preferred_output": [{"role": "assistant", "content": "Paris"}],
         "non_preferred_output": [{"role": "assistant", "content": "Lyon"}]},
    ]  # fmt: skip
    counts = examples_import(task=task, path=jsonl(tmp_path, records), file_format="jsonl", status="approved")
    assert counts["pairs"] == 5 and counts["comparisons"] == 0
    pairs = list(PreferencePair.objects.order_by("id"))
    assert [p.source for p in pairs] == [Source.IMPORT] * 5
    assert all(p.reviewed for p in pairs)
    assert (pairs[0].external_id, pairs[0].instruction, pairs[0].chosen, pairs[0].rejected) == (
        "p1", "Where is my parcel?", "On its way.", "No idea.",
    )  # fmt: skip
    assert (pairs[1].instruction, pairs[1].input, pairs[1].chosen, pairs[1].rejected) == (
        "Summarise", "A long text", "Tomorrow.", "Meh",
    )  # fmt: skip
    assert pairs[2].messages == [{"role": "system", "content": "Be kind"}] and pairs[2].instruction == "Hi"
    assert (pairs[4].instruction, pairs[4].chosen, pairs[4].rejected) == ("Capital of France?", "Paris", "Lyon")
    assert not Example.objects.exists()  # pairs are not examples


def test_pairs_imported_as_new_wait_for_review(task, tmp_path):
    examples_import(task=task, path=jsonl(tmp_path, [{"prompt": "Q", "chosen": "A", "rejected": "B"}]),
                    file_format="jsonl", status="new")  # fmt: skip
    assert PreferencePair.objects.get().reviewed is False


def test_candidates_become_comparisons(task, tmp_path):
    records = [{"id": "c1", "prompt": "Q", "candidates": ["First", {"role": "assistant", "content": "Second"}]}]
    counts = examples_import(task=task, path=jsonl(tmp_path, records), file_format="jsonl")
    assert counts["comparisons"] == 1
    comparison = Comparison.objects.get()
    assert (comparison.candidate_a, comparison.candidate_b, comparison.state) == ("First", "Second", "open")


def test_csv_pairs(task, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('prompt,chosen,rejected\n"Q, with comma",Good,Bad\n', encoding="utf-8")
    examples_import(task=task, path=path, file_format="csv", status="approved")
    assert PreferencePair.objects.get().instruction == "Q, with comma"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"prompt": "Q", "chosen": "A"}, 'line 2, field "rejected": missing: a pair needs both sides'),
        ({"prompt": "Q", "chosen": "A", "rejected": 3}, 'line 2, field "rejected": expected a string, got a number'),
        ({"prompt": "Q", "chosen": [ASSISTANT, ASSISTANT], "rejected": "B"},
         'line 2, field "chosen": expected one assistant message, got a list of 2'),
        ({"prompt": "Q", "chosen": {"role": "user", "content": "A"}, "rejected": "B"},
         'line 2, field "chosen.role": expected "assistant"'),
        ({"prompt": "Q", "chosen": "A", "rejected": "B", "score": 3},
         'line 2, field "score": no field of a preference pair takes this key'),
        ({"chosen": "A", "rejected": "B"}, 'line 2, field "instruction": missing'),
        ({"prompt": "Q", "candidates": ["only one"]}, 'line 2, field "candidates": expected an array of exactly two'),
        ({"prompt": [{"role": "assistant", "content": "x"}], "chosen": "A", "rejected": "B"},
         "line 2, field \"prompt\": the prompt's last message must be the user's"),
        ({"input": {"messages": [{"role": "user", "content": "Q"}]}, "preferred_output": [ASSISTANT]},
         'line 2, field "non_preferred_output": missing'),
        ({"prompt": "Q", "chosen": "A\u0000", "rejected": "B"}, 'line 2, field "chosen": contains a NUL'),
    ],
)  # fmt: skip
def test_a_bad_record_imports_nothing_and_names_line_and_field(task, tmp_path, record, expected):
    good = {"id": "ok", "prompt": "Q", "chosen": "A", "rejected": "B"}
    path = jsonl(tmp_path, [good, record])
    with pytest.raises(ImportFailed) as caught:
        examples_import(task=task, path=path, file_format="jsonl", status="approved")
    assert any(m.startswith(expected) for m in caught.value.messages), caught.value.messages
    assert not PreferencePair.objects.exists() and not Comparison.objects.exists()
    with pytest.raises(ImportFailed):
        import_check(task=task, path=path, file_format="jsonl", status="approved")


def test_a_field_over_the_limit_is_named(task, tmp_path, monkeypatch):
    from annotate.importing import limits

    monkeypatch.setattr(limits, "MAX_FIELD_CHARS", 10)
    path = jsonl(tmp_path, [{"prompt": "Q", "chosen": "x" * 11, "rejected": "B"}])
    with pytest.raises(ImportFailed, match=r'line 1, field "chosen": 11 characters, over the limit of 10'):
        examples_import(task=task, path=path, file_format="jsonl")


def test_repeated_ids_in_the_file_and_in_the_task_are_refused(task, tmp_path):
    examples_import(task=task, path=jsonl(tmp_path, [{"id": "x", "prompt": "Q", "chosen": "A", "rejected": "B"}]),
                    file_format="jsonl")  # fmt: skip
    records = [
        {"id": "y", "prompt": "Q", "chosen": "A", "rejected": "B"},
        {"id": "y", "prompt": "Q", "chosen": "A", "rejected": "B"},
        {"id": "x", "prompt": "Q", "chosen": "A", "rejected": "B"},
    ]
    with pytest.raises(ImportFailed) as caught:
        examples_import(task=task, path=jsonl(tmp_path, records, "two.jsonl"), file_format="jsonl")
    text = "\n".join(caught.value.messages)
    assert 'line 2, field "id": "y" repeats the id of line 1' in text
    assert '"x" is already the id of a pair or comparison of this task' in text
    assert PreferencePair.objects.count() == 1


def test_the_command_prints_what_it_imported_and_refuses_bad_files(task, tmp_path, capsys):
    path = jsonl(tmp_path, [{"prompt": "Q", "chosen": "A", "rejected": "B"}, {"prompt": "Q", "candidates": ["a", "b"]}])
    call_command("import_examples", task.slug, str(path), "--status", "approved")
    out = capsys.readouterr().out
    assert f"Imported 1 preference pairs (reviewed) and 1 comparisons into {task.slug}" in out
    bad = jsonl(tmp_path, [{"prompt": "Q", "chosen": "A", "rejected": "B", "extra": 1}], "bad.jsonl")
    with pytest.raises(CommandError, match='Nothing was imported.\nline 1, field "extra"'):
        call_command("import_examples", task.slug, str(bad))
    call_command("import_examples", task.slug, str(bad), "--allow-unmapped", "extra")
    assert PreferencePair.objects.count() == 2
