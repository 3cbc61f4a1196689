"""OpenAI-style chat fine-tuning (also read by Together and Fireworks): `{"messages": [...]}`.

Rules: OpenAI's fine-tuning guide, "Preparing your dataset" (each line a conversation of `system`, `user` and
`assistant` messages with `role` and `content`; the assistant's messages are what the model learns). Checked here:
exactly the key `messages`; each message exactly `role` and `content`, a known role and non-empty text; the last
message is the assistant's (the completion).

Tools tasks (OpenAI's guide, "Fine-tuning for function calling" / "Preparing your dataset" with `tools`): the record
adds `tools` (the function definitions as the task defines them) and `parallel_tool_calls`; an assistant turn that
calls holds `tool_calls: [{"id", "type": "function", "function": {"name", "arguments": <a JSON string>}}]` (and
`content` only when it also says something); each result is `{"role": "tool", "tool_call_id", "content"}` right
after the turn whose call it answers.
"""

from collections.abc import Mapping

from annotate.rendering import TemplateSpec

from ._rules import (
    INLINE_REASONING,
    LineRenderer,
    Renderer,
    chat_chars,
    chat_turns,
    keys_problem,
    messages_lines,
    turns_ok,
    turns_problem,
    with_thinking,
)
from ._tools import arguments_text, conversation_problem, refuse_reasoning, tool_turns

NAME = "openai-chat"
LABEL = "OpenAI chat"
RECORD_KEYS = ("messages",)
TEMPLATE_TEXT = "chat_user_format"  # the template text it fills in (its size limits apply)
USES_TURNS = True  # a chat task's prior turns go into the record
TOOLS = True  # renders a tools task's calls and results (exports/formats/_tools.py)
EXTRA_FILES: tuple[str, ...] = ()
SHAPE = (
    '{"messages": [{"role": "system", "content": …}, {"role": "user", "content": …}, '
    '{"role": "assistant", "content": …}]}'
)
EXAMPLE = {
    "messages": [{"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": "On its way."}]
}
RULES = "OpenAI fine-tuning guide, “Preparing your dataset”"
# OpenAI's chat format for fine-tuning has no field for a reasoning written apart (its guide trains on the
# assistant's content alone), and Together and Fireworks read that format: inline, as LLaMA-Factory documents it.
REASONING = INLINE_REASONING


TOOL_RECORD_KEYS = ("messages", "tools", "parallel_tool_calls")


def renderer(spec: TemplateSpec) -> Renderer:
    if spec.tools is not None:
        return _tool_renderer(spec)
    turns = chat_turns(spec)
    return lambda fields, completion, messages=None, reasoning=None: {
        "messages": turns(fields, with_thinking(completion, reasoning), messages)
    }


def line_renderer(spec: TemplateSpec) -> LineRenderer | None:
    """The JSON line of a plain record without building it (_rules.messages_lines), or None for a tools task."""
    return messages_lines(spec)


def _tool_renderer(spec: TemplateSpec) -> Renderer:
    turns = tool_turns(spec)
    tools, parallel = spec.tools, spec.parallel_tool_calls

    def render(
        fields: Mapping[str, str], completion: str, messages: list | None = None, reasoning: str | None = None
    ) -> dict:
        refuse_reasoning(reasoning)
        system, conversation = turns(fields, completion, messages)
        out = [{"role": "system", "content": system}] if system else []
        for turn in conversation:
            if turn["role"] == "tool":
                out.append({"role": "tool", "tool_call_id": turn["tool_call_id"], "content": turn["content"]})
            elif turn.get("tool_calls"):
                message: dict = {"role": "assistant"}
                if turn["content"]:
                    message["content"] = turn["content"]
                message["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": arguments_text(call["arguments"])},
                    }
                    for call in turn["tool_calls"]
                ]
                out.append(message)
            else:
                out.append({"role": turn["role"], "content": turn["content"]})
        return {"messages": out, "tools": tools, "parallel_tool_calls": parallel}

    return render


def record_ok(record) -> bool:
    """True when the record is certainly valid, checked without building anything (the common case)."""
    if record.__class__ is dict and len(record) == 3 and "tools" in record:
        return _tool_problem(record) is None
    return record.__class__ is dict and len(record) == 1 and turns_ok(record.get("messages"))


def problem(record) -> str | None:
    """The first rule `record` breaks, or None."""
    if isinstance(record, dict) and "tools" in record:
        return _tool_problem(record)
    if record_ok(record):
        return None
    return keys_problem(record, RECORD_KEYS) or turns_problem(record["messages"]) or f"not a {NAME} record"


def _tool_problem(record: dict) -> str | None:
    found = keys_problem(record, TOOL_RECORD_KEYS)
    if found:
        return found
    if not isinstance(record["tools"], list) or not isinstance(record["parallel_tool_calls"], bool):
        return "tools must be a list and parallel_tool_calls true or false"
    messages = record["messages"]
    found = conversation_problem(messages, style="openai", arguments="string")
    if found:
        return found
    if not record["parallel_tool_calls"]:
        for position, message in enumerate(messages, 1):
            if len(message.get("tool_calls") or ()) > 1:
                return f"message {position} holds several calls, and parallel_tool_calls is false"
    return None


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    """Characters the record holds besides the completion and prior turns (the preview's bound before rendering)."""
    return chat_chars(spec, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
