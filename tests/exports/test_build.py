"""Building an export in-process: the records, the checks, the split, the files and their checksums."""

import json
from hashlib import sha256
from uuid import uuid4

import orjson
import pytest
from django.core.exceptions import ValidationError

from annotate.models import Example, Kind, PromptTemplate
from annotate.rendering import TemplateSpec, render_record
from annotate.services import template_save
from exports import services
from exports.models import Export, ExportChange
from exports.services import record_problem, split_of
from pairsmith.jobs import JobState

from .conftest import approve, build, file_sha256, read_lines, stored_bytes, stored_folders, version_folder

pytestmark = pytest.mark.django_db


def expected_records(examples, export_format: str) -> list[dict]:
    """What each approved example must become, rendered independently of the export code, in id order."""
    records = []
    for example in sorted(examples, key=lambda e: e.pk):
        template = PromptTemplate.objects.get(pk=example.template_id)
        records.append(
            render_record(
                TemplateSpec.of(template),
                export_format,
                fields=example.prompt_fields(),
                completion=example.completion,
                messages=example.messages or None,
            )
        )
    return records


@pytest.mark.parametrize("export_format", ["openai-chat", "prompt-completion", "alpaca"])
def test_only_approved_examples_are_exported_exactly_as_rendered(task, lead, export_format):
    approved = approve(task, 30)
    approve(task, 5, start=100, status=Example.Status.SUBMITTED)
    approve(task, 5, start=200, status=Example.Status.REJECTED)
    if all(split_of(seed=task.split_seed, uuid=str(e.uuid), ratio=0.2) == "train" for e in approved):
        first = approved[0]  # one chance in 800 with random UUIDs: give validation one example, found by its rule
        first.uuid = next(
            u
            for u in (uuid4() for _ in range(1000))
            if split_of(seed=task.split_seed, uuid=str(u), ratio=0.2) == "validation"
        )
        first.save(update_fields=["uuid"])
    export = build(task, export_format=export_format, user=lead, validation_ratio=0.2)
    assert export.state == JobState.SUCCEEDED, export.error
    folder = version_folder(export)
    train, validation = read_lines(folder / "train.jsonl"), read_lines(folder / "validation.jsonl")
    assert len(train) + len(validation) == 30 and train and validation
    by_uuid = {str(e.uuid): e for e in approved}
    manifest = json.loads((folder / "manifest.json").read_text())
    written = {}
    for name, records in (("train.jsonl", train), ("validation.jsonl", validation)):
        entries = manifest["examples"][name]
        assert len(entries) == len(records)
        for (_, uuid, _, _), record in zip(entries, records, strict=True):
            written[uuid] = record
    in_order = [str(e.uuid) for e in sorted(approved, key=lambda e: e.pk)]
    expected = dict(zip(in_order, expected_records(approved, export_format), strict=True))
    assert written == expected
    assert set(written) == set(by_uuid)
    for record in train + validation:
        assert list(record) == list(services.RECORD_KEYS[export_format])  # no extra keys
        assert record_problem(export_format, record) is None


def test_records_use_each_examples_own_template_version(task, lead):
    old = approve(task, 3)
    template_save(task=task, values={"chat_user_format": "NEW: {instruction}"})  # v1 is used, so this is v2
    new = approve(task, 3, start=10)
    assert {e.template.version for e in new} == {2}
    export = build(task, user=lead, validation_ratio=0)
    records = read_lines(version_folder(export) / "train.jsonl")
    users = [next(m["content"] for m in r["messages"] if m["role"] == "user") for r in records]
    assert [u.startswith("NEW: ") for u in users] == [False] * len(old) + [True] * len(new)
    manifest = json.loads((version_folder(export) / "manifest.json").read_text())
    assert manifest["templates"] == [{"version": 1, "examples": 3}, {"version": 2, "examples": 3}]


def test_chat_task_keeps_prior_turns_and_system_message(task, lead):
    task.system_prompt = "You are the parcel bot."
    task.save()
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    approve(task, 1, messages=turns)
    export = build(task, user=lead, validation_ratio=0)
    (record,) = read_lines(version_folder(export) / "train.jsonl")
    roles = [m["role"] for m in record["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert record["messages"][0]["content"] == "You are the parcel bot."


def test_manifest_card_and_row_describe_the_files(task, lead):
    approve(task, 40)
    export = build(task, user=lead, validation_ratio=0.25)
    folder = version_folder(export)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "manifest.json", "train.jsonl", "validation.jsonl"]
    for name, meta in export.files.items():
        assert file_sha256(folder / name) == meta["sha256"]
        assert (folder / name).stat().st_size == meta["size"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["format"] == "openai-chat"
    assert manifest["task"]["slug"] == task.slug and manifest["created_by"] == "leo"
    assert manifest["split"]["validation_ratio"] == 0.25 and manifest["split"]["seed"] == task.split_seed
    assert manifest["counts"] == export.counts
    assert export.counts["total"] == 40 == export.counts["train"] + export.counts["validation"]
    assert sum(export.counts["by_kind"]["train"].values()) == export.counts["train"]
    assert export.counts["by_kind"]["train"].keys() <= set(Kind.values)
    for name in ("train.jsonl", "validation.jsonl", "README.md"):
        assert manifest["files"][name] == export.files[name]
    for name in ("train.jsonl", "validation.jsonl"):  # each entry: id, uuid, hash of that very line
        lines = (folder / name).read_bytes().split(b"\n")[:-1]
        for (pk, uuid, content, _), line in zip(manifest["examples"][name], lines, strict=True):
            assert sha256(line).hexdigest()[:16] == content
            assert Example.objects.get(pk=pk).uuid.hex == uuid.replace("-", "")
    card = (folder / "README.md").read_text()
    assert task.name in card and 'load_dataset("json"' in card and "fine_tuning.jobs.create" in card
    assert f"| train | `train.jsonl` | {export.counts['train']} |" in card
    assert not list(folder.parent.glob(".partial-*"))  # nothing left behind


def test_summary_is_the_commands_json(task, lead):
    approve(task, 10)
    export = build(task, user=lead)
    summary = services.export_summary(export=export)
    assert set(summary) == {"version", "state", "files", "sha256", "counts"}
    assert set(summary["files"]) == set(summary["sha256"]) == {"train", "validation", "manifest", "card"}
    for key, path in summary["files"].items():
        assert sha256(stored_bytes(path)).hexdigest() == summary["sha256"][key]


def test_split_is_the_documented_hash_and_close_to_the_ratio():
    import hashlib
    import uuid

    uuids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(4000)]
    sides = [split_of(seed="s1", uuid=u, ratio=0.1) for u in uuids]
    assert 0.08 < sides.count("validation") / len(sides) < 0.12
    for u, side in zip(uuids, sides, strict=True):  # the rule the manifest and the dataset card state
        first_8_bytes = int.from_bytes(hashlib.sha256(f"s1:{u}".encode()).digest()[:8], "big")
        assert side == ("validation" if first_8_bytes < 0.1 * 2**64 else "train")
    assert all(split_of(seed="s1", uuid=u, ratio=0) == "train" for u in uuids[:100])
    assert sides != [split_of(seed="s2", uuid=u, ratio=0.1) for u in uuids]  # the seed matters


@pytest.mark.parametrize("ratio", [0, 0.1, 0.5, 0.9])
def test_each_example_lands_on_the_side_the_rule_gives(task, lead, ratio):
    """On PostgreSQL the database computes the split (in SQL); it must agree with split_of byte for byte."""
    task.split_seed = "seed:with ünïcode"
    task.save()
    examples = approve(task, 80)
    export = build(task, user=lead, validation_ratio=ratio, export_format="alpaca")
    manifest = json.loads((version_folder(export) / "manifest.json").read_text())
    sides = {uuid: name.split(".")[0] for name, rows in manifest["examples"].items() for _, uuid, _, _ in rows}
    expected = {str(e.uuid): split_of(seed="seed:with ünïcode", uuid=str(e.uuid), ratio=ratio) for e in examples}
    assert sides == expected
    assert (ratio == 0) == (export.counts["validation"] == 0)


USER = {"role": "user", "content": "Hi"}
ASSISTANT = {"role": "assistant", "content": "Yo"}
EXTRA_KEY = "message 1 must have exactly role and content (differs in: name)"


@pytest.mark.parametrize(
    ("export_format", "record", "problem"),
    [
        ("openai-chat", {"messages": [USER, ASSISTANT]}, None),
        ("openai-chat", {"messages": [], "extra": 1}, "unknown keys extra"),
        ("openai-chat", {"messages": []}, "messages is not a non-empty list"),
        ("openai-chat", {"messages": [USER]}, "the last message is not the assistant's"),
        ("openai-chat", {"messages": [{"role": "bot", "content": "Hi"}]}, "message 1 has unknown role 'bot'"),
        ("openai-chat", {"messages": [USER, ASSISTANT | {"content": " "}]}, "message 2 (assistant) has empty content"),
        ("openai-chat", {"messages": [{"role": "assistant", "content": 3}]}, "message 1 content is not a string"),
        ("openai-chat", {"messages": [ASSISTANT | {"name": "n"}]}, EXTRA_KEY),
        ("openai-chat", {"messages": ["hi"]}, "message 1 is not an object"),
        ("openai-chat", {"messages": [{"role": ["user"], "content": "x"}]}, "message 1 has unknown role ['user']"),
        ("prompt-completion", {"prompt": "Q", "completion": "A"}, None),
        ("prompt-completion", {"prompt": "Q", "completion": ""}, "completion is empty"),
        ("prompt-completion", {"prompt": "Q"}, "missing keys completion"),
        ("prompt-completion", {"completion": "A", "prompt": "Q"}, "keys out of order, expected prompt, completion"),
        ("prompt-completion", {"prompt": None, "completion": "A"}, "prompt is not a string"),
        ("alpaca", {"instruction": "I", "input": "", "output": "O"}, None),
        ("alpaca", {"instruction": "I", "input": "", "output": " "}, "output is empty"),
        ("alpaca", {"instruction": "I", "input": "", "output": "O", "text": "x"}, "unknown keys text"),
        ("alpaca", [], "the record is not a JSON object"),
    ],
)  # fmt: skip
def test_record_checks(export_format, record, problem):
    assert record_problem(export_format, record) == problem


def test_a_bad_record_fails_the_export_with_ids_and_reasons(task, lead):
    good = approve(task, 5)
    empty = approve(task, 1, start=50, completion="")
    broken = approve(task, 1, start=60, messages=[{"role": "wizard", "content": "abracadabra"}])
    export = build(task, user=lead)
    assert export.state == JobState.FAILED
    assert "2 records failed the format checks; nothing was written" in export.error
    reasons = {p["example"]: p["reason"] for p in export.problems}
    assert reasons == {
        empty[0].pk: "message 2 (assistant) has empty content",
        broken[0].pk: "message 1 has unknown role 'wizard'",
    }
    assert str(empty[0].uuid) in export.error and str(good[0].uuid) not in export.error
    assert not version_folder(export).exists()
    assert not list(version_folder(export).parent.glob(".partial-*"))
    assert export.files == {} and not ExportChange.objects.filter(export=export).exists()


def test_request_refuses_bad_input_and_changes_nothing(task, lead):
    with pytest.raises(ValidationError, match="Nothing to export: no approved examples yet"):
        services.export_request(task=task, export_format="alpaca")
    approve(task, 2)
    with pytest.raises(ValidationError, match="Unknown format 'csv'"):
        services.export_request(task=task, export_format="csv")
    for ratio in (1, 1.5, -0.1, float("nan")):
        with pytest.raises(ValidationError, match="validation ratio must be at least 0 and below 1"):
            services.export_request(task=task, export_format="alpaca", validation_ratio=ratio)
    with pytest.raises(ValidationError, match="Unknown kind 'weird'"):
        services.export_request(task=task, export_format="alpaca", kinds=["weird"])
    with pytest.raises(ValidationError, match="no approved examples of those kinds"):
        services.export_request(task=task, export_format="alpaca", kinds=[Kind.AMBIGUOUS])
    assert not Export.objects.exists()


def test_kinds_filter_and_task_defaults(task, lead):
    approve(task, 20)
    task.validation_ratio = 0.3
    task.split_seed = "seed-42"
    task.save()
    export = build(task, user=lead, kinds=[Kind.NEGATIVE, Kind.EDGE])
    assert export.validation_ratio == 0.3 and export.split_seed == "seed-42"
    assert export.filters == {"status": "approved", "kinds": ["edge", "negative"]}
    assert export.counts["total"] == 10
    kinds = set(export.counts["by_kind"]["train"]) | set(export.counts["by_kind"]["validation"])
    assert kinds == {"edge", "negative"}


def test_versions_are_numbered_per_task(task, other_task, lead):
    approve(task, 3)
    approve(other_task, 3)
    assert [build(task, user=lead).version for _ in range(3)] == [1, 2, 3]
    assert build(other_task).version == 1
    assert stored_folders(task) == [
        "v1",
        "v2",
        "v3",
    ]


def test_manifest_reader_streams_what_the_writer_wrote(task, lead):
    approve(task, 25)
    export = build(task, user=lead, validation_ratio=0.3)
    manifest = json.loads((version_folder(export) / "manifest.json").read_text())
    streamed = list(services._manifest_entries(version_folder(export) / "manifest.json"))
    expected = sorted(
        (pk, uuid, content, name.split(".")[0])
        for name, rows in manifest["examples"].items()
        for pk, uuid, content, _ in rows
    )
    assert streamed == expected and len(streamed) == 25


def test_lines_are_compact_utf8_json(task, lead):
    approve(task, 1, instruction="Où est mon colis ? 📦", context="")
    export = build(task, user=lead, validation_ratio=0, export_format="alpaca")
    data = (version_folder(export) / "train.jsonl").read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert "Où est mon colis ? 📦".encode() in data  # UTF-8, not \\u escapes
    assert orjson.loads(data) == {
        "instruction": "Où est mon colis ? 📦",
        "input": "",
        "output": "It arrives in 1 days.",
    }


def test_read_ahead_yields_every_batch_and_stops_its_thread():
    import threading

    batches = [[1, 2], [3], []]
    assert list(services._read_ahead(iter(batches).__next__)) == [[1, 2], [3]]
    endless = services._read_ahead(lambda: [0] * 10)
    assert next(endless) == [0] * 10
    endless.close()  # the consumer stops early (cancel, bad record): the thread ends too
    assert not any(t.name == "export-read-ahead" for t in threading.enumerate())

    def broken():
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        list(services._read_ahead(broken))


def test_manifest_records_the_quality_warnings_of_the_examples_it_holds(task, lead):
    examples = approve(task, 6)
    Example.objects.filter(pk=examples[0].pk).update(warning_codes=",leak,short,")
    Example.objects.filter(pk=examples[1].pk).update(warning_codes=",short,")
    export = build(task, user=lead, validation_ratio=0)
    assert export.state == JobState.SUCCEEDED, export.error
    manifest = json.loads((version_folder(export) / "manifest.json").read_text())
    assert manifest["warnings"] == {"leak": 1, "short": 2}
    assert manifest["example_columns"] == ["id", "uuid", "content_hash", "warnings"]
    carried = {pk: codes for pk, _, _, codes in manifest["examples"]["train.jsonl"]}
    assert carried[examples[0].pk] == ["leak", "short"]
    assert carried[examples[1].pk] == ["short"]
    assert carried[examples[2].pk] == []


@pytest.mark.local_storage  # the object store's counterpart: tests/exports/test_object_storage.py
def test_a_dead_workers_hidden_folder_goes_with_the_next_build_once_its_version_ended(task, lead):
    approve(task, 4)
    cancelled = services.export_request(task=task, export_format="alpaca", user=lead)
    task_dir = version_folder(cancelled).parent
    left = task_dir / f".partial-v{cancelled.version}-dead0001"  # what a SIGKILLed worker leaves
    left.mkdir(parents=True)
    (left / "train.jsonl").write_text("half a")
    in_progress = services.export_request(task=task, export_format="alpaca", user=lead)
    working = task_dir / f".partial-v{in_progress.version}-busy0002"  # another worker's build, still running
    working.mkdir()
    services.export_cancel(export=cancelled, actor=lead)
    export = build(task, user=lead)
    assert export.state == JobState.SUCCEEDED, export.error
    assert not left.exists()
    assert working.exists()
