"""Tool-calling tasks: the tool set (OpenAI function definitions), a call checked against it, and the conversation of
a tool example.

Stored shapes (output format `tools`):

- The tool set lives on the prompt template (`PromptTemplate.tools`), so it is versioned with the template and
  frozen with it once examples use a version: a list of OpenAI function definitions
  `{"type": "function", "function": {"name", "description"?, "parameters"?: <JSON Schema of an object>}}`.
  `PromptTemplate.parallel_tool_calls` says whether one assistant turn may hold several calls.
- The tool set is stored as its JSON text, and a call's arguments too: PostgreSQL's jsonb would reorder their keys,
  and an export must give back the order that was written.
- A call, wherever it is stored: `{"id": str, "name": str, "arguments": "<JSON text of an object>"}` (the text as
  `json.dumps(…, ensure_ascii=False)` writes it, the key order kept: exactly what OpenAI's format holds).
- `Example.messages`: the turns before the final assistant turn, in order: `system` (first only), `user`,
  `assistant` (`content`, and `tool_calls` when it calls), `tool` (`tool_call_id`, `content`). The last user turn
  among them is the instruction's place: its text is the example's instruction, and exports render it from the
  fields through the template, as a chat task's user turn. Without any user turn, the user turn follows the
  messages.
- `Example.completion`: the final assistant turn as JSON text, `{"content": str, "tool_calls": [calls]}`
  (completion_text writes it; content "" when the turn only calls, tool_calls [] when it only answers).

A call is valid when it names a function of the tool set and its arguments, a JSON object, validate against that
function's parameters (annotate/schemas.py: bounded, nothing fetched). A conversation is valid when its roles come
in order and every call of a prior turn is answered by a `tool` message with its id before the next user or
assistant turn. Each function below names what is wrong by field (`tools[2].function.parameters`,
`messages[3].tool_calls[0].function.arguments.city`).
"""

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from .schemas import JSONProblem, compile_schema, limit, parse_json, schema_problems

MAX_TOOLS = 128  # OpenAI's limit on functions per request
MAX_CALLS = 128  # calls in one assistant turn
# Argument checks a tool set remembers, each keyed by arguments of at most CHECKED_KEY_MAX bytes of JSON (longer ones
# are checked every time): at most about 20 MB a tool set, for 8 tool sets a process.
CHECKED_MAX = 20_000
CHECKED_KEY_MAX = 1_024
MAX_ID_CHARS = 200
# OpenAI's rule for function names.
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFINITION_KEYS = frozenset({"type", "function"})
FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    return {dict: "an object", list: "an array", str: "a string"}.get(type(value), type(value).__name__)


def _quoted(text: Any, size: int = 60) -> str:
    text = str(text)
    return text if len(text) <= size else text[: size - 1] + "…"


# --- the tool set ----------------------------------------------------------------------------------------------


def toolset_problems(tools: Any) -> list[str]:
    """What keeps `tools` from being a tool set, each naming the definition (its position and function name) and the
    field; [] when it is fine. Bounded: at most MAX_TOOLS definitions, each schema within the JSON Schema limits."""
    if not isinstance(tools, list):
        return [f"The tool set must be a JSON array of function definitions, not {_kind(tools)}."]
    if len(tools) > MAX_TOOLS:
        return [f"The tool set has {len(tools):,} functions; the limit is {MAX_TOOLS}."]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, definition in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(definition, dict):
            problems.append(f"{where}: expected an object {{type, function}}, got {_kind(definition)}.")
            continue
        function = definition.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            where = f'{where} (function "{_quoted(name)}")'
        if definition.get("type") != "function":
            problems.append(f'{where}: "type" must be "function".')
        extra = sorted(set(definition) - DEFINITION_KEYS)
        if extra:
            problems.append(f"{where}: unknown keys {', '.join(_quoted(k, 40) for k in extra[:5])}.")
        if not isinstance(function, dict):
            problems.append(f'{where}: "function" must be an object {{name, description, parameters}}.')
            continue
        extra = sorted(set(function) - FUNCTION_KEYS)
        if extra:
            problems.append(f"{where}: function: unknown keys {', '.join(_quoted(k, 40) for k in extra[:5])}.")
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(
                f"{where}: function.name must be 1 to 64 letters, digits, _ or - (got {_quoted(json.dumps(name))})."
            )
        elif name in seen:
            problems.append(f'{where}: function.name "{name}" is defined again (first at tools[{seen[name]}]).')
        else:
            seen[name] = i
        description = function.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{where}: function.description must be a string, got {_kind(description)}.")
        if "strict" in function and not isinstance(function["strict"], bool):
            problems.append(f"{where}: function.strict must be true or false.")
        if "parameters" in function:
            parameters = function["parameters"]
            if not isinstance(parameters, dict):
                problems.append(f"{where}: function.parameters must be a JSON Schema object, got {_kind(parameters)}.")
                continue
            if parameters.get("type", "object") != "object":
                problems.append(f'{where}: function.parameters must describe an object ("type": "object").')
                continue
            problems.extend(f"{where}: function.parameters: {p}" for p in schema_problems(parameters))
        if len(problems) >= 20:
            break
    return problems[:20]


def tools_of(text: str | None) -> list | None:
    """The stored tool set (its JSON text, already checked) as a list; None for a template of another task."""
    if text is None:
        return None
    return orjson.loads(text) if text else []


def tools_text(tools: list) -> str:
    """The stored text of a tool set (key order kept)."""
    return json.dumps(tools, ensure_ascii=False, indent=2)


def arguments_of(call: dict) -> dict:
    """The arguments of a stored call, as an object (key order kept)."""
    return orjson.loads(call["arguments"])


def parse_toolset(text: str) -> list:
    """The tool set in `text` (a JSON array). Raise ValueError naming what is wrong: the JSON, or each definition."""
    try:
        tools = parse_json(text, max_depth=limit("JSON_SCHEMA_MAX_DEPTH") + 4)
    except JSONProblem as exc:
        raise ValueError(f"The tool set is not valid JSON: {exc.reason}.") from None
    problems = toolset_problems(tools)
    if problems:
        raise ValueError(" ".join(problems))
    return tools


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    parameters: dict
    required: tuple[str, ...]


class ToolSet:
    """A checked tool set, ready to check calls (each function's parameters compiled once, cached)."""

    def __init__(self, tools: list, *, parallel: bool = True) -> None:
        self.tools = tools
        self.parallel = parallel
        self._checked: dict[tuple[str, bytes], tuple[str, str] | None] = {}
        self.functions: dict[str, Function] = {}
        for definition in tools:
            function = definition["function"]
            parameters = function.get("parameters") or {"type": "object", "properties": {}}
            required = parameters.get("required") if isinstance(parameters.get("required"), list) else []
            self.functions[function["name"]] = Function(
                function["name"], function.get("description") or "", parameters, tuple(required)
            )

    @classmethod
    def of(cls, template) -> "ToolSet | None":
        """The tool set of a template of a tools task, or None for any other task. One instance per tool set and
        process (_cached): an import checks each call when it reads the record and again in the quality checks of
        the row it writes, and the second check is then a lookup."""
        if template is None or template.tools is None:
            return None
        return _cached(template.tools, template.parallel_tool_calls)

    @classmethod
    def of_text(cls, text: str, *, parallel: bool) -> "ToolSet":
        """The tool set stored as `text` (a template's `tools`), shared as ToolSet.of shares it."""
        return _cached(text, parallel)

    def arguments_problem(self, name: str, arguments: Any) -> tuple[str, str] | None:
        """(field under the arguments, why) when `arguments` is not valid for function `name`; None when it is.
        The field is "" for the arguments as a whole. Results are remembered per (function, arguments), at most
        CHECKED_MAX of them (then forgotten all at once): memory stays bounded."""
        try:
            key = (name, orjson.dumps(arguments))
        except (TypeError, orjson.JSONEncodeError):
            return self._arguments_problem(name, arguments)
        if len(key[1]) > CHECKED_KEY_MAX:
            return self._arguments_problem(name, arguments)
        found = self._checked.get(key, self)
        if found is self:
            if len(self._checked) >= CHECKED_MAX:
                self._checked.clear()
            found = self._checked[key] = self._arguments_problem(name, arguments)
        return found

    def _arguments_problem(self, name: str, arguments: Any) -> tuple[str, str] | None:
        function = self.functions.get(name)
        if function is None:
            known = ", ".join(sorted(self.functions)[:20]) or "none"
            return "", f'unknown function "{_quoted(name)}" (the tool set defines: {known})'
        if not isinstance(arguments, dict):
            return "", f"the arguments must be a JSON object, got {_kind(arguments)}"
        schema = compile_schema(function.parameters)
        if schema is None:
            return None
        mismatch = schema.check(arguments)
        if mismatch is None:
            return None
        if mismatch.stopped:
            return "", f"could not be checked against {name}'s parameters: {mismatch.stopped}"
        path = mismatch.path[1:] if mismatch.path.startswith("$") else mismatch.path  # "$.city" -> ".city"
        return path, f"does not match {name}'s parameters: {mismatch.message}"


@lru_cache(maxsize=8)
def _cached(text: str, parallel: bool) -> ToolSet:
    return ToolSet(tools_of(text) or [], parallel=parallel)


# --- calls and turns -------------------------------------------------------------------------------------------


class ToolProblem(ValueError):
    """What is wrong with a conversation or a final turn: (field, message) pairs, fields relative to its source."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in problems))
        self.problems = problems


def read_arguments(value: Any) -> tuple[Any, str | None]:
    """The arguments of a call as given: a JSON string (OpenAI's shape) or an object (TRL's). (value, problem)."""
    if isinstance(value, str):
        try:
            value = parse_json(value, max_depth=limit("JSON_DOCUMENT_MAX_DEPTH"))
        except JSONProblem as exc:
            return None, f"not valid JSON: {exc.reason}"
    if not isinstance(value, dict):
        return None, f"must be a JSON object (or the JSON text of one), got {_kind(value)}"
    return value, None


def read_call(raw: Any, where: str, tools: ToolSet, problems: list) -> dict | None:
    """A call in OpenAI's shape ({id, type, function: {name, arguments}}) or the stored one ({id, name,
    arguments}), checked against the tool set; None after adding its problems."""
    if not isinstance(raw, dict):
        problems.append((where, f"expected a call object {{id, type, function}}, got {_kind(raw)}"))
        return None
    if "function" in raw:
        function = raw["function"]
        if raw.get("type", "function") != "function":
            problems.append((f"{where}.type", 'must be "function"'))
        if not isinstance(function, dict):
            problems.append((f"{where}.function", f"expected an object {{name, arguments}}, got {_kind(function)}"))
            return None
        name, arguments, at = function.get("name"), function.get("arguments", {}), f"{where}.function"
    else:
        name, arguments, at = raw.get("name"), raw.get("arguments", {}), where
    call_id = raw.get("id", "")
    if call_id is None:
        call_id = ""
    if not isinstance(call_id, str) or len(call_id) > MAX_ID_CHARS:
        problems.append((f"{where}.id", f"must be a string of at most {MAX_ID_CHARS} characters"))
        return None
    if not isinstance(name, str) or not name:
        problems.append((f"{at}.name", "missing: name the function called"))
        return None
    arguments, problem = read_arguments(arguments)
    if problem:
        problems.append((f"{at}.arguments", problem))
        return None
    found = tools.arguments_problem(name, arguments)
    if found is not None:
        field, message = found
        problems.append((f"{at}.name" if message.startswith("unknown function") else f"{at}.arguments{field}", message))
        return None
    return {"id": call_id, "name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}


def read_calls(raw: Any, where: str, tools: ToolSet, problems: list) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append((where, f"expected an array of calls, got {_kind(raw)}"))
        return []
    if len(raw) > MAX_CALLS:
        problems.append((where, f"{len(raw):,} calls in one turn; the limit is {MAX_CALLS}"))
        return []
    if len(raw) > 1 and not tools.parallel:
        problems.append((where, f"{len(raw)} calls in one turn, but the task's tool set allows no parallel calls"))
    calls = [read_call(call, f"{where}[{i}]", tools, problems) for i, call in enumerate(raw)]
    return [call for call in calls if call is not None]


def with_user_turn(turns: list[dict], instruction: str) -> list[dict]:
    """The stored turns with the instruction's user turn where exports place it: the turns hold it already when they
    have a user turn; else it follows them (an example written from scratch has only its instruction)."""
    if any(turn.get("role") == "user" for turn in turns) or not instruction.strip():
        return turns
    return [*turns, {"role": "user", "content": instruction}]


def check_conversation(turns: list[dict], *, final: dict | None, where: str = "messages") -> list[tuple[str, str]]:
    """Problems of the order of stored turns (and the final assistant turn, when given): roles out of order,
    duplicate call ids, a call with no tool result, a tool result answering no call. Linear in the turns."""
    problems: list[tuple[str, str]] = []
    ids: dict[str, str] = {}
    pending: dict[str, str] = {}  # call id -> function, of the last assistant turn that called
    previous = None  # "system", "user", "assistant", "calls", "tool"
    sequence = [*turns, *([{"role": "assistant", "final": True, **final}] if final is not None else [])]
    for i, turn in enumerate(sequence):
        at = f"{where}[{i}]" if not turn.get("final") else f"{where}[{i}] (the final assistant turn)"
        role = turn["role"]
        if role == "tool":
            call_id = turn.get("tool_call_id", "")
            if call_id not in pending:
                reason = "answers no call" if call_id not in ids else "answers a call already answered or too late"
                problems.append((f"{at}.tool_call_id", f'the tool result "{_quoted(call_id)}" {reason}'))
            else:
                del pending[call_id]
            previous = "tool"
            continue
        if pending:
            shown = ", ".join(f'{name} ("{_quoted(call_id)}")' for call_id, name in list(pending.items())[:5])
            problems.append((at, f"the call {shown} has no tool result before this {role} turn"))
            pending.clear()
        if role == "system":
            if i:
                problems.append((f"{at}.role", "a system message may only come first"))
        elif role == "user":
            if previous in ("user",):
                problems.append((f"{at}.role", "two user turns in a row: roles out of order"))
        elif role == "assistant":
            if previous in (None, "system"):
                problems.append((f"{at}.role", "the conversation must start with the user's turn"))
            elif previous == "assistant":
                problems.append((f"{at}.role", "two assistant turns in a row without tool results between"))
        for j, call in enumerate(turn.get("tool_calls") or ()):
            call_id = call["id"]
            if call_id in ids:
                problems.append((f"{at}.tool_calls[{j}].id", f'duplicate call id "{_quoted(call_id)}"'))
            elif call_id:
                ids[call_id] = call["name"]
                if not turn.get("final"):
                    pending[call_id] = call["name"]
            elif not turn.get("final"):
                problems.append((f"{at}.tool_calls[{j}].id", "missing: a call before the final turn needs an id"))
        previous = "calls" if role == "assistant" and turn.get("tool_calls") else role
    if pending:
        shown = ", ".join(f'{name} ("{_quoted(call_id)}")' for call_id, name in list(pending.items())[:5])
        problems.append((where, f"the call {shown} has no tool result"))
    return problems


# --- the completion: the final assistant turn -----------------------------------------------------------------


def completion_text(content: str, calls: list[dict]) -> str:
    """The stored completion of a tool example (see the module docstring)."""
    stored = [{"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in calls]
    return json.dumps({"content": content, "tool_calls": stored}, ensure_ascii=False)


def completion_parts(text: str) -> tuple[str, list[dict]]:
    """(content, calls) of a stored completion; ("", []) for an empty one; the text itself as content when it is not
    the stored shape (an example written before its task became a tools task)."""
    if not text:
        return "", []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text, []
    if not isinstance(value, dict) or set(value) != {"content", "tool_calls"}:
        return text, []
    return value["content"] or "", list(value["tool_calls"] or ())


def completion_problems(text: str, tools: ToolSet, *, turns: list[dict] | None = None) -> list[tuple[str, str]]:
    """What is wrong with a completion an editor sends for a tool example (the stored JSON shape; calls in either
    call shape): fields relative to the completion. Checks the calls against the tool set and, with `turns`, the
    final turn against the conversation before it. Bounded by the document limits of annotate/schemas.py."""
    if len(text) > (max_chars := limit("JSON_DOCUMENT_MAX_CHARS")):
        return [("", f"{len(text):,} characters; the limit is {max_chars:,}")]
    try:
        value = parse_json(text, max_depth=limit("JSON_DOCUMENT_MAX_DEPTH"))
    except JSONProblem as exc:
        return [("", f"not valid JSON: {exc.reason}")]
    if not isinstance(value, dict) or not set(value) <= {"content", "tool_calls"}:
        return [("", 'expected an object {"content", "tool_calls"}')]
    problems: list[tuple[str, str]] = []
    content = value.get("content") or ""
    if not isinstance(content, str):
        problems.append(("content", f"expected a string, got {_kind(content)}"))
        content = ""
    calls = read_calls(value.get("tool_calls"), "tool_calls", tools, problems)
    if not problems and not content.strip() and not calls:
        problems.append(("", "the final turn needs text, a tool call, or both"))
    if not problems and turns is not None:
        problems.extend(check_conversation(turns, final={"content": content, "tool_calls": calls}))
    return problems


def completion_normalised(text: str, tools: ToolSet) -> str:
    """The stored text of a valid completion (calls in the stored shape). Raise ToolProblem."""
    problems = completion_problems(text, tools)
    if problems:
        raise ToolProblem(problems)
    value = orjson.loads(text)
    calls = read_calls(value.get("tool_calls"), "tool_calls", tools, [])
    return completion_text(value.get("content") or "", calls)
