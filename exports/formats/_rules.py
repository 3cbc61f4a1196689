"""What the format modules share: the chat turns of a record, and the checks every format makes the same way.

Pure functions of a template spec and plain values (no Django models), so that the template preview and the export
render through exactly the same code.
"""

from collections.abc import Callable, Mapping

import orjson

from annotate.rendering import CHAT_ROLES, TemplateSpec, render_text, text_renderer

ROLES = frozenset(CHAT_ROLES)

# (fields, completion, prior chat turns or None, reasoning or None) -> the training record of one example. The
# reasoning is None where the task does not ask for it, else the example's reasoning ("" when none was written).
Renderer = Callable[..., dict]

# Reasoning written into the answer itself: LLaMA-Factory's data/README.md ("For reasoning models, if the dataset
# contains chain-of-thought (CoT), the CoT needs to be placed in the model responses, such as `<think>cot</think>
# output`"), with the thought words of its reasoning templates (src/llamafactory/data/template.py: "<think>\n" and
# "\n</think>\n\n" by default), which is also how the chat templates of reasoning models (Qwen3, DeepSeek-R1) lay
# out an assistant turn.
THINK_OPEN, THINK_CLOSE = "<think>\n", "\n</think>\n\n"
INLINE_REASONING = (
    "the reasoning goes before the answer in the same text, as `<think>\\n…\\n</think>\\n\\n` then the answer "
    "(LLaMA-Factory's data/README.md and its reasoning templates' thought words); an example without reasoning has "
    "the answer alone"
)


def with_thinking(completion: str, reasoning: str | None) -> str:
    """The completion with the reasoning before it in think tags (INLINE_REASONING), or alone when there is none.
    Raise ValueError for a reasoning that holds a closing tag: a trainer would end the reasoning there."""
    if not reasoning:
        return completion
    if "</think>" in reasoning:
        raise ValueError("the reasoning holds </think>, where a trainer would take the reasoning to end; remove it")
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{completion}"


def text_ok(value) -> bool:
    """A string with something other than whitespace in it."""
    return value.__class__ is str and value != "" and not value.isspace()


def keys_problem(record, expected: tuple[str, ...]) -> str | None:
    """Why `record` is not an object with exactly the keys `expected`, in that order, or None."""
    if not isinstance(record, dict):
        return "the record is not a JSON object"
    if tuple(record) == expected:
        return None
    extra = sorted(set(record) - set(expected))
    missing = [key for key in expected if key not in record]
    parts = [
        f"unknown keys {', '.join(extra)}" if extra else "",
        f"missing keys {', '.join(missing)}" if missing else "",
    ]
    return "; ".join(part for part in parts if part) or f"keys out of order, expected {', '.join(expected)}"


def flat_problem(record, expected: tuple[str, ...]) -> str:
    """Why a record of string fields (`expected`, the last one the completion) breaks its format: wrong keys, a value
    that is not a string, else an empty completion. For records their format's `record_ok` refused."""
    found = keys_problem(record, expected)
    if found:
        return found
    for key in expected:
        if not isinstance(record[key], str):
            return f"{key} is not a string"
    return f"{expected[-1]} is empty"


def chat_turns(spec: TemplateSpec) -> Callable[[Mapping[str, str], str, list | None], list[dict]]:
    """The turns of a chat record: the system message (the example's own system turn replaces the template's), the
    prior turns of a chat task, the user turn rendered through the template (left out when it renders empty, as a chat
    task's template often does), and the completion as the assistant's turn. Made once per template."""
    system = spec.system_message
    user_format = spec.chat_user_format

    def turns(fields: Mapping[str, str], completion: str, messages: list | None = None) -> list[dict]:
        out: list[dict] = [{"role": "system", "content": system}] if system else []
        if messages:
            prior = [{"role": m["role"], "content": m["content"]} for m in messages]
            if prior and prior[0]["role"] == "system":
                out = []
            out.extend(prior)
        user = render_text(user_format, fields)
        if user and not user.isspace():
            out.append({"role": "user", "content": user})
        out.append({"role": "assistant", "content": completion})
        return out

    return turns


# (fields, completion, prior turns or None, reasoning or None) -> the record's JSON line, or None: take the full way.
LineRenderer = Callable[..., bytes | None]


def plain_chat(
    spec: TemplateSpec, frame: Callable[[str], tuple[bytes, bytes]]
) -> tuple[bytes, bytes, Callable[[Mapping[str, str]], str]] | None:
    """What a line renderer of plain chat records needs (chat_lines, _pairs.pair_lines): what opens a record up to
    the user's turn and what closes it (`frame(system)`), and the user turn's template, parsed once; None for a tools
    task or a blank system prompt, whose records go the full way."""
    system = spec.system_message or ""
    if spec.tools is not None or system.isspace():
        return None
    return *frame(system), text_renderer(spec.chat_user_format)


def chat_lines(
    spec: TemplateSpec, *, frame: Callable[[str], tuple[bytes, bytes]], user: bytes, assistant: bytes
) -> LineRenderer | None:
    """The JSON line of a plain chat record (a system turn as the template gives it, the user's turn, the completion as
    the assistant's) built from the JSON of its texts: the bytes orjson.dumps gives the record the format's renderer
    makes (the same strings, keys in the same order, no spaces), without building the record, checking it turn by turn
    and encoding it whole; this runs once a record on an export. None (the line renderer, or a line) where the record
    would not be plainly valid or is not plain: prior turns, a reasoning, a completion that is not a non-blank string,
    a user turn rendering blank, a blank system prompt, a tools task. The export then renders and checks it the full
    way, which names any problem. `frame(system)` gives what opens the record up to the user's turn and what closes it
    after the completion's text; `user` opens the user's text, `assistant` closes it and opens the completion's."""
    plain = plain_chat(spec, frame)
    if plain is None:
        return None
    head, tail, user_turn = plain
    dumps = orjson.dumps

    def line(
        fields: Mapping[str, str], completion: str, messages: list | None = None, reasoning: str | None = None
    ) -> bytes | None:
        if messages or reasoning is not None or completion.__class__ is not str:
            return None
        if not completion or completion.isspace():
            return None
        text = user_turn(fields)
        if not text or text.isspace():
            return None
        return b"".join((head, user, dumps(text), assistant, dumps(completion), tail))

    return line


def system_turn(system: str) -> bytes:
    """The system message as the first of a list of role and content turns (with its comma), or nothing."""
    return b'{"role":"system","content":' + orjson.dumps(system) + b"}," if system else b""


def messages_lines(spec: TemplateSpec) -> LineRenderer | None:
    """chat_lines for `{"messages": [...]}` records of role and content turns (openai-chat, and messages, which is the
    same record when plain), or None for a tools task."""
    return chat_lines(
        spec,
        frame=lambda system: (b'{"messages":[' + system_turn(system), b"}]}"),
        user=b'{"role":"user","content":',
        assistant=b'},{"role":"assistant","content":',
    )


def turn_problem(position: int, message) -> str | None:
    """Why one {"role", "content"} message breaks the rules every chat format shares, or None."""
    if not isinstance(message, dict):
        return f"message {position} is not an object"
    if set(message) != {"role", "content"}:
        keys = ", ".join(sorted(set(message) ^ {"role", "content"}))
        return f"message {position} must have exactly role and content (differs in: {keys})"
    if not isinstance(message["role"], str) or message["role"] not in ROLES:
        return f"message {position} has unknown role {message['role']!r}"
    if not isinstance(message["content"], str):
        return f"message {position} content is not a string"
    if not text_ok(message["content"]):
        return f"message {position} ({message['role']}) has empty content"
    return None


def turns_ok(messages) -> bool:
    """True when `messages` is a non-empty list of valid {"role", "content"} turns ending with the assistant's: the
    common case, checked without building anything (this runs for every turn of every record)."""
    if messages.__class__ is not list or not messages:
        return False
    for message in messages:
        if message.__class__ is not dict or len(message) != 2:
            return False
        role, content = message.get("role"), message.get("content")
        if role.__class__ is not str or role not in ROLES:
            return False
        if content.__class__ is not str or not content or content.isspace():
            return False
    return messages[-1]["role"] == "assistant"


def turns_problem(messages) -> str | None:
    """Why a list of turns breaks the shared rules (each turn valid, the last one the assistant's), or None."""
    if not isinstance(messages, list) or not messages:
        return "messages is not a non-empty list"
    for position, message in enumerate(messages, 1):
        problem = turn_problem(position, message)
        if problem:
            return problem
    if messages[-1]["role"] != "assistant":
        return "the last message is not the assistant's"
    return None


def chat_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    """Characters a chat record holds besides the completion and prior turns: system message and user turn."""
    from annotate.rendering import rendered_length

    return len(spec.system_message) + rendered_length(spec.chat_user_format, fields)
