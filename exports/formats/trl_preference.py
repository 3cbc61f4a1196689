"""TRL's preference format for its DPO trainer, conversational with an explicit prompt:
`{"prompt": [messages], "chosen": [assistant message], "rejected": [assistant message]}`.

Rules: TRL documentation, "Dataset formats and types" (preference: conversational, explicit prompt; the prompt is
the list of messages before the completion, chosen and rejected each a list holding the assistant's message), and
the DPO trainer's "Expected dataset type" (preference). Checked here: exactly these three keys; the prompt's turns
valid (role and content, known role, non-empty text), the last one the user's; each side exactly one assistant
message with non-empty text.

Tools tasks: the record adds `tools`, and a side may call the task's functions, as TRL's "Dataset formats and types
› Tool calling" writes an assistant turn (`tool_calls: [{"type": "function", "function": {"name", "arguments"}}]`,
no ids); arguments, and `tools`, are JSON objects when every version of the task fits one Arrow type, else JSON
text, as the `messages` format writes them. A side that calls keeps `content` ("" when it says nothing): TRL's
`is_conversational` (trl/data_utils.py) reads role and content on the first message of a column it picks, so a
side without content could make the whole record look non-conversational. TRL's DPO trainer applies the chat
template with the tools of `DPOConfig(tools=...)` (`maybe_apply_chat_template(..., tools=args.tools)` in its
dataset preparation), not with a column: pass it the task's `tools` (the card says so).
"""

from collections.abc import Mapping

from annotate.rendering import TemplateSpec

from ._pairs import (
    pair_lines,
    prompt_and_sides,
    prompt_ok,
    prompt_problem,
    side_ok,
    side_problem,
    stored_calls,
    tool_side_problem,
)
from ._rules import chat_chars, keys_problem
from ._tools import arguments_text, refuse_reasoning

NAME = "trl-preference"
LABEL = "TRL preference (DPO)"
PAIRS = True  # records are preference pairs, not examples
RECORD_KEYS = ("prompt", "chosen", "rejected")
TEMPLATE_TEXT = "chat_user_format"
USES_TURNS = True
EXTRA_FILES: tuple[str, ...] = ()
SHAPE = (
    '{"prompt": [{"role": "system", "content": …}, {"role": "user", "content": …}], '
    '"chosen": [{"role": "assistant", "content": …}], "rejected": [{"role": "assistant", "content": …}]}'
)
EXAMPLE = {
    "prompt": [{"role": "user", "content": "Where is my parcel?"}],
    "chosen": [{"role": "assistant", "content": "On its way: it arrives tomorrow."}],
    "rejected": [{"role": "assistant", "content": "No idea."}],
}
RULES = "TRL documentation, “Dataset formats and types” (preference, conversational, explicit prompt)"


TOOLS = True  # renders a tools task's calls (see above)
TOOL_RECORD_KEYS = ("prompt", "chosen", "rejected", "tools")


def renderer(spec: TemplateSpec):
    if spec.tools is not None:
        return _tool_renderer(spec)
    render = prompt_and_sides(spec)

    def record(fields, completion, messages=None, reasoning=None) -> dict:  # a pair has no reasoning
        prompt, chosen, rejected = render(fields, completion, messages)
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}

    return record


def line_renderer(spec: TemplateSpec):
    """The JSON line of a plain pair without building the record (_pairs.pair_lines), or None for a tools task."""
    return pair_lines(
        spec,
        head=b'{"prompt":[',
        middle=b'}],"chosen":[{"role":"assistant","content":',
        rejected_key=b'}],"rejected":[{"role":"assistant","content":',
        tail=b"}]}",
    )


def _tool_renderer(spec: TemplateSpec):
    as_objects = spec.arguments_as_objects
    tools = spec.tools if spec.tools_as_objects else arguments_text(spec.tools)

    def side(text: str) -> dict:
        content, calls = stored_calls(text)
        if not calls:
            return {"role": "assistant", "content": content}
        return {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": call["arguments"] if as_objects else arguments_text(call["arguments"]),
                    },
                }
                for call in calls
            ],
        }

    render = prompt_and_sides(spec, side)

    def record(fields, completion, messages=None, reasoning=None) -> dict:
        refuse_reasoning(reasoning)
        prompt, chosen, rejected = render(fields, completion, messages)
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "tools": tools}

    return record


def _tool_problem(record: dict) -> str | None:
    return (
        keys_problem(record, TOOL_RECORD_KEYS)
        or (not isinstance(record["tools"], list | str) and "tools must be a list (or its JSON text)")
        or prompt_problem("prompt", record["prompt"])
        or tool_side_problem("chosen", record["chosen"], style="trl")
        or tool_side_problem("rejected", record["rejected"], style="trl")
        or None
    )


def record_ok(record) -> bool:
    if record.__class__ is dict and len(record) == 4:
        return _tool_problem(record) is None
    return (
        record.__class__ is dict
        and len(record) == 3
        and prompt_ok(record.get("prompt"))
        and side_ok(record.get("chosen"))
        and side_ok(record.get("rejected"))
    )


def problem(record) -> str | None:
    if isinstance(record, dict) and "tools" in record:
        return _tool_problem(record)
    if record_ok(record):
        return None
    return (
        keys_problem(record, RECORD_KEYS)
        or prompt_problem("prompt", record["prompt"])
        or side_problem("chosen", record["chosen"])
        or side_problem("rejected", record["rejected"])
        or f"not a {NAME} record"
    )


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return chat_chars(spec, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
