"""Reasoning written apart from the answer (a task that asks for it): each format carries it the way its trainer
documents, every record is still checked, the card says what was done, and `datasets` loads every file."""

import pytest

from exports.formats import FORMATS, PAIR_FORMATS, messages
from exports.services import record_problem

from .conftest import approve, build, read_lines, version_folder

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_hf")]

# Every kind of text the other export tests use: quotes, backslashes, line breaks, tabs, non-ASCII, emoji, markup,
# what looks like a template placeholder, and a completion that itself mentions think tags.
TRICKY = [
    ('First, the parcel left on Monday.\nSo it arrives "soon" \\ maybe.', "It arrives on Friday."),
    ("Étape 1 : vérifier le suivi 📦\tpuis répondre.", "Il arrive vendredi."),
    ("<b>bold</b> {instruction} & ampersands", "Plain <think> mention in the answer."),
    ("", "An example with no reasoning written."),
]


@pytest.fixture
def reasoning_task(task):
    task.asks_reasoning = True
    task.system_prompt = "You are the parcel bot."
    task.save()
    for i, (reasoning, completion) in enumerate(TRICKY * 5):
        approve(task, 1, start=i, reasoning=reasoning, completion=f"{completion} ({i})")
    return task


def expected_answer(export_format: str, reasoning: str, completion: str):
    """A second, independent reading of each trainer's rule: what the assistant's text (and field) must be."""
    if export_format == "messages":
        return completion, reasoning  # TRL: reasoning_content beside the content
    if not reasoning:
        return completion, None
    # LLaMA-Factory data/README.md: "<think>cot</think>output", with its default thought words.
    return "<think>\n" + reasoning + "\n</think>\n\n" + completion, None


def answer_of(export_format: str, record: dict):
    if export_format in ("openai-chat", "messages"):
        last = record["messages"][-1]
        assert last["role"] == "assistant"
        return last["content"], last.get("reasoning_content")
    if export_format == "sharegpt":
        assert record["conversations"][-1]["from"] == "gpt"
        return record["conversations"][-1]["value"], None
    return record["completion" if export_format == "prompt-completion" else "output"], None


@pytest.mark.parametrize("export_format", [name for name in FORMATS if name not in PAIR_FORMATS])  # pairs: no reasoning
def test_each_format_carries_the_reasoning_as_its_trainer_reads_it(reasoning_task, lead, tmp_path, export_format):
    from datasets import load_dataset

    export = build(reasoning_task, export_format=export_format, user=lead, validation_ratio=0.25)
    assert export.state == "succeeded", export.error
    folder = version_folder(export)
    stored = {ex.uuid.hex: ex for ex in reasoning_task.examples.all()}
    by_completion = {ex.completion: ex for ex in stored.values()}
    seen = 0
    data_files = {}
    for split in ("train", "validation"):
        records = read_lines(folder / f"{split}.jsonl")
        data_files[split] = str(folder / f"{split}.jsonl")
        for record in records:
            assert record_problem(export_format, record) is None  # the format's own check
            text, field = answer_of(export_format, record)
            completion = text.rsplit("\n</think>\n\n", 1)[-1]
            example = by_completion[completion]
            assert (text, field) == expected_answer(export_format, example.reasoning, example.completion)
            seen += 1
            if export_format == "messages":  # every record has the same keys, so the column types agree
                assert list(record["messages"][-1]) == ["role", "content", "reasoning_content"]
    assert seen == len(stored) == 20
    dataset = load_dataset("json", data_files=data_files, cache_dir=str(tmp_path / "hf-cache"))
    for split in ("train", "validation"):
        assert dataset[split].to_list() == read_lines(folder / f"{split}.jsonl")
    card = (folder / "README.md").read_text()
    assert "**Reasoning.** This task asks annotators for the reasoning" in card
    assert ("reasoning_content" if export_format == "messages" else "<think>") in card


def test_without_the_setting_the_records_are_as_before(task, lead):
    approve(task, 4, reasoning="Stored but not asked for.")
    export = build(task, export_format="messages", user=lead, validation_ratio=0)
    records = read_lines(version_folder(export) / "train.jsonl")
    assert all(list(r["messages"][-1]) == ["role", "content"] for r in records)
    assert "**Reasoning.**" not in (version_folder(export) / "README.md").read_text()
    export = build(task, export_format="sharegpt", user=lead, validation_ratio=0)
    records = read_lines(version_folder(export) / "train.jsonl")
    assert not any("<think>" in r["conversations"][-1]["value"] for r in records)


@pytest.mark.parametrize("export_format", ["openai-chat", "prompt-completion", "alpaca", "sharegpt"])
def test_a_reasoning_holding_a_closing_tag_fails_the_inline_formats_naming_the_example(task, lead, export_format):
    task.asks_reasoning = True
    task.save()
    approve(task, 3, reasoning="Fine reasoning.")
    (bad,) = approve(task, 1, start=10, reasoning="Step one </think> and more")
    export = build(task, export_format=export_format, user=lead, validation_ratio=0)
    assert export.state == "failed"
    assert str(bad.uuid) in export.error or str(bad.pk) in export.error
    assert "</think>" in export.error
    # messages keeps the reasoning in a field of its own: nothing there can end it early
    assert build(task, export_format="messages", user=lead, validation_ratio=0).state == "succeeded"


def test_the_messages_check_refuses_a_reasoning_that_is_not_a_string_or_not_the_assistants():
    good = {
        "messages": [
            {"role": "user", "content": "Where?"},
            {"role": "assistant", "content": "Here.", "reasoning_content": "Because."},
        ]
    }
    assert messages.problem(good) is None
    bad_type = {"messages": [good["messages"][0], {**good["messages"][1], "reasoning_content": 3}]}
    assert "reasoning_content must be a string" in messages.problem(bad_type)
    on_user = {"messages": [{**good["messages"][0], "reasoning_content": "x"}, good["messages"][1]]}
    assert "must have exactly role and content" in messages.problem(on_user)
    # the other chat format has no such field: a reasoning_content there breaks its rules
    assert "must have exactly role and content" in FORMATS["openai-chat"].problem(good)
