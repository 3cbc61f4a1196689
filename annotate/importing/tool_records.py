"""The records of a tools task: OpenAI chat messages whose assistant turns call the task's functions and whose `tool`
messages answer them (annotate/tools.py says what is stored). Each problem names its field, as the other records'
problems do, and the import refuses the whole file when any record has one.

- `tools` in a record, when given, may define only functions of the task's tool set, exactly as the task defines
  them (the export writes the task's set); `parallel_tool_calls`, when given, must agree with the task's setting.
- A call names a defined function; its arguments (a JSON string, or an object) are a JSON object valid against the
  function's parameters; ids are distinct; every call before the final turn is answered by a `tool` message with
  its id before the next user or assistant turn; a tool result answers a call; roles come in order.
- A final assistant message is the completion (text, calls, or both); the last user message is the instruction.
"""

from typing import Any

from ..tools import ToolSet, check_conversation, completion_text, read_calls
from .common import _UNREADABLE, _shown, _unstorable_problem, popped_messages
from .limits import MAX_FIELD_CHARS

ROLES = frozenset({"system", "user", "assistant", "tool"})


def _text_problem(value: str) -> str | None:
    if len(value) > MAX_FIELD_CHARS:
        return f"{len(value):,} characters, over the limit of {MAX_FIELD_CHARS:,} characters a field"
    return _unstorable_problem(value)


def record_tools(tools: Any, parallel: Any, toolset: ToolSet, problems: list) -> None:
    """Check a record's own `tools` and `parallel_tool_calls` against the task's."""
    if tools is not None:
        if not isinstance(tools, list):
            problems.append(("tools", "expected an array of function definitions"))
        else:
            for i, definition in enumerate(tools):
                function = definition.get("function") if isinstance(definition, dict) else None
                name = function.get("name") if isinstance(function, dict) else None
                known = toolset.functions.get(name) if isinstance(name, str) else None
                if known is None:
                    shown = f'"{_shown(name, 60)}"' if isinstance(name, str) else "with no name"
                    problems.append((f"tools[{i}]", f"the function {shown} is not in the task's tool set"))
                elif definition != _definition_of(toolset, name):
                    problems.append((f"tools[{i}]", f'the function "{name}" differs from the task’s definition of it'))
    if parallel is not None:
        if not isinstance(parallel, bool):
            problems.append(("parallel_tool_calls", "expected true or false"))
        elif parallel != toolset.parallel:
            setting = "allows" if toolset.parallel else "does not allow"
            problems.append(
                ("parallel_tool_calls", f"is {str(parallel).lower()}, but the task's tool set {setting} parallel calls")
            )


def _definition_of(toolset: ToolSet, name: str) -> dict | None:
    for definition in toolset.tools:
        if definition["function"]["name"] == name:
            return definition
    return None


def tool_messages(values: dict, keys: dict, problems: list, toolset: ToolSet) -> list:
    """Split the messages of a tools record into the stored turns (set the instruction and completion in `values`)."""
    key = keys["messages"]
    messages = popped_messages(values, keys, problems)
    if messages is _UNREADABLE:
        return []
    if type(messages) is not list:
        problems.append((key, "expected an array of messages"))
        return []
    for name in ("instruction", "completion"):
        if name in values:
            problems.append((keys[name], f'give either chat messages ("{key}") or the {name}, not both'))
    before = len(problems)
    turns: list[dict] = []
    for i, message in enumerate(messages):
        where = f"{key}[{i}]"
        if type(message) is not dict:
            problems.append((where, "expected an object {role, content}"))
            continue
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            shown = _shown(role, 50) if isinstance(role, str) else type(role).__name__
            problems.append((f"{where}.role", f'unknown role "{shown}"; use system, user, assistant or tool'))
            continue
        content = message.get("content")
        content = "" if content is None else content
        if type(content) is not str:
            problems.append((f"{where}.content", "expected a string"))
            continue
        if problem := _text_problem(content):
            problems.append((f"{where}.content", problem))
            continue
        turn: dict = {"role": role, "content": content}
        if role == "assistant" and message.get("tool_calls"):
            calls = read_calls(message["tool_calls"], f"{where}.tool_calls", toolset, problems)
            if calls:
                turn["tool_calls"] = calls
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                problems.append((f"{where}.tool_call_id", "missing: a tool result names the call it answers"))
                continue
            turn["tool_call_id"] = call_id
        elif "tool_calls" in message and message["tool_calls"]:
            problems.append((f"{where}.tool_calls", f"only an assistant message calls tools, not a {role} message"))
        turns.append(turn)
    if len(problems) > before:
        return []
    final = None
    if turns and turns[-1]["role"] == "assistant":
        final = turns.pop()
        if not final["content"].strip() and not final.get("tool_calls"):
            problems.append((f"{key}[{len(turns)}]", "the final assistant turn has neither text nor tool calls"))
            return []
    users = [turn for turn in turns if turn["role"] == "user"]
    if not users:
        problems.append((key, "a user message is needed (the instruction)"))
        return []
    if final is None and turns[-1]["role"] not in ("user", "tool"):
        problems.append((key, "without a final assistant turn, the last message must be the user's or a tool result"))
        return []
    found = check_conversation(
        turns,
        final={"content": final["content"], "tool_calls": final.get("tool_calls", [])} if final else None,
        where=key,
    )
    if found:
        problems.extend(found)
        return []
    if final is not None:
        values["completion"] = completion_text(final["content"], final.get("tool_calls", []))
        keys["completion"] = key
    values["instruction"] = users[-1]["content"]
    keys["instruction"] = key
    return turns
