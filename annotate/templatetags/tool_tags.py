# ruff: noqa: E501
"""Tools tasks shown to people: the tool set as a readable list, calls as function calls, and what changed in the
arguments between two texts of a final turn. Everything returned is plain data; templates escape it."""

import json
from typing import Any

import orjson
from django import template

from annotate.tools import completion_parts, completion_text, tools_of

register = template.Library()

MAX_SHOWN_CHARS = 200  # a value longer than this is cut in the readable views (the raw JSON keeps it whole)


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def _parameters(schema: dict, prefix: str = "", depth: int = 0) -> list[dict]:
    """Each parameter (nested objects' as "party.adults"), with its type, enum, whether required, description."""
    if not isinstance(schema, dict) or depth > 4:
        return []
    required = set(schema.get("required") or ())
    rows = []
    for name, sub in (schema.get("properties") or {}).items():
        sub = sub if isinstance(sub, dict) else {}
        rows.append(
            {
                "name": prefix + name,
                "type": sub.get("type") if isinstance(sub.get("type"), str) else "any",
                "required": name in required,
                "enum": [_value(v) for v in sub.get("enum", [])][:20] if isinstance(sub.get("enum"), list) else [],
                "description": str(sub.get("description", ""))[:300],
            }
        )
        if sub.get("type") == "object":
            rows += _parameters(sub, prefix + name + ".", depth + 1)
    return rows


@register.filter
def tool_list(template_or_text) -> list[dict]:
    """The tool set of a template (or its stored text) as [{name, description, parameters: [...]}]."""
    text = getattr(template_or_text, "tools", template_or_text)
    tools = tools_of(text) if isinstance(text, str) else None
    return [
        {
            "name": d["function"]["name"],
            "description": d["function"].get("description", ""),
            "parameters": _parameters(d["function"].get("parameters") or {}),
        }
        for d in tools or ()
    ]


def _arguments(call: dict) -> Any:
    try:
        return orjson.loads(call.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        return call.get("arguments")


def _call_view(call: dict) -> dict:
    arguments = _arguments(call)
    pairs = [(k, _value(v)) for k, v in arguments.items()] if isinstance(arguments, dict) else []
    shown = ", ".join(f"{k}={v}" for k, v in pairs) if isinstance(arguments, dict) else _value(arguments)
    return {"id": call.get("id", ""), "name": call.get("name", ""), "arguments": pairs,
            "signature": f"{call.get('name', '')}({shown})"}  # fmt: skip


@register.filter
def final_turn(completion: str) -> dict:
    """A stored final turn as {"content", "calls": [{"name", "id", "arguments": [(key, value)], "signature"}]}."""
    content, calls = completion_parts(completion or "")
    return {"content": content, "calls": [_call_view(c) for c in calls if isinstance(c, dict)]}


@register.filter
def turn_calls(message: dict) -> list[dict]:
    """The calls of a stored prior turn, readable."""
    return [_call_view(c) for c in (message.get("tool_calls") or ()) if isinstance(c, dict)]


def calls_diff(before: str, after: str) -> list[dict]:
    """What changed between two final turns' calls, call by call (by position): {"call", "change", "key", "before",
    "after"} rows; a call added or removed is one row. Linear in the arguments."""
    _, old = completion_parts(before or "")
    _, new = completion_parts(after or "")
    rows: list[dict] = []
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a is None or b is None:
            kept = b or a
            rows.append({"call": i + 1, "change": "added" if a is None else "removed", "key": kept.get("name", ""),
                         "before": "" if a is None else _call_view(a)["signature"],
                         "after": "" if b is None else _call_view(b)["signature"]})  # fmt: skip
            continue
        if a.get("name") != b.get("name"):
            rows.append(
                {"call": i + 1, "change": "function", "key": "", "before": a.get("name"), "after": b.get("name")}
            )
            continue
        x, y = _arguments(a), _arguments(b)
        if not isinstance(x, dict) or not isinstance(y, dict):
            if x != y:
                rows.append({"call": i + 1, "change": "arguments", "key": "", "before": _value(x), "after": _value(y)})
            continue
        for key in dict.fromkeys([*x, *y]):
            if x.get(key, ...) != y.get(key, ...):
                rows.append({"call": i + 1, "change": "argument", "key": f"{b.get('name')}.{key}",
                             "before": _value(x[key]) if key in x else "—", "after": _value(y[key]) if key in y else "—"})  # fmt: skip
    return rows


@register.simple_tag
def tool_calls_diff(before: str, after: str) -> list[dict]:
    return calls_diff(before, after)


@register.filter
def turn_json(message: dict) -> str:
    """An earlier assistant turn as the tool-call builder edits it: the stored shape of a final turn."""
    calls = [c for c in (message.get("tool_calls") or ()) if isinstance(c, dict)]
    return completion_text(str(message.get("content") or ""), calls)


@register.filter
def turn_field(index: int, name: str) -> str:
    """The posted name of an earlier turn's field: turn-<index>-<name> (annotate/tool_turns.py reads them)."""
    return f"turn-{index}-{name}"


@register.filter
def numbered(number: int, text: str) -> str:
    return f"{text} {number}"
