"""OpenAI's preference fine-tuning (DPO) format:
`{"input": {"messages": [...]}, "preferred_output": [assistant message], "non_preferred_output": [assistant message]}`.

Rules: OpenAI's fine-tuning guide, "Direct preference optimization" (each line an `input` holding the `messages` of
the prompt, and `preferred_output` and `non_preferred_output`, each a list holding the assistant's message). Checked
here: exactly these three keys; `input` exactly `messages`, its turns valid (role and content, known role,
non-empty text), the last one the user's; each output exactly one assistant message with non-empty text.

Tools tasks: `input` adds the task's `tools` and `parallel_tool_calls`, as the guide's example shows them, and an
output may call the task's functions: each output is an assistant message (OpenAI's API reference, "Fine-tuning ›
preference input": `preferred_output` and `non_preferred_output` are lists of assistant messages, which hold
`tool_calls`), written as openai-chat writes an assistant turn that calls: `tool_calls: [{"id", "type": "function",
"function": {"name", "arguments": <a JSON string>}}]` (a call stored without an id gets `call_<n>`), `content` only
when it says something.
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

NAME = "openai-preference"
LABEL = "OpenAI preference (DPO)"
PAIRS = True
RECORD_KEYS = ("input", "preferred_output", "non_preferred_output")
TEMPLATE_TEXT = "chat_user_format"
USES_TURNS = True
EXTRA_FILES: tuple[str, ...] = ()
SHAPE = (
    '{"input": {"messages": [{"role": "system", "content": …}, {"role": "user", "content": …}]}, '
    '"preferred_output": [{"role": "assistant", "content": …}], '
    '"non_preferred_output": [{"role": "assistant", "content": …}]}'
)
EXAMPLE = {
    "input": {"messages": [{"role": "user", "content": "Where is my parcel?"}]},
    "preferred_output": [{"role": "assistant", "content": "On its way: it arrives tomorrow."}],
    "non_preferred_output": [{"role": "assistant", "content": "No idea."}],
}
RULES = "OpenAI fine-tuning guide, “Direct preference optimization”"


TOOLS = True  # renders a tools task's calls (see above)
TOOL_INPUT_KEYS = ("messages", "tools", "parallel_tool_calls")


def renderer(spec: TemplateSpec):
    if spec.tools is not None:
        return _tool_renderer(spec)
    render = prompt_and_sides(spec)

    def record(fields, completion, messages=None, reasoning=None) -> dict:  # a pair has no reasoning
        prompt, chosen, rejected = render(fields, completion, messages)
        return {"input": {"messages": prompt}, "preferred_output": chosen, "non_preferred_output": rejected}

    return record


def line_renderer(spec: TemplateSpec):
    """The JSON line of a plain pair without building the record (_pairs.pair_lines), or None for a tools task."""
    return pair_lines(
        spec,
        head=b'{"input":{"messages":[',
        middle=b'}]},"preferred_output":[{"role":"assistant","content":',
        rejected_key=b'}],"non_preferred_output":[{"role":"assistant","content":',
        tail=b"}]}",
    )


def _tool_renderer(spec: TemplateSpec):
    tools, parallel = spec.tools, spec.parallel_tool_calls

    def side(text: str) -> dict:
        content, calls = stored_calls(text)
        if not calls:
            return {"role": "assistant", "content": content}
        message: dict = {"role": "assistant"}
        if content:
            message["content"] = content
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": arguments_text(call["arguments"])},
            }
            for call in calls
        ]
        return message

    render = prompt_and_sides(spec, side)

    def record(fields, completion, messages=None, reasoning=None) -> dict:
        refuse_reasoning(reasoning)
        prompt, chosen, rejected = render(fields, completion, messages)
        return {
            "input": {"messages": prompt, "tools": tools, "parallel_tool_calls": parallel},
            "preferred_output": chosen,
            "non_preferred_output": rejected,
        }

    return record


def _tool_problem(record: dict) -> str | None:
    found = keys_problem(record, RECORD_KEYS)
    if found:
        return found
    given = record["input"]
    if keys_problem(given, TOOL_INPUT_KEYS):
        return "input must be an object with exactly the keys messages, tools and parallel_tool_calls"
    if not isinstance(given["tools"], list) or not isinstance(given["parallel_tool_calls"], bool):
        return "input.tools must be a list and input.parallel_tool_calls true or false"
    for name in ("preferred_output", "non_preferred_output"):
        found = tool_side_problem(name, record[name], style="openai")
        if found:
            return found
        calls = record[name][0].get("tool_calls") or ()
        if len(calls) > 1 and not given["parallel_tool_calls"]:
            return f"{name}: several calls, and parallel_tool_calls is false"
    return prompt_problem("input.messages", given["messages"])


def _is_tool_record(record) -> bool:
    return record.__class__ is dict and record.get("input").__class__ is dict and "tools" in record["input"]


def record_ok(record) -> bool:
    if _is_tool_record(record):
        return _tool_problem(record) is None
    if record.__class__ is not dict or len(record) != 3:
        return False
    given = record.get("input")
    return (
        given.__class__ is dict
        and len(given) == 1
        and prompt_ok(given.get("messages"))
        and side_ok(record.get("preferred_output"))
        and side_ok(record.get("non_preferred_output"))
    )


def problem(record) -> str | None:
    if _is_tool_record(record):
        return _tool_problem(record)
    if record_ok(record):
        return None
    found = keys_problem(record, RECORD_KEYS)
    if found:
        return found
    given = record["input"]
    return (
        (keys_problem(given, ("messages",)) and "input must be an object with exactly the key messages")
        or prompt_problem("input.messages", given["messages"])
        or side_problem("preferred_output", record["preferred_output"])
        or side_problem("non_preferred_output", record["non_preferred_output"])
        or f"not a {NAME} record"
    )


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return chat_chars(spec, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
