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
a system message only first; turns alternate from the user's; the last one is the assistant's. Tool tasks will add
`"tools"` and tool turns (another issue); the check names the key set it expects, so adding them is one change here.
"""

from collections.abc import Mapping

from annotate.rendering import TemplateSpec

from ._rules import Renderer, chat_chars, chat_turns, keys_problem, turns_ok, turns_problem

NAME = "messages"
LABEL = "Messages (TRL, Axolotl chat_template)"
RECORD_KEYS = ("messages",)
TEMPLATE_TEXT = "chat_user_format"
USES_TURNS = True
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


def renderer(spec: TemplateSpec) -> Renderer:
    turns = chat_turns(spec)
    return lambda fields, completion, messages=None: {"messages": turns(fields, completion, messages)}


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
    if record_ok(record):
        return None
    return (
        keys_problem(record, RECORD_KEYS)
        or turns_problem(record["messages"])
        or _order_problem(record["messages"])
        or f"not a {NAME} record"
    )


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return chat_chars(spec, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
