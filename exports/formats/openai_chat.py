"""OpenAI-style chat fine-tuning (also read by Together and Fireworks): `{"messages": [...]}`.

Rules: OpenAI's fine-tuning guide, "Preparing your dataset" (each line a conversation of `system`, `user` and
`assistant` messages with `role` and `content`; the assistant's messages are what the model learns). Checked here:
exactly the key `messages`; each message exactly `role` and `content`, a known role and non-empty text; the last
message is the assistant's (the completion).
"""

from collections.abc import Mapping

from annotate.rendering import TemplateSpec

from ._rules import (
    INLINE_REASONING,
    Renderer,
    chat_chars,
    chat_turns,
    keys_problem,
    turns_ok,
    turns_problem,
    with_thinking,
)

NAME = "openai-chat"
LABEL = "OpenAI chat"
RECORD_KEYS = ("messages",)
TEMPLATE_TEXT = "chat_user_format"  # the template text it fills in (its size limits apply)
USES_TURNS = True  # a chat task's prior turns go into the record
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


def renderer(spec: TemplateSpec) -> Renderer:
    turns = chat_turns(spec)
    return lambda fields, completion, messages=None, reasoning=None: {
        "messages": turns(fields, with_thinking(completion, reasoning), messages)
    }


def record_ok(record) -> bool:
    """True when the record is certainly valid, checked without building anything (the common case)."""
    return record.__class__ is dict and len(record) == 1 and turns_ok(record.get("messages"))


def problem(record) -> str | None:
    """The first rule `record` breaks, or None."""
    if record_ok(record):
        return None
    return keys_problem(record, RECORD_KEYS) or turns_problem(record["messages"]) or f"not a {NAME} record"


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    """Characters the record holds besides the completion and prior turns (the preview's bound before rendering)."""
    return chat_chars(spec, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
