"""The exported files load with Hugging Face `datasets`, as the dataset card says they do."""

import pytest

from exports import services
from exports.services import record_problem

from .conftest import approve, build, read_lines, version_folder

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_hf")]


@pytest.mark.parametrize("export_format", ["openai-chat", "prompt-completion", "alpaca"])
def test_exported_files_load_with_hf_datasets(task, lead, tmp_path, export_format):
    from datasets import load_dataset

    task.system_prompt = "You are the parcel bot."
    task.save()
    approve(task, 60)
    approve(task, 3, start=100, messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    export = build(task, export_format=export_format, user=lead, validation_ratio=0.2)
    folder = version_folder(export)
    data_files = {"train": str(folder / "train.jsonl"), "validation": str(folder / "validation.jsonl")}
    dataset = load_dataset("json", data_files=data_files, cache_dir=str(tmp_path / "hf-cache"))
    for split in ("train", "validation"):
        records = read_lines(folder / f"{split}.jsonl")
        assert dataset[split].num_rows == len(records) == export.counts[split] > 0
        assert dataset[split].column_names == list(services.RECORD_KEYS[export_format])
        assert dataset[split].to_list() == records
        for record in records:
            assert record_problem(export_format, record) is None
    if export_format == "openai-chat":
        roles = {tuple(m["role"] for m in row["messages"]) for row in dataset["train"]}
        assert ("system", "user", "assistant") in roles


@pytest.mark.parametrize("export_format", ["openai-chat", "messages", "prompt-completion", "alpaca", "sharegpt"])
def test_every_file_and_the_folder_load_with_their_splits(task, lead, tmp_path, export_format):
    """`load_dataset(<folder>)` reads the card's YAML header: train, validation and test, nothing else (not the
    manifest, not dataset_info.json); each file loads alone too, with exactly the format's columns."""
    from datasets import load_dataset

    from .test_formats import TRICKY, TURNS

    task.system_prompt = "Sys ✓"
    task.save()
    approve(task, 60)
    for i, values in enumerate(TRICKY):
        approve(task, 1, start=200 + i, **values)
    approve(task, 2, start=300, messages=TURNS)
    export = build(task, export_format=export_format, user=lead, validation_ratio=0.2, test_ratio=0.15)
    folder = version_folder(export)
    folder_dataset = load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache-folder"))
    assert sorted(folder_dataset) == ["test", "train", "validation"]
    for split in ("train", "validation", "test"):
        records = read_lines(folder / f"{split}.jsonl")
        assert folder_dataset[split].to_list() == records
        assert folder_dataset[split].num_rows == export.counts[split] > 0
        alone = load_dataset("json", data_files=str(folder / f"{split}.jsonl"), cache_dir=str(tmp_path / split))
        assert alone["train"].column_names == list(services.RECORD_KEYS[export_format])
        assert alone["train"].to_list() == records


def test_a_folder_without_a_test_split_loads_train_and_validation(task, lead, tmp_path):
    from datasets import load_dataset

    approve(task, 30)
    export = build(task, export_format="messages", user=lead, validation_ratio=0.3)
    dataset = load_dataset(str(version_folder(export)), cache_dir=str(tmp_path / "hf-cache"))
    assert sorted(dataset) == ["train", "validation"]
    assert not (version_folder(export) / "test.jsonl").exists()
