"""What the chat formats share for tools tasks: the conversation of a tool example in one neutral shape, and checks
of the calls each format writes. Each format module maps these turns to its trainer's shape and checks its records.

The stored shapes (annotate/tools.py): prior turns in `Example.messages` (the last user turn is the instruction's
place, rendered from the fields through the template's chat user format), the final assistant turn as the JSON text
`{"content", "tool_calls"}` in `Example.completion`. A call is `{"id", "name", "arguments": <JSON text>}`; the turns
here hold the arguments as objects (key order kept), each format writes them its way.
"""

import json
from collections.abc import Callable, Mapping

from annotate.rendering import TemplateSpec, render_text
from annotate.tools import arguments_of, completion_parts

from ._rules import text_ok

# (fields, completion, prior turns) -> (system text, turns: {"role", "content", "tool_calls"?, "tool_call_id"?})
Turns = Callable[[Mapping[str, str], str, list | None], tuple[str, list[dict]]]


def arguments_text(arguments: dict) -> str:
    """Arguments as the JSON string OpenAI's format holds (json.dumps' usual spacing, characters as they are)."""
    return json.dumps(arguments, ensure_ascii=False)


def tool_turns(spec: TemplateSpec) -> Turns:
    """The turns of a tool example: the system text (the example's own system turn replaces the template's), then
    the turns in order, the instruction's user turn rendered through the template, the final assistant turn last.
    A final call without an id gets `call_<n>` (n from 1, in the turn), so records stay byte-identical. A call to a
    function the spec's tool set (the example's template version's) does not define raises ValueError: the record
    would call a tool it does not list. Arguments were checked against the parameters when the example was saved or
    imported (its warnings); a set lookup here, not a second schema check per call."""
    system = spec.system_message
    user_format = spec.chat_user_format
    defined = frozenset(definition["function"]["name"] for definition in spec.tools or ())

    def known(calls: list[dict], where: str) -> list[dict]:
        for call in calls:
            if call.get("name") not in defined:
                raise ValueError(
                    f"{where} calls “{call.get('name')}”, which the tool set of its template version does not define"
                )
        return calls

    def turns(fields: Mapping[str, str], completion: str, messages: list | None = None) -> tuple[str, list[dict]]:
        prior = list(messages or ())
        own_system = system
        if prior and prior[0].get("role") == "system":
            own_system = prior[0]["content"]
            prior = prior[1:]
        user = render_text(user_format, fields)
        place = max((i for i, m in enumerate(prior) if m.get("role") == "user"), default=None)
        out: list[dict] = []
        for i, message in enumerate(prior):
            turn = {"role": message["role"], "content": message.get("content") or ""}
            if i == place and user and not user.isspace():
                turn["content"] = user
            if message.get("tool_calls"):
                calls = known(message["tool_calls"], f"turn {i + 1}")
                turn["tool_calls"] = [{**call, "arguments": arguments_of(call)} for call in calls]
            if message["role"] == "tool":
                turn["tool_call_id"] = message.get("tool_call_id", "")
            out.append(turn)
        if place is None and user and not user.isspace():
            out.append({"role": "user", "content": user})
        content, calls = completion_parts(completion)
        final: dict = {"role": "assistant", "content": content}
        if calls:
            known(calls, "the final turn")
            final["tool_calls"] = [
                {**call, "id": call.get("id") or f"call_{n}", "arguments": arguments_of(call)}
                for n, call in enumerate(calls, 1)
            ]
        out.append(final)
        return own_system, out

    return turns


def call_names(turns: list[dict]) -> dict[str, str]:
    """Call id -> function name, over every call of the turns (tool results name their function from it)."""
    return {call["id"]: call["name"] for turn in turns for call in turn.get("tool_calls") or ()}


def calls_problem(position: int, calls, *, arguments: str) -> str | None:
    """Why the `tool_calls` of message `position` break the shape ({"id"?, "type": "function", "function": {"name",
    "arguments"}}), or None. `arguments`: "string" (JSON text of an object), "object", or "either"."""
    if not isinstance(calls, list) or not calls:
        return f"message {position} tool_calls is not a non-empty list"
    for j, call in enumerate(calls, 1):
        if not isinstance(call, dict) or call.get("type") != "function" or not isinstance(call.get("function"), dict):
            return f'message {position} call {j} is not {{"type": "function", "function": {{…}}}}'
        function = call["function"]
        if set(function) != {"name", "arguments"} or not text_ok(function["name"]):
            return f"message {position} call {j} function must have exactly a name and arguments"
        value = function["arguments"]
        if isinstance(value, str) and arguments in ("string", "either"):
            try:
                value = json.loads(value)
            except ValueError:
                return f"message {position} call {j} arguments are not JSON"
        elif arguments == "string":
            return f"message {position} call {j} arguments are not a JSON string"
        if not isinstance(value, dict):
            return f"message {position} call {j} arguments are not a JSON object"
    return None


def order_problem(roles: list[str], has_calls: list[bool]) -> str | None:
    """Why the order of roles breaks the shared rules of a tool conversation, or None: a system turn only first; the
    user's turn first; a tool result only after a turn that calls (or another result); the last turn the
    assistant's."""
    previous = None
    for position, (role, calls) in enumerate(zip(roles, has_calls, strict=True), 1):
        if role == "system":
            if position != 1:
                return f"message {position} is a system message; only the first message may be one"
        elif role == "tool":
            if previous not in ("calls", "tool"):
                return f"message {position} is a tool result that follows no call"
        elif role == "assistant":
            if previous in (None, "system"):
                return f"message {position} is the assistant's; the conversation must start with the user's turn"
            if previous == "assistant":
                return f"messages {position - 1} and {position} are both the assistant's"
        elif role == "user":
            if previous == "user":
                return f"messages {position - 1} and {position} are both the user's"
        else:
            return f"message {position} has unknown role {role!r}"
        previous = "calls" if role == "assistant" and calls else role
    if not roles or roles[-1] != "assistant":
        return "the last message is not the assistant's"
    return None


def conversation_problem(messages, *, style: str, arguments: str) -> str | None:
    """The first rule a tool conversation breaks, or None. `style` "openai": calls carry ids, results
    `tool_call_id`; "trl": calls carry none, results the function's `name`. Every other message is exactly role and
    content with text; an assistant turn that calls has `tool_calls` and text only when it says something."""
    if not isinstance(messages, list) or not messages:
        return "messages is not a non-empty list"
    roles, has_calls = [], []
    pending: list[str] = []
    result_key = "tool_call_id" if style == "openai" else "name"
    for position, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            return f"message {position} is not an object"
        role = message.get("role")
        if role == "tool":
            if set(message) != {"role", result_key, "content"}:
                return f"message {position} (tool) must have exactly role, {result_key} and content"
            if not text_ok(message[result_key]) or not isinstance(message["content"], str):
                return f"message {position} (tool) needs a {result_key} and a text content"
            if style == "openai":
                if message["tool_call_id"] not in pending:
                    return f"message {position} answers no pending call"
                pending.remove(message["tool_call_id"])
        elif role == "assistant" and "tool_calls" in message:
            allowed = {"role", "content", "tool_calls"}
            if not set(message) <= allowed or ("content" in message and not text_ok(message["content"])):
                return f"message {position} (assistant) must have role, tool_calls and text content only if any"
            problem = calls_problem(position, message["tool_calls"], arguments=arguments)
            if problem:
                return problem
            if style == "openai":
                ids = [call.get("id") for call in message["tool_calls"]]
                if not all(text_ok(i) for i in ids) or len(set(ids)) != len(ids):
                    return f"message {position} calls need distinct ids"
                pending = list(ids)
        else:
            if not isinstance(message, dict) or set(message) != {"role", "content"}:
                return f"message {position} must have exactly role and content"
            if not text_ok(message["content"]):
                return f"message {position} ({role}) has empty content"
        roles.append(role if isinstance(role, str) else repr(role))
        has_calls.append("tool_calls" in message)
    return order_problem(roles, has_calls)


def refuse_reasoning(reasoning: str | None) -> None:
    """A tools task's reasoning has no place in these records yet (the final turn may be calls, not text): the
    example fails the export, named, rather than losing its reasoning. Raise ValueError when there is one."""
    if reasoning:
        raise ValueError("a tools task's reasoning is not exported yet; turn off “Ask for the reasoning” or clear it")
