"""The card's generated starting configs for TRL, Axolotl and LLaMA-Factory: valid YAML/JSON/Python that reads this
version's files with this format's columns, inside fences nothing can close."""

import ast
import json

import pytest
import yaml
from markdown_it import MarkdownIt

from exports import services

from .conftest import approve, build, version_folder

pytestmark = pytest.mark.django_db

HUB = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
AXOLOTL_TYPE = {
    "openai-chat": ("chat_template", "messages", {"role": "role", "content": "content"}),
    "messages": ("chat_template", "messages", {"role": "role", "content": "content"}),
    "sharegpt": ("chat_template", "conversations", {"role": "from", "content": "value"}),
}


def fences(card: str) -> dict[str, str]:
    """Each fenced block of the card, by the title line before it."""
    tokens = HUB.parse(card)
    blocks = {}
    for i, token in enumerate(tokens):
        if token.type == "fence" and i >= 2 and tokens[i - 2].type == "inline":
            blocks[tokens[i - 2].content.rstrip(":")] = token.content
    return blocks


@pytest.mark.parametrize("export_format", ["openai-chat", "messages", "prompt-completion", "alpaca", "sharegpt"])
def test_card_gives_trainer_configs_for_this_format_and_its_splits(task, lead, export_format):
    approve(task, 60)
    export = build(task, export_format=export_format, user=lead, validation_ratio=0.2, test_ratio=0.1)
    folder = version_folder(export)
    blocks = fences((folder / "README.md").read_text())
    ast.parse(blocks["TRL (Python)"])  # runnable Python, given the packages
    assert '"test": "support/v1/test.jsonl"' in blocks["TRL (Python)"]
    axolotl = yaml.safe_load(blocks["Axolotl (config.yaml)"])
    (dataset,) = axolotl["datasets"]
    assert dataset["path"] == "support/v1/train.jsonl" and dataset["ds_type"] == "json"
    assert axolotl["test_datasets"][0]["path"] == "support/v1/validation.jsonl"
    if export_format in AXOLOTL_TYPE:
        kind, field, mapping = AXOLOTL_TYPE[export_format]
        assert (dataset["type"], dataset["field_messages"], dataset["message_property_mappings"]) == (
            kind, field, mapping
        )  # fmt: skip
    factory = yaml.safe_load(blocks["LLaMA-Factory (train.yaml)"])
    assert (factory["dataset_dir"], factory["dataset"], factory["eval_dataset"]) == (
        "support/v1", "support_train", "support_validation"
    )  # fmt: skip
    if export_format == "sharegpt":
        assert "dataset_info.json" not in blocks  # written beside the files instead
        info = json.loads((folder / "dataset_info.json").read_text())
    else:
        info = json.loads(blocks["dataset_info.json"])
    assert set(info) == {"support_train", "support_validation", "support_test"}
    assert info["support_test"]["file_name"] == "test.jsonl"
    columns = set(services.RECORD_KEYS[export_format])
    named = {column for entry in info.values() for column in entry.get("columns", {}).values()}
    assert named <= columns  # every column LLaMA-Factory is told about exists in the records


@pytest.mark.parametrize("export_format", ["openai-chat", "sharegpt", "alpaca", "prompt-completion"])
def test_with_inline_reasoning_the_llama_factory_config_enables_thinking_and_says_why(task, lead, export_format):
    task.asks_reasoning = True
    task.save()
    approve(task, 3, reasoning="First check the tracking page.")
    export = build(task, export_format=export_format, user=lead)
    card = (version_folder(export) / "README.md").read_text()
    factory = yaml.safe_load(fences(card)["LLaMA-Factory (train.yaml)"])
    # LLaMA-Factory data/README.md: enable_thinking true keeps the CoT in the response; false removes it.
    assert factory["enable_thinking"] is True
    assert factory["template"] == "<the model's reasoning template>"
    assert "**Reasoning with LLaMA-Factory.**" in card
    assert "sets `enable_thinking: true` (slow thinking)" in card
    assert "not `qwen3_nothink`" in card
    assert "keep `enable_thinking` the same at inference" in card
    lines = (version_folder(export) / "train.jsonl").read_text().split("\n")[:-1]
    assert lines and all("<think>\\nFirst check the tracking page.\\n</think>" in line for line in lines)


def test_with_reasoning_in_messages_the_card_says_llama_factory_does_not_read_it(task, lead):
    task.asks_reasoning = True
    task.save()
    approve(task, 3, reasoning="First check the tracking page.")
    export = build(task, export_format="messages", user=lead)
    card = (version_folder(export) / "README.md").read_text()
    factory = yaml.safe_load(fences(card)["LLaMA-Factory (train.yaml)"])
    assert "enable_thinking" not in factory  # the data it reads holds no CoT: nothing to keep
    assert "`reasoning_content`, which LLaMA-Factory's dataset reader does not read" in card
    assert "export `openai-chat` or `sharegpt`" in card


@pytest.mark.parametrize("export_format", ["openai-chat", "messages", "sharegpt"])
def test_without_reasoning_the_llama_factory_config_is_as_before(task, lead, export_format):
    approve(task, 3)
    export = build(task, export_format=export_format, user=lead)
    card = (version_folder(export) / "README.md").read_text()
    factory = yaml.safe_load(fences(card)["LLaMA-Factory (train.yaml)"])
    assert "enable_thinking" not in factory
    assert factory["template"] == "<the model's template>"
    assert "Reasoning with LLaMA-Factory" not in card
