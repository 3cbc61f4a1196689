"""Quality checks of tools tasks (annotate/tools.py says what is stored).

Per example (scope "example", as the annotator types and at submit): calls to functions the tool set does not
define (`unknown_tool`), arguments that are not a JSON object valid against the function's parameters
(`tool_arguments`), and the conversation's order (a call with no result, a result answering no call: `format`).
Task-wide (scope "summary"): each function of the tool set that no example calls (`tool_coverage`), and the share of
examples that call nothing at all (`no_call_share`: a refusal, a question back, a plain answer; with none, the model
never learns when not to call; with only those, it never learns to call). Duplicates and contradictions compare
a tool example's final turn by its text and its calls' functions and arguments (ids and the order of parallel calls
ignored): `completion_key`.
"""

import hashlib
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson

from ..tools import ToolSet, check_conversation, completion_parts, with_user_turn
from .checks import Finding
from .text import fold

TOOLS = "tools"
CODES = ("unknown_tool", "tool_arguments", "tool_coverage", "no_call_share")  # the checks of tools tasks only
# The no-call share is judged once the task has this many examples with a final turn.
NO_CALL_MIN_EXAMPLES = 10
_SHOWN = 3  # problems a message names before "and N more"


def _arguments(call: dict) -> Any:
    value = call.get("arguments")
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def _calls(turns: list, final: list[dict]) -> list[tuple[str, dict]]:
    """(where, call) of every call: the prior turns' and the final turn's."""
    out = []
    for i, turn in enumerate(turns, 1):
        if isinstance(turn, dict):
            out += [(f"turn {i}", call) for call in turn.get("tool_calls") or () if isinstance(call, dict)]
    out += [("the final turn", call) for call in final if isinstance(call, dict)]
    return out


def tool_findings(
    rules, fields: Mapping[str, str], messages: Any, completion: str, toolset: ToolSet | None
) -> list[Finding]:
    """The per-example findings of a tools task's example, its calls checked against `toolset`: the tool set of the
    example's own template version."""
    found: list[Finding] = []
    turns = messages if isinstance(messages, list) else []
    if not fields["instruction"].strip() and not any(
        isinstance(t, dict) and t.get("role") == "user" and str(t.get("content") or "").strip() for t in turns
    ):
        found.append(rules.finding("missing_field", "The conversation has no user message: write one."))
    content, calls = completion_parts(completion)
    if not content.strip() and not calls:
        found.append(rules.finding("empty", "The final turn has neither text nor a tool call."))
        return found
    unknown: list[str] = []
    invalid: list[str] = []
    for where, call in _calls(turns, calls):
        name = call.get("name")
        if toolset is None or name not in toolset.functions:
            unknown.append(f"{where} calls “{name}”")
            continue
        arguments = _arguments(call)
        problem = (
            ("", "the arguments are not valid JSON")
            if arguments is None and call.get("arguments")
            else toolset.arguments_problem(name, arguments)
        )
        if problem is not None:
            field, message = problem
            invalid.append(f"{where}, {name}{'.' + field.lstrip('.') if field else ''}: {message}")
    for code, items, lead in (
        ("unknown_tool", unknown, "A call names a function the tool set does not define"),
        ("tool_arguments", invalid, "A call's arguments are not valid"),
    ):
        if items:
            more = f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
            found.append(rules.finding(code, f"{lead}: {'; '.join(items[:_SHOWN])}{more}.", problems=items[:10]))
    order = check_conversation(
        with_user_turn([t for t in turns if isinstance(t, dict) and "role" in t], fields["instruction"]),
        final={"content": content, "tool_calls": [c for c in calls if isinstance(c, dict) and "id" in c]},
    )
    if order:
        shown = [f"{where}: {message}" if where else message for where, message in order]
        more = f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""
        found.append(rules.finding("format", shown[0] + more, problems=shown[:10]))
    if content and content != content.strip():
        found.append(rules.finding("whitespace", "The final turn's text starts or ends with whitespace."))
    return found


def completion_key(completion: str) -> int:
    """A 64-bit key of the final turn: its text folded, and its calls by function and arguments (keys sorted), ids
    and the order of parallel calls left out; 0 when empty."""
    content, calls = completion_parts(completion)
    if not content.strip() and not calls:
        return 0
    shown = sorted(
        (str(call.get("name")), orjson.dumps(_arguments(call), option=orjson.OPT_SORT_KEYS).decode())
        for call in calls
        if isinstance(call, dict)
    )
    data = orjson.dumps([fold(content).decode(errors="replace"), shown])
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest())


class ToolTally:
    """Counts, over a task's examples in play, the calls of each function and the final turns that call nothing."""

    def __init__(self, rules) -> None:
        self.rules = rules
        self.called: Counter = Counter()
        self.answered = 0  # examples with a final turn
        self.no_call = 0

    def add(self, messages: Any, completion: str) -> None:
        content, calls = completion_parts(completion)
        turns = messages if isinstance(messages, list) else []
        every = _calls(turns, calls)
        for _, call in every:
            self.called[call.get("name")] += 1
        if content.strip() or calls:
            self.answered += 1
            self.no_call += not every

    def findings(self) -> tuple[list[Finding], dict]:
        toolset: ToolSet | None = self.rules.tools
        found: list[Finding] = []
        names = list(toolset.functions) if toolset is not None else []
        for name in names:
            if not self.called[name]:
                found.append(
                    Finding(
                        "tool_coverage",
                        f"No example calls “{name}”: the model will not learn when to use it.",
                        False,
                        {"function": name},
                    )
                )
        share = self.no_call / self.answered if self.answered else 0.0
        if self.answered >= NO_CALL_MIN_EXAMPLES and self.no_call in (0, self.answered):
            message = (
                "No example answers without calling a tool: the model will not learn when not to call (add "
                "refusals, questions back, plain answers)."
                if self.no_call == 0
                else "No example calls a tool: the model will not learn to call."
            )
            found.append(Finding("no_call_share", message, False, {"share": round(share, 4)}))
        totals = {
            "tool_calls": {name: int(self.called[name]) for name in names},
            "no_call": self.no_call,
            "no_call_share": round(share, 4),
        }
        return found, totals
