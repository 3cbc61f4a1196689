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
Checked here: exactly the key `messages`; each message exactly `role` and `content`, a known role and non-empty text;
a system message only first; turns alternate from the user's; the last one is the assistant's.

Tools tasks, as TRL's "Dataset formats and types › Tool calling" shows: the record adds `tools` (the function
definitions); an assistant turn that calls holds `tool_calls: [{"type": "function", "function": {"name",
"arguments"}}]`, and each result is `{"role": "tool", "name": <the function>, "content"}`. `datasets` gives each
column one Arrow type, so `arguments` are JSON objects only when every call of every version of the task fits one
struct (annotate/tools.arguments_agree: the parameters' schemas say so), else JSON strings; `tools` likewise is the
list of objects when the task's tool sets fit one type, else its JSON text. The chat templates TRL and Axolotl apply
read both; either way `datasets.load_dataset("json", ...)` loads every file.
"""

from collections.abc import Mapping

from annotate.rendering import TemplateSpec

from ._rules import Renderer, chat_chars, chat_turns, keys_problem, turns_ok, turns_problem
from ._tools import arguments_text, call_names, conversation_problem, tool_turns

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
RULES = (
    "TRL documentation, “Dataset formats and types” (conversational); Axolotl documentation, “Conversation › "
    "chat_template”; chat templates: system first, then user and assistant alternate"
)


TOOL_RECORD_KEYS = ("messages", "tools")


def renderer(spec: TemplateSpec) -> Renderer:
    if spec.tools is not None:
        return _tool_renderer(spec)
    turns = chat_turns(spec)
    return lambda fields, completion, messages=None: {"messages": turns(fields, completion, messages)}


def _tool_renderer(spec: TemplateSpec) -> Renderer:
    turns = tool_turns(spec)
    tools = spec.tools if spec.tools_as_objects else arguments_text(spec.tools)
    as_objects = spec.arguments_as_objects

    def render(fields: Mapping[str, str], completion: str, messages: list | None = None) -> dict:
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


def record_ok(record) -> bool:
    if record.__class__ is dict and len(record) == 2 and "tools" in record:
        return _tool_problem(record) is None
    if record.__class__ is not dict or len(record) != 1:
        return False
    messages = record.get("messages")
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
    return (
        keys_problem(record, RECORD_KEYS)
        or turns_problem(record["messages"])
        or _order_problem(record["messages"])
        or f"not a {NAME} record"
    )


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
