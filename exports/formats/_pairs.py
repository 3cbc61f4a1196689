"""What the preference formats share: the prompt turns of a pair, and the checks of its one-message sides.

A pair is rendered from its prompt fields and prior turns exactly as the chat formats render an example (the
system message, the example's own system turn replacing it, the prior turns, the user turn through the template),
so a preference record carries the same system prompt its SFT export would. The completion a renderer receives
is the pair (chosen, rejected); the template preview, which has one completion, shows it as chosen and a
placeholder as rejected.
"""

from collections.abc import Callable, Mapping

from annotate.rendering import TemplateSpec, render_text

from ._rules import chat_turns, turn_problem

PREVIEW_REJECTED = "(the rejected completion)"


def prompt_and_sides(spec: TemplateSpec) -> Callable[[Mapping[str, str], object, list | None], tuple]:
    """(fields, (chosen, rejected) or a preview's completion, prior turns) -> (prompt turns, chosen, rejected).

    The turns of chat_turns without its assistant turn; a pair without prior turns (most of them) is rendered here
    directly, without building the assistant turn only to drop it (this runs once a pair on an export)."""
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
        return prompt, [{"role": "assistant", "content": chosen}], [{"role": "assistant", "content": rejected}]

    return render


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
