"""The exported files load with Hugging Face `datasets`, as the dataset card says they do."""

import pytest

from exports import services
from exports.services import record_problem

from .conftest import approve, build, read_lines

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _offline_hf(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


@pytest.mark.parametrize("export_format", ["openai-chat", "prompt-completion", "alpaca"])
def test_exported_files_load_with_hf_datasets(task, lead, tmp_path, export_format):
    from datasets import load_dataset

    task.system_prompt = "You are the parcel bot."
    task.save()
    approve(task, 60)
    approve(task, 3, start=100, messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    export = build(task, export_format=export_format, user=lead, validation_ratio=0.2)
    folder = services.export_dir(export)
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
