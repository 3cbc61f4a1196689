"""What the preference formats share: the prompt turns of a pair, and the checks of its one-message sides.

A pair is rendered from its prompt fields and prior turns exactly as the chat formats render an example (the
system message, the example's own system turn replacing it, the prior turns, the user turn through the template),
so a preference record carries the same system prompt its SFT export would. The completion a renderer receives
is the pair (chosen, rejected); the template preview, which has one completion, shows it as chosen and a
placeholder as rejected.
"""

from collections.abc import Callable, Mapping

import orjson

from annotate.rendering import TemplateSpec, render_text
from annotate.tools import arguments_of, completion_parts

from ._rules import chat_turns, plain_chat, system_turn, text_ok, turn_problem
from ._tools import calls_problem

PREVIEW_REJECTED = "(the rejected completion)"


def prompt_and_sides(
    spec: TemplateSpec, side: Callable[[str], dict] | None = None
) -> Callable[[Mapping[str, str], object, list | None], tuple]:
    """(fields, (chosen, rejected) or a preview's completion, prior turns) -> (prompt turns, chosen, rejected).

    The turns of chat_turns without its assistant turn; a pair without prior turns (most of them) is rendered here
    directly, without building the assistant turn only to drop it (this runs once a pair on an export). `side`
    makes the assistant message of a stored side (a tools task's: its text and calls); by default, its text."""
    turns = chat_turns(spec)
    system = spec.system_message
    user_format = spec.chat_user_format

    def render(fields: Mapping[str, str], completion, messages: list | None = None) -> tuple:
        chosen, rejected = completion if completion.__class__ is tuple else (completion, PREVIEW_REJECTED)
        if messages:
            prompt = turns(fields, "", messages)
            prompt.pop()  # the assistant turn chat_turns ends with: the sides are the completions
        else:
            prompt = [{"role": "system", "content": system}] if system else []
            user = render_text(user_format, fields)
            if user and not user.isspace():
                prompt.append({"role": "user", "content": user})
        if side is not None:
            return prompt, [side(chosen)], [side(rejected)]
        return prompt, [{"role": "assistant", "content": chosen}], [{"role": "assistant", "content": rejected}]

    return render


def pair_lines(spec: TemplateSpec, *, head: bytes, middle: bytes, rejected_key: bytes, tail: bytes):
    """(fields, (chosen, rejected), prior turns) -> the JSON line of a pair without prior turns, built from the JSON
    of its four texts as _rules.chat_lines builds a record's: the bytes orjson.dumps gives the record the renderer
    makes; None when the record would not be plainly valid (prior turns, a blank text or system prompt, a user turn
    rendering empty) or the spec is a tools task's: the export then renders and checks it the full way, which names
    the problem. `head` opens the record up to the prompt's turns, `middle` closes them and opens the chosen side's
    content, `rejected_key` the rejected side's, `tail` closes the record."""
    plain = plain_chat(spec, lambda system: (head + system_turn(system), tail))
    if plain is None:
        return None
    opening, tail, user_turn = plain
    dumps = orjson.dumps

    def line(fields: Mapping[str, str], completion, messages: list | None = None, reasoning=None) -> bytes | None:
        if messages or completion.__class__ is not tuple:  # a pair has no reasoning
            return None
        chosen, rejected = completion
        if not text_ok(chosen) or not text_ok(rejected):
            return None
        user = user_turn(fields)
        if not user or user.isspace():
            return None
        return b"".join(
            (opening, b'{"role":"user","content":', dumps(user), middle, dumps(chosen), rejected_key, dumps(rejected),
             tail)
        )  # fmt: skip

    return line


def stored_calls(text: str) -> tuple[str, list[dict]]:
    """(content, calls with their arguments as objects) of a tools task's side (annotate/tools.completion_text; a
    plain text, from a comparison, is its content). A call without an id gets `call_<n>`, as tool_turns gives the
    final turn of an example, so that records stay byte-identical."""
    content, calls = completion_parts(text)
    return content, [
        {"id": call.get("id") or f"call_{n}", "name": call["name"], "arguments": arguments_of(call)}
        for n, call in enumerate(calls, 1)
    ]


def tool_side_problem(name: str, side, *, style: str) -> str | None:
    """Why a side of a tools task's pair breaks the rules, or None: one assistant message with text, calls or both;
    `style` "openai": calls with distinct ids, arguments as JSON text, content only when there is text; "trl": calls
    without ids, arguments as objects or JSON text, content always there (text or "")."""
    if not isinstance(side, list) or len(side) != 1:
        return f"{name} is not a list of exactly one message"
    message = side[0]
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return f"{name}: the message is not the assistant's"
    if "tool_calls" not in message:
        return side_problem(name, side)
    allowed = {"role", "content", "tool_calls"}
    if not set(message) <= allowed or (style == "trl" and "content" not in message):
        return f"{name}: the message must have role, {'content and ' if style == 'trl' else ''}tool_calls only"
    content = message.get("content", "")
    if not isinstance(content, str) or (style == "openai" and "content" in message and not text_ok(content)):
        return f"{name}: the content must be text" + (" (left out when there is none)" if style == "openai" else "")
    problem = calls_problem(1, message["tool_calls"], arguments="string" if style == "openai" else "either")
    if problem:
        return f"{name}: {problem}"
    ids = [call.get("id") for call in message["tool_calls"]]
    if style == "openai" and (not all(text_ok(i) for i in ids) or len(set(ids)) != len(ids)):
        return f"{name}: the calls need distinct ids"
    if style == "trl" and any(i is not None for i in ids):
        return f"{name}: TRL's calls carry no id"
    return None


def prompt_ok(prompt) -> bool:
    """A non-empty list of valid turns ending with the user's (fast path; prompt_problem explains)."""
    if prompt.__class__ is not list or not prompt:
        return False
    for message in prompt:
        if message.__class__ is not dict or len(message) != 2:
            return False
        content = message.get("content")
        if message.get("role") not in ("system", "user", "assistant") or content.__class__ is not str:
            return False
        if not content or content.isspace():
            return False
    return prompt[-1]["role"] == "user"


def prompt_problem(name: str, prompt) -> str | None:
    if not isinstance(prompt, list) or not prompt:
        return f"{name} is not a non-empty list of messages"
    for position, message in enumerate(prompt, 1):
        problem = turn_problem(position, message)
        if problem:
            return f"{name}: {problem}"
    if prompt[-1]["role"] != "user":
        return f"{name}: the last message is not the user's"
    return None


def side_ok(side) -> bool:
    if side.__class__ is not list or len(side) != 1:
        return False
    message = side[0]
    if message.__class__ is not dict or len(message) != 2 or message.get("role") != "assistant":
        return False
    content = message.get("content")
    return content.__class__ is str and bool(content) and not content.isspace()


def side_problem(name: str, side) -> str | None:
    if not isinstance(side, list) or len(side) != 1:
        return f"{name} is not a list of exactly one message"
    problem = turn_problem(1, side[0])
    if problem:
        return f"{name}: {problem}"
    if side[0]["role"] != "assistant":
        return f"{name}: the message is not the assistant's"
    return None
