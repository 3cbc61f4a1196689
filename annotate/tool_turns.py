"""The prior turns of a tool example as the editor posts them, read back into the stored messages (annotate/tools.py).

The editor (templates/annotate/_tool_turns_edit.html) posts each earlier turn as `turn-N-role` and, by role:
`turn-N-content` (system, user, and a tool result's content), `turn-N-tool_call_id` (the call a tool result answers),
and `turn-N-turn` (an assistant turn as the tool-call builder writes it: `{"content", "tool_calls"}`, the stored
shape of a final turn). Reading them checks their shape only, naming the turn and the field; a call to a function the
tool set does not define, or arguments its parameters refuse, are stored and warned about as in the final turn
(quality/tools.py), and the order (a call with no result, a result answering no call) is checked by
`order_refusal`, which a submission applies as an import does.
"""

import json

import orjson
from django.core.exceptions import ValidationError

from . import limits
from .tools import MAX_CALLS, MAX_ID_CHARS, check_conversation, completion_parts, with_user_turn

ROLES = ("system", "user", "assistant", "tool")


def _arguments_text(value: str) -> str:
    """The stored text of a call's arguments: a JSON object written as imports write it, else the text as typed (the
    checks then warn that it is not valid JSON)."""
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    return json.dumps(parsed, ensure_ascii=False) if isinstance(parsed, dict) else value


def _calls(raw, where: str) -> list[dict]:
    if not isinstance(raw, list):
        raise ValidationError(f"{where}: tool_calls must be a list of calls.")
    if len(raw) > MAX_CALLS:
        raise ValidationError(f"{where}: {len(raw):,} calls in one turn; the limit is {MAX_CALLS}.")
    calls = []
    for j, call in enumerate(raw, start=1):
        at = f"{where}, call {j}"
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise ValidationError(f"{at}: a call needs the name of a function.")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id or len(call_id) > MAX_ID_CHARS:
            raise ValidationError(f"{at}: a call before the final turn needs an id of 1 to {MAX_ID_CHARS} characters.")
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append({"id": call_id, "name": call["name"], "arguments": _arguments_text(arguments)})
    return calls


def _assistant(text: str, where: str) -> dict:
    if problem := limits.text_problem(text):
        raise ValidationError(f"{where} {problem}.")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValidationError(f'{where}: not valid JSON; expected {{"content", "tool_calls"}}.') from None
    if not isinstance(value, dict) or not set(value) <= {"content", "tool_calls"}:
        raise ValidationError(f'{where}: expected an object {{"content", "tool_calls"}}.')
    content = value.get("content") or ""
    if not isinstance(content, str):
        raise ValidationError(f"{where}: content must be text.")
    calls = _calls(value.get("tool_calls") or [], where)
    if not content.strip() and not calls:
        raise ValidationError(f"{where} has neither text nor a tool call.")
    turn: dict = {"role": "assistant", "content": content}
    if calls:
        turn["tool_calls"] = calls
    return turn


def posted_tool_turns(data) -> list[dict] | None:
    """The prior turns posted by the editor of a tool example (a QueryDict), or None when none were posted. Raise
    ValidationError naming the turn ("Turn 3 (tool)") and what is wrong with its shape. The loop is bounded by the
    posted fields (DATA_UPLOAD_MAX_NUMBER_FIELDS); how many turns an example may hold, the save checks."""
    if "turn-0-role" not in data:
        return None
    turns = []
    for i in range(len(data)):
        role = data.get(f"turn-{i}-role")
        if role is None:
            break
        where = f"Turn {i + 1} ({role})"
        if role not in ROLES:
            raise ValidationError(f"Turn {i + 1}: unknown role {role[:40]!r}; use system, user, assistant or tool.")
        if role == "assistant":
            turns.append(_assistant((data.get(f"turn-{i}-turn") or "").replace("\r\n", "\n"), where))
            continue
        content = (data.get(f"turn-{i}-content") or "").replace("\r\n", "\n")
        if role == "tool":
            call_id = (data.get(f"turn-{i}-tool_call_id") or "").strip()
            if not call_id or len(call_id) > MAX_ID_CHARS:
                raise ValidationError(f"{where}: name the call this result answers (its id).")
            turns.append({"role": "tool", "content": content, "tool_call_id": call_id})
            continue
        if not content.strip():
            raise ValidationError(f"{where} is empty.")
        turns.append({"role": role, "content": content})
    return turns


def instruction_of(turns: list[dict]) -> str | None:
    """The text of the last user turn: the instruction's place (annotate/tools.py); None without a user turn."""
    users = [turn["content"] for turn in turns if turn["role"] == "user"]
    return users[-1] if users else None


def order_refusal(turns: list[dict], *, instruction: str, completion: str) -> None:
    """Raise ValidationError naming each turn out of order, as an import refuses them: a call with no tool result
    before the next turn, a result answering no call, roles out of order, duplicate call ids."""
    content, calls = completion_parts(completion)
    found = check_conversation(
        with_user_turn(turns, instruction),
        final={"content": content, "tool_calls": [c for c in calls if isinstance(c, dict) and "id" in c]},
        where="turn",
    )
    if found:
        shown = [f"{_turn_name(where)}: {message}" if where else message for where, message in found[:10]]
        raise ValidationError("The earlier turns are out of order: " + "; ".join(shown) + ".")


def _turn_name(where: str) -> str:
    """ "turn[2].tool_call_id" -> "turn 3 (tool_call_id)": numbered from 1, as the editor shows them."""
    if not where.startswith("turn[") or "]" not in where:
        return where
    number, _, rest = where[5:].partition("]")
    try:
        shown = f"turn {int(number) + 1}"
    except ValueError:
        return where
    return f"{shown} {rest.strip().lstrip('.')}".strip()
