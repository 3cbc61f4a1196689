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
A system turn anywhere but first cannot be expressed here and fails the export.

Tools tasks (same README, the `tools` column and the function_call/observation tags; dataset_info.json maps
`"tools": "tools"`): `tools` is a JSON string of the function objects (`{"name", "description", "parameters"}`); an
assistant turn that calls is a `function_call` turn whose value is the JSON of `{"name", "arguments"}` (a list of
them for parallel calls); the results of one turn's calls are one `observation` turn (its text, or the JSON list of
the texts for several). What the format cannot express fails the export naming the examples: text and calls in one
assistant turn, a user turn right after a tool result.
"""

from collections.abc import Mapping

import orjson

from annotate.rendering import TemplateSpec

from ._rules import (
    INLINE_REASONING,
    LineRenderer,
    Renderer,
    chat_chars,
    chat_lines,
    chat_turns,
    keys_problem,
    text_ok,
    with_thinking,
)
from ._tools import arguments_text, refuse_reasoning, tool_turns

NAME = "sharegpt"
LABEL = "ShareGPT (LLaMA-Factory)"
RECORD_KEYS = ("conversations", "system")
TEMPLATE_TEXT = "chat_user_format"
USES_TURNS = True
TOOLS = True  # renders a tools task's calls and results (exports/formats/_tools.py)
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


TOOL_RECORD_KEYS = ("conversations", "system", "tools")
BOTH = "gpt+function_call"  # an assistant turn with text and calls: no tag says it (the check names it)


def _call_value(calls: list[dict]) -> str:
    shown = [{"name": call["name"], "arguments": call["arguments"]} for call in calls]
    return arguments_text(shown[0] if len(shown) == 1 else shown)


def _tool_renderer(spec: TemplateSpec) -> Renderer:
    turns = tool_turns(spec)
    tools = arguments_text([definition["function"] for definition in spec.tools or ()])

    def render(
        fields: Mapping[str, str], completion: str, messages: list | None = None, reasoning: str | None = None
    ) -> dict:
        refuse_reasoning(reasoning)
        system, conversation = turns(fields, completion, messages)
        out: list[dict] = []
        results: list[str] = []
        for turn in [*conversation, None]:
            if turn is not None and turn["role"] == "tool":
                results.append(turn["content"])
                continue
            if results:
                value = results[0] if len(results) == 1 else arguments_text(results)
                out.append({"from": "observation", "value": value})
                results = []
            if turn is None:
                break
            if turn.get("tool_calls"):
                tag = BOTH if turn["content"] else "function_call"
                out.append({"from": tag, "value": _call_value(turn["tool_calls"])})
            else:
                out.append({"from": TAGS.get(turn["role"], turn["role"]), "value": turn["content"]})
        return {"conversations": out, "system": system, "tools": tools}

    return render


def renderer(spec: TemplateSpec) -> Renderer:
    if spec.tools is not None:
        return _tool_renderer(spec)
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


def line_renderer(spec: TemplateSpec) -> LineRenderer | None:
    """The JSON line of a plain record without building it (_rules.chat_lines), or None for a tools task."""
    return chat_lines(
        spec,
        frame=lambda system: (b'{"conversations":[', b'}],"system":' + orjson.dumps(system) + b"}"),
        user=b'{"from":"human","value":',
        assistant=b'},{"from":"gpt","value":',
    )


def record_ok(record) -> bool:
    if record.__class__ is not dict or record.get("system").__class__ is not str:
        return False
    if len(record) == 3:
        if record.get("tools").__class__ is not str or tuple(record) != TOOL_RECORD_KEYS:
            return False
    elif len(record) != 2 or tuple(record) != RECORD_KEYS:
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
    return True


def problem(record) -> str | None:
    if record_ok(record):
        return None
    tools = isinstance(record, dict) and "tools" in record
    found = keys_problem(record, TOOL_RECORD_KEYS if tools else RECORD_KEYS)
    if found:
        return found
    if tools and not isinstance(record["tools"], str):
        return "tools is not a JSON string"
    if not isinstance(record["system"], str):
        return "system is not a string"
    turns = record["conversations"]
    if not isinstance(turns, list) or not turns:
        return "conversations is not a non-empty list"
    for position, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            return f"turn {position} is not an object"
        if turn.get("from") == BOTH:
            return (
                f"turn {position}: the assistant says something and calls a tool in one turn, which LLaMA-Factory's "
                "sharegpt cannot express (a function_call turn holds only calls)"
            )
        if turn.get("from") == "human" and position > 1 and turns[position - 2].get("from") == "observation":
            return (
                f"turn {position}: a user turn right after a tool result, which LLaMA-Factory's sharegpt cannot "
                "express (an observation must be followed by the model's turn)"
            )
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


def extra_files(*, dataset: str, splits: Mapping[str, str], tools: bool = False, **_) -> dict[str, bytes]:
    """dataset_info.json: one LLaMA-Factory dataset per non-empty split file, named `<dataset>_<split>` (with the
    tools column for a tools task)."""
    columns = {"messages": "conversations", "system": "system", **({"tools": "tools"} if tools else {})}
    info = {
        f"{dataset}_{split}": {
            "file_name": name,
            "formatting": "sharegpt",
            "columns": columns,
        }
        for split, name in splits.items()
    }
    return {"dataset_info.json": orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n"}
