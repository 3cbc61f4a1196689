"""The card's "Train with ..." section: a minimal, generated starting config for TRL, Axolotl and LLaMA-Factory that
reads this version's files with this format's columns. Everything here is generated from the format and the split
files; the only user text is the task's slug (letters, digits, - and _: a SlugField), and every block goes through
card.fenced, whose fence no text inside can close."""

import orjson

from .models import Export

# How each trainer reads each format: TRL (SFTTrainer reads "messages" and "prompt"/"completion" columns as they are;
# other shapes are mapped first), Axolotl (the dataset `type`), LLaMA-Factory (a dataset_info.json entry).
_TRL_MAP = {
    "alpaca": 'dataset = dataset.map(\n    lambda r: {"prompt": r["instruction"] + "\\n\\n" + r["input"], '
    '"completion": r["output"]},\n    remove_columns=["instruction", "input", "output"],\n)\n',
    "sharegpt": 'roles = {"human": "user", "gpt": "assistant"}\ndataset = dataset.map(\n    lambda r: '
    '{"messages": ([{"role": "system", "content": r["system"]}] if r["system"] else [])\n'
    '    + [{"role": roles[t["from"]], "content": t["value"]} for t in r["conversations"]]},\n'
    '    remove_columns=["conversations", "system"],\n)\n',
}
_AXOLOTL_TYPE = {
    "openai-chat": "    type: chat_template\n    field_messages: messages\n"
    "    message_property_mappings:\n      role: role\n      content: content\n",
    "messages": "    type: chat_template\n    field_messages: messages\n"
    "    message_property_mappings:\n      role: role\n      content: content\n",
    "sharegpt": "    type: chat_template\n    field_messages: conversations\n"
    "    message_property_mappings:\n      role: from\n      content: value\n",
    "alpaca": "    type: alpaca\n",
    "prompt-completion": "    type:\n      field_instruction: prompt\n      field_output: completion\n"
    '      format: "{instruction}"\n      no_input_format: "{instruction}"\n',
}
_FACTORY_ENTRY = {
    "openai-chat": {
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    },
    "alpaca": {"columns": {"prompt": "instruction", "query": "input", "response": "output"}},
    "prompt-completion": {"columns": {"prompt": "prompt", "response": "completion"}},
}
_FACTORY_ENTRY["messages"] = _FACTORY_ENTRY["openai-chat"]
# Preference formats train with TRL's DPOTrainer, which reads prompt/chosen/rejected as they are.
_DPO_MAP = {
    "trl-preference": "",
    "openai-preference": 'dataset = dataset.map(\n    lambda r: {"prompt": r["input"]["messages"], '
    '"chosen": r["preferred_output"], "rejected": r["non_preferred_output"]},\n'
    '    remove_columns=["input", "preferred_output", "non_preferred_output"],\n)\n',
}


# LLaMA-Factory and reasoning data (its data/README.md, the tip on reasoning models, and DataArguments.enable_thinking
# in src/llamafactory/hparams/data_args.py): a reasoning template (`qwen3`, not `qwen3_nothink`: README.md, "Supported
# Models") reads the `<think>…</think>` before the answer as the chain of thought. `enable_thinking: true` ("slow
# thinking", its default) keeps that CoT in the response and computes the loss on it; `false` removes every CoT from
# the data (ReasoningTemplate.encode_oneturn/encode_multiturn). A response without CoT gets an empty one added, in the
# response (true) or in the prompt (false). Set explicitly, so that a config copied from a non-reasoning run cannot
# silently drop the reasoning; the same value is to be used at inference.
_FACTORY_THINKING = "enable_thinking: true\n"
_FACTORY_THINKING_NOTE = (
    "\n**Reasoning with LLaMA-Factory.** The answers of this version hold the reasoning inline "
    "(`<think>` … `</think>` before the answer), which is the chain-of-thought data LLaMA-Factory documents "
    "(its `data/README.md`). The config sets `enable_thinking: true` (slow thinking): the reasoning stays in the "
    "response and is trained on, while `false` would remove it from every example. Choose the model's reasoning "
    "template (for example `qwen3`, not `qwen3_nothink`), and keep `enable_thinking` the same at inference. An "
    "example with no reasoning written gets an empty `<think></think>` added to its response by LLaMA-Factory.\n"
)
_FACTORY_UNREAD_NOTE = (
    "\n**Reasoning with LLaMA-Factory.** In `messages` the reasoning is each answer's `reasoning_content`, which "
    "LLaMA-Factory's dataset reader does not read (it takes `role` and `content`): trained this way, the model learns "
    "the answers without their reasoning. To train the reasoning with LLaMA-Factory, export `openai-chat` or "
    "`sharegpt` (the reasoning inline, in `<think>` … `</think>`), whose config sets `enable_thinking: true`.\n"
)


def _factory_thinking(export: Export) -> tuple[str, str]:
    """The LLaMA-Factory config line for reasoning data (or "") and the card's note on it (or "")."""
    if not export.task.asks_reasoning:
        return "", ""
    if export.format == "messages":  # reasoning_content: not in what LLaMA-Factory reads
        return "", _FACTORY_UNREAD_NOTE
    return _FACTORY_THINKING, _FACTORY_THINKING_NOTE


def _preference_section(*, export: Export, splits: list[str]) -> str:
    """Markdown: how to train on a preference version with TRL's DPO trainer (and, for openai-preference, where the
    file goes in OpenAI's fine-tuning)."""
    from .card import fenced

    folder = f"{export.task.slug}/v{export.version}"
    data_files = ", ".join(f'"{split}": "{folder}/{split}.jsonl"' for split in splits)
    evaluation = "validation" if "validation" in splits else None
    # A tools task: TRL's DPO trainer applies the chat template with DPOConfig's tools, not a column of the file.
    tools = export.task.output_format == "tools"
    where = '["input"]["tools"]' if export.format == "openai-preference" else '["tools"]'
    read_tools = (
        f'import json\n\nwith open("{folder}/train.jsonl") as records:\n'
        f"    tools = json.loads(records.readline()){where}\n"
        "if isinstance(tools, str):  # JSON text when the task's tool sets do not fit one type\n"
        "    tools = json.loads(tools)\n"
        if tools
        else ""
    )
    trl = (
        read_tools + "from datasets import load_dataset\nfrom trl import DPOConfig, DPOTrainer\n\n"
        f'dataset = load_dataset("json", data_files={{{data_files}}})\n'
        + _DPO_MAP[export.format]
        + 'trainer = DPOTrainer(\n    model="<model after SFT>",\n'
        + f'    args=DPOConfig(output_dir="out"{", tools=tools" if tools else ""}),\n'
        '    train_dataset=dataset["train"],\n'
        + (f'    eval_dataset=dataset["{evaluation}"],\n' if evaluation else "")
        + ")\ntrainer.train()"
    )
    openai = (
        "For OpenAI's fine-tuning, upload `train.jsonl` (and `validation.jsonl`) as the files of a job whose method "
        "is `dpo`.\n\n"
        if export.format == "openai-preference"
        else ""
    )
    test_note = "\n`test.jsonl` is held out: evaluate on it once.\n" if "test" in splits else ""
    return (
        "## Train with DPO\n\nA minimal starting point generated for this format; fill in the model (usually the "
        "one fine-tuned on this task's SFT export).\n\n" + fenced("TRL (Python)", trl) + openai + test_note
    )


def trainer_section(*, export: Export, splits: list[str]) -> str:
    """Markdown: how to train on this version with TRL, Axolotl and LLaMA-Factory (`splits`: the non-empty ones)."""
    from .card import fenced  # the card module imports this one

    fmt = export.format
    if fmt in _DPO_MAP:
        return _preference_section(export=export, splits=splits)
    name = export.task.slug.replace("-", "_")
    folder = f"{export.task.slug}/v{export.version}"
    data_files = ", ".join(f'"{split}": "{folder}/{split}.jsonl"' for split in splits)
    evaluation = "validation" if "validation" in splits else None
    trl = (
        "from datasets import load_dataset\nfrom trl import SFTConfig, SFTTrainer\n\n"
        f'dataset = load_dataset("json", data_files={{{data_files}}})\n'
        + _TRL_MAP.get(fmt, "")
        + 'trainer = SFTTrainer(\n    model="<base model>",\n    args=SFTConfig(output_dir="out"),\n'
        '    train_dataset=dataset["train"],\n'
        + (f'    eval_dataset=dataset["{evaluation}"],\n' if evaluation else "")
        + ")\ntrainer.train()"
    )
    axolotl = (
        f"base_model: <base model>\ndatasets:\n  - path: {folder}/train.jsonl\n    ds_type: json\n" + _AXOLOTL_TYPE[fmt]
    )
    if evaluation:
        axolotl += f"test_datasets:\n  - path: {folder}/validation.jsonl\n    ds_type: json\n    split: train\n"
        axolotl += _AXOLOTL_TYPE[fmt]
    axolotl += "output_dir: ./out"
    thinking, thinking_note = _factory_thinking(export)
    factory = (
        f"model_name_or_path: <base model>\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
        f"template: <the model's {'reasoning ' if thinking else ''}template>\n{thinking}"
        f"dataset_dir: {folder}\ndataset: {name}_train\n"
        + (f"eval_dataset: {name}_validation\n" if evaluation else "")
        + "output_dir: out"
    )
    if fmt in _FACTORY_ENTRY:
        entries = {f"{name}_{split}": {"file_name": f"{split}.jsonl", **_FACTORY_ENTRY[fmt]} for split in splits}
        info = orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode()
        factory_files = (
            "LLaMA-Factory reads datasets named in a `dataset_info.json` of `dataset_dir`; save this one beside the "
            "files (the `sharegpt` format writes it for you):\n\n" + fenced("dataset_info.json", info)
        )
    else:
        factory_files = "The `dataset_info.json` beside the files names each split for LLaMA-Factory.\n\n"
    test_note = (
        "\n`test.jsonl` is held out: train and tune on the other splits only, and evaluate on it once.\n"
        if "test" in splits
        else ""
    )
    return (
        "## Train with open trainers\n\nMinimal starting points generated for this format; fill in the model.\n\n"
        + fenced("TRL (Python)", trl)
        + fenced("Axolotl (config.yaml)", axolotl)
        + factory_files
        + fenced("LLaMA-Factory (train.yaml)", factory)
        + thinking_note
        + test_note
    )
