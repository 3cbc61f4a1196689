"""TRL's conversational format, also Axolotl's `chat_template` dataset type: `{"messages": [...]}`.

Rules, and where they come from:
- TRL documentation, "Dataset formats and types": a conversational dataset holds a `messages` column, a list of
  messages each with a `role` ("system", "user", "assistant") and a `content`; the trainer applies the model's chat
  template to it.
- Axolotl documentation, "Dataset Formats › Conversation › chat_template": a list of role/content messages under
  `field_messages` (the card's config names `messages`), trained on the `assistant` turns by default
  (`roles_to_train`), so the completion is the last, assistant turn.
- The chat templates both apply (the tokenizer's `chat_template`; e.g. Llama 2, Mistral and Gemma raise
  "Conversation roles must alternate user/assistant/user/assistant/..."): the system message, when there is one,
  comes first; then user and assistant turns alternate, starting with the user's.
- Reasoning (tasks that ask for it): the final assistant message's `reasoning_content`, as TRL's chat_templates.md
  shows its reasoning templates reading it (Qwen3: `<think>` + reasoning_content + `</think>` before the content).
Checked here: exactly the key `messages`; each message exactly `role` and `content` (the last one also
`reasoning_content`, a string, in tasks that ask for the reasoning), a known role and non-empty text;
a system message only first; turns alternate from the user's; the last one is the assistant's.

Tools tasks, as TRL's "Dataset formats and types › Tool calling" shows: the record adds `tools` (the function
definitions); an assistant turn that calls holds `tool_calls: [{"type": "function", "function": {"name",
"arguments"}}]`, and each result is `{"role": "tool", "name": <the function>, "content"}`. `datasets` gives each
column one Arrow type, so `arguments` are JSON objects only when every call of every version of the task fits one
struct (annotate/tool_types.arguments_agree: the parameters' schemas say so), else JSON strings; `tools` likewise is the
list of objects when the task's tool sets fit one type, else its JSON text. The chat templates TRL and Axolotl apply
read both; either way `datasets.load_dataset("json", ...)` loads every file.
"""

from collections.abc import Mapping

from annotate.rendering import TemplateSpec

from ._rules import (
    LineRenderer,
    Renderer,
    chat_chars,
    chat_turns,
    keys_problem,
    messages_lines,
    turns_ok,
    turns_problem,
)
from ._tools import arguments_text, call_names, conversation_problem, refuse_reasoning, tool_turns

NAME = "messages"
LABEL = "Messages (TRL, Axolotl chat_template)"
RECORD_KEYS = ("messages",)
TEMPLATE_TEXT = "chat_user_format"
USES_TURNS = True
TOOLS = True  # renders a tools task's calls and results (exports/formats/_tools.py)
EXTRA_FILES: tuple[str, ...] = ()
SHAPE = (
    '{"messages": [{"role": "system", "content": …}, {"role": "user", "content": …}, '
    '{"role": "assistant", "content": …}]}'
)
EXAMPLE = {
    "messages": [{"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": "On its way."}]
}
REASONING = (
    'the reasoning is the final assistant message\'s `reasoning_content` ("" when none was written), the key the '
    "chat templates of reasoning models read (TRL's chat_templates.md: its Qwen3 training template renders it as "
    "`<think>` … `</think>` before the content); a chat template that does not read it leaves the reasoning out"
)
RULES = (
    "TRL documentation, “Dataset formats and types” (conversational); Axolotl documentation, “Conversation › "
    "chat_template”; chat templates: system first, then user and assistant alternate"
)


TOOL_RECORD_KEYS = ("messages", "tools")


def renderer(spec: TemplateSpec) -> Renderer:
    if spec.tools is not None:
        return _tool_renderer(spec)
    turns = chat_turns(spec)

    def render(
        fields: Mapping[str, str], completion: str, messages: list | None = None, reasoning: str | None = None
    ) -> dict:
        out = turns(fields, completion, messages)
        if reasoning is not None:  # every record of a task that asks for it: the same keys in every record
            out[-1]["reasoning_content"] = reasoning
        return {"messages": out}

    return render


def line_renderer(spec: TemplateSpec) -> LineRenderer | None:
    """The JSON line of a plain record without building it (_rules.messages_lines), or None for a tools task."""
    return messages_lines(spec)


def _tool_renderer(spec: TemplateSpec) -> Renderer:
    turns = tool_turns(spec)
    tools = spec.tools if spec.tools_as_objects else arguments_text(spec.tools)
    as_objects = spec.arguments_as_objects

    def render(
        fields: Mapping[str, str], completion: str, messages: list | None = None, reasoning: str | None = None
    ) -> dict:
        refuse_reasoning(reasoning)
        system, conversation = turns(fields, completion, messages)
        names = call_names(conversation)
        out = [{"role": "system", "content": system}] if system else []
        for turn in conversation:
            if turn["role"] == "tool":
                name = names.get(turn["tool_call_id"], "")
                out.append({"role": "tool", "name": name, "content": turn["content"]})
            elif turn.get("tool_calls"):
                message: dict = {"role": "assistant"}
                if turn["content"]:
                    message["content"] = turn["content"]
                message["tool_calls"] = [
                    {
                        "type": "function",
                        "function": {
                            "name": call["name"],
                            "arguments": call["arguments"] if as_objects else arguments_text(call["arguments"]),
                        },
                    }
                    for call in turn["tool_calls"]
                ]
                out.append(message)
            else:
                out.append({"role": turn["role"], "content": turn["content"]})
        return {"messages": out, "tools": tools}

    return render


def _order_ok(messages: list) -> bool:
    expected = "user"
    for position, message in enumerate(messages):
        role = message["role"]
        if role == "system" and position == 0:
            continue
        if role != expected:
            return False
        expected = "assistant" if expected == "user" else "user"
    return True


def _without_reasoning(messages):
    """The turns with the final assistant message's reasoning_content left out, or None when that value is not a
    string (then the record is not valid). Any other message with it breaks the role/content rule as usual."""
    if messages.__class__ is not list or not messages:
        return messages
    last = messages[-1]
    if last.__class__ is not dict or "reasoning_content" not in last:
        return messages
    if last["reasoning_content"].__class__ is not str or last.get("role") != "assistant":
        return None
    return [*messages[:-1], {key: value for key, value in last.items() if key != "reasoning_content"}]


def record_ok(record) -> bool:
    if record.__class__ is dict and len(record) == 2 and "tools" in record:
        return _tool_problem(record) is None
    if record.__class__ is not dict or len(record) != 1:
        return False
    messages = _without_reasoning(record.get("messages"))
    return turns_ok(messages) and _order_ok(messages)


def _order_problem(messages: list) -> str | None:
    expected = "user"
    for position, message in enumerate(messages, 1):
        role = message["role"]
        if role == "system":
            if position == 1:
                continue
            return f"message {position} is a system message; only the first message may be one"
        if role != expected:
            if position == 1 or (position == 2 and messages[0]["role"] == "system"):
                return f"message {position} is the {role}'s; the conversation must start with the user's turn"
            return f"messages {position - 1} and {position} are both the {role}'s; user and assistant must alternate"
        expected = "assistant" if expected == "user" else "user"
    return None


def problem(record) -> str | None:
    if isinstance(record, dict) and "tools" in record:
        return _tool_problem(record)
    if record_ok(record):
        return None
    found = keys_problem(record, RECORD_KEYS)
    if found:
        return found
    messages = _without_reasoning(record["messages"])
    if messages is None:
        return "the last message's reasoning_content must be a string, on the assistant's message"
    return turns_problem(messages) or _order_problem(messages) or f"not a {NAME} record"


def _tool_problem(record: dict) -> str | None:
    found = keys_problem(record, TOOL_RECORD_KEYS)
    if found:
        return found
    if not isinstance(record["tools"], list | str):
        return "tools is neither a list of definitions nor their JSON text"
    return conversation_problem(record["messages"], style="trl", arguments="either")


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return chat_chars(spec, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
