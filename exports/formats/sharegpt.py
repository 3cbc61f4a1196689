"""LLaMA-Factory's ShareGPT format: `{"conversations": [{"from", "value"}, ...], "system": ...}`, with the
`dataset_info.json` that names the files for LLaMA-Factory, written beside them.

Rules: LLaMA-Factory data/README.md, "Sharegpt Format › Supervised Fine-Tuning Dataset": the turns are a list of
`{"from", "value"}` objects under `conversations`; `human` and `observation` turns stand at odd positions, `gpt` and
`function_call` turns at even ones (LLaMA-Factory's converter skips any example that breaks this, and one whose
number of turns is odd, logging a warning but training on nothing: a silent loss, so the export refuses it instead);
the system prompt is the `system` column, not a turn; a `dataset_info.json` entry names the file, `"formatting":
"sharegpt"` and the columns. Checked here: exactly `conversations` then `system`; each turn exactly `from` and
`value`, non-empty text, the tag its position allows; an even number of turns, so the last is the model's.

`system` is in every record, empty when the example has none: LLaMA-Factory then uses its template's default system
prompt, as it does when the column is absent, and every record of a file has the same keys, so `datasets` loads it.
A system turn anywhere but first cannot be expressed here and fails the export. Tool tasks will add `tools` (a JSON
string) and `function_call`/`observation` turns (another issue); the position rule already accepts those tags.
"""

from collections.abc import Mapping

import orjson

from annotate.rendering import TemplateSpec

from ._rules import INLINE_REASONING, Renderer, chat_chars, chat_turns, keys_problem, text_ok, with_thinking

NAME = "sharegpt"
LABEL = "ShareGPT (LLaMA-Factory)"
RECORD_KEYS = ("conversations", "system")
TEMPLATE_TEXT = "chat_user_format"
USES_TURNS = True
EXTRA_FILES = ("dataset_info.json",)
SHAPE = '{"conversations": [{"from": "human", "value": …}, {"from": "gpt", "value": …}], "system": …}'
EXAMPLE = {
    "conversations": [{"from": "human", "value": "Where is my parcel?"}, {"from": "gpt", "value": "On its way."}],
    "system": "",
}
RULES = (
    "LLaMA-Factory data/README.md, “Sharegpt Format” (human/observation at odd positions, gpt/function_call at even)"
)

REASONING = INLINE_REASONING  # LLaMA-Factory's own rule: in the gpt turn's value

TAGS = {"user": "human", "assistant": "gpt"}  # roles of a chat turn -> ShareGPT tags; tool turns come with tool tasks
ODD = frozenset({"human", "observation"})  # positions 1, 3, 5, ... (counted from 1)
EVEN = frozenset({"gpt", "function_call"})


def renderer(spec: TemplateSpec) -> Renderer:
    chat = chat_turns(spec)

    def render(
        fields: Mapping[str, str], completion: str, messages: list | None = None, reasoning: str | None = None
    ) -> dict:
        turns = chat(fields, with_thinking(completion, reasoning), messages)
        system = ""
        if turns[0]["role"] == "system":
            system = turns[0]["content"]
            turns = turns[1:]
        # A role without a tag (a system turn later on) keeps its name, so that the check names what is wrong.
        conversations = [{"from": TAGS.get(turn["role"], turn["role"]), "value": turn["content"]} for turn in turns]
        return {"conversations": conversations, "system": system}

    return render


def record_ok(record) -> bool:
    if record.__class__ is not dict or len(record) != 2 or record.get("system").__class__ is not str:
        return False
    turns = record.get("conversations")
    if turns.__class__ is not list or not turns or len(turns) % 2:
        return False
    for position, turn in enumerate(turns):
        if turn.__class__ is not dict or len(turn) != 2:
            return False
        tag, value = turn.get("from"), turn.get("value")
        if tag.__class__ is not str or tag not in (EVEN if position % 2 else ODD):
            return False
        if value.__class__ is not str or not value or value.isspace():
            return False
    return tuple(record) == RECORD_KEYS


def problem(record) -> str | None:
    if record_ok(record):
        return None
    found = keys_problem(record, RECORD_KEYS)
    if found:
        return found
    if not isinstance(record["system"], str):
        return "system is not a string"
    turns = record["conversations"]
    if not isinstance(turns, list) or not turns:
        return "conversations is not a non-empty list"
    for position, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            return f"turn {position} is not an object"
        if set(turn) != {"from", "value"}:
            keys = ", ".join(sorted(set(turn) ^ {"from", "value"}))
            return f"turn {position} must have exactly from and value (differs in: {keys})"
        allowed = ODD if position % 2 else EVEN
        if turn["from"] not in allowed:
            where = "odd" if position % 2 else "even"
            return (
                f"turn {position} is from {turn['from']!r}; at an {where} position LLaMA-Factory takes only "
                f"{' or '.join(sorted(allowed))}"
            )
        if not text_ok(turn["value"]):
            return f"turn {position} ({turn['from']}) has empty value"
    if len(turns) % 2:
        return f"{len(turns)} turns: LLaMA-Factory needs an even number, ending with the model's (gpt) turn"
    return f"not a {NAME} record"


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return chat_chars(spec, fields)


def extra_files(*, dataset: str, splits: Mapping[str, str], **_) -> dict[str, bytes]:
    """dataset_info.json: one LLaMA-Factory dataset per non-empty split file, named `<dataset>_<split>`."""
    info = {
        f"{dataset}_{split}": {
            "file_name": name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
        }
        for split, name in splits.items()
    }
    return {"dataset_info.json": orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n"}
