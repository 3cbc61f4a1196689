"""One side of an imported preference pair (or a candidate): text, or one assistant message, which on a tools task may
call the task's functions (checked as a tool example's final turn is); and a record's own tools. Problems go to a
list as (field, message), as the rest of the pair import reports them."""

from typing import Any

import orjson

from annotate.importing.common import _shown
from annotate.importing.records import _text_problem, _type_name
from annotate.importing.tool_records import record_tools
from annotate.tools import ToolSet, completion_text, read_calls


def text_of(value: Any, where: str, problems: list) -> str:
    if type(value) is not str:
        problems.append((where, f"expected a string, got {_type_name(value)}"))
        return ""
    if problem := _text_problem(value):
        problems.append((where, problem))
        return ""
    return value


def side_of(
    value: Any,
    where: str,
    problems: list,
    tools: ToolSet | None = None,
    no_calls: str = "tool calls need a task of output format tools",
) -> str:
    """One side of a pair (or a candidate): text, or one assistant message (an object, or a list holding one). With
    `tools` (a tools task's pair), the message may call the task's functions; the side is then stored as a tool
    completion (text alone too, so that every side of the task reads the same way). Without `tools`, a message
    that calls is refused with `no_calls`."""
    if type(value) is list:
        if len(value) != 1:
            problems.append((where, f"expected one assistant message, got a list of {len(value)}"))
            return ""
        value, where = value[0], f"{where}[0]"
    calls: list[dict] = []
    if type(value) is dict:
        if value.get("role") != "assistant":
            problems.append((f"{where}.role", 'expected "assistant"'))
            return ""
        extra = sorted(set(value) - {"role", "content", "tool_calls"})
        if extra:
            problems.append((where, f"unsupported key {_shown(extra[0], 40)}: a side is text or role and content"))
            return ""
        if "tool_calls" in value:
            if tools is None:
                problems.append((f"{where}.tool_calls", no_calls))
                return ""
            count = len(problems)
            calls = read_calls(value["tool_calls"], f"{where}.tool_calls", tools, problems)
            ids = [call["id"] for call in calls if call["id"]]
            if len(set(ids)) != len(ids):
                problems.append((f"{where}.tool_calls", "the calls of one turn need distinct ids"))
            if len(problems) > count:
                return ""
            if value.get("content") in (None, "") and calls:
                return completion_text("", calls)
        value, where = value.get("content"), f"{where}.content"
    text = text_of(value, where, problems)
    if type(value) is str and not value.strip() and not calls:
        problems.append((where, "empty: a side needs a completion"))
    return completion_text(text, calls) if tools is not None else text


def tools_of_record(value: Any, parallel: Any, where: str, tools: ToolSet | None, problems: list) -> None:
    """A record's own tools (a list, or its JSON text) and parallel_tool_calls: only the task's, on a tools task."""
    if tools is None:
        problems.append((where, "only a task of output format tools takes tools"))
        return
    if type(value) is str:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            problems.append((where, "expected an array of function definitions (or its JSON text)"))
            return
    found: list[tuple[str, str]] = []
    record_tools(value, parallel, tools, found)
    for field, message in found:  # record_tools names "tools[i]" and "parallel_tool_calls": say where they are
        problems.append((where + field[5:] if field.startswith("tools") else where[:-5] + field, message))
