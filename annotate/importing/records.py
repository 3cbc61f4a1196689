"""Records: a raw record of the file (keys and values) mapped to the fields of an example, and checked."""

from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson

from ..models import Example, Kind
from ..rendering import CHAT_ROLES
from . import limits
from .common import HAPPY, _json_problem, _shown, _unstorable_problem
from .reading import _Reader

TEXT_FIELDS = ("instruction", "context", "input", "completion")
# The fields a key (a JSON key, a CSV column) can be mapped to, with the labels of the mapping form.
FIELDS = {
    "instruction": "Instruction (or prompt)",
    "context": "Context",
    "input": "Input",
    "completion": "Completion (or output)",
    "kind": "Kind",
    "external_id": "External id",
    "messages": "Chat messages (OpenAI shape)",
}
# Keys matched by name (case-insensitive), when the lead does not map them.
NAME_MATCHES = {
    "instruction": "instruction",
    "prompt": "instruction",
    "context": "context",
    "input": "input",
    "output": "completion",
    "completion": "completion",
    "kind": "kind",
    "id": "external_id",
    "external_id": "external_id",
    "messages": "messages",
}
EXTERNAL_ID_MAX = Example._meta.get_field("external_id").max_length
KINDS = frozenset(Kind.values)
KIND_LIST = ", ".join(Kind.values[:-1]) + f" or {Kind.values[-1]}"
CHAT_ROLE_SET = frozenset(CHAT_ROLES)


class Record(NamedTuple):
    """One record as it will be stored."""

    instruction: str
    context: str
    input: str
    completion: str
    kind: str
    external_id: str
    messages: list


class _Invalid(Exception):
    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return {dict: "an object", list: "an array", str: "a string"}.get(type(value), type(value).__name__)


def _text_problem(value: str) -> str | None:
    if len(value) > limits.MAX_FIELD_CHARS:
        return f"{len(value):,} characters, over the limit of {limits.MAX_FIELD_CHARS:,} characters a field"
    return _unstorable_problem(value)


class Mapper:
    """Turns a raw record (a dict of keys to values) into a Record, by the mapping and then by name matching."""

    def __init__(self, mapping: dict[str, str] | None = None) -> None:
        self.mapping = {key: target for key, target in (mapping or {}).items() if target in FIELDS or target == ""}
        self._targets: dict[str, str | None] = {}
        self.ignored: set[str] = set()
        self.id_key = "id"  # the key that gave the last record's external id, to name it in a duplicate

    def target(self, key: str) -> str | None:
        """The field a key goes to; None when it is ignored."""
        try:
            return self._targets[key]
        except KeyError:
            target = self.mapping[key] if key in self.mapping else NAME_MATCHES.get(str(key).strip().lower())
            target = target or None
            if target is None and len(self.ignored) < 20:
                self.ignored.add(key)
            if len(self._targets) < 10_000:  # a file with endless distinct keys must not grow this without bound
                self._targets[key] = target
            return target

    def record(self, raw: Any) -> Record:
        """The record as it will be stored. Raise _Invalid with every problem of the record (field, message)."""
        if type(raw) is not dict:
            raise _Invalid([(None, f"expected a JSON object {{…}}, got {_type_name(raw)}")])
        values: dict[str, Any] = {}
        keys: dict[str, str] = {}
        problems: list[tuple[str | None, str]] = []
        for key, value in raw.items():
            target = self.target(key)
            if target is None or value is None or value == "":
                continue
            if target in values:
                problems.append((key, f'gives the {target} again (so does "{_shown(keys[target])}"); keep one'))
                continue
            values[target] = value
            keys[target] = key
        messages: list = []
        if "messages" in values:
            messages = self._messages(values, keys, problems)
        texts = []
        for name in TEXT_FIELDS:
            value = values.get(name, "")
            if type(value) is not str:
                problems.append((keys[name], f"expected a string, got {_type_name(value)}"))
                value = None
            elif value and (problem := _text_problem(value)):
                problems.append((keys[name], problem))
            texts.append(value)
        if texts[0] is not None and not texts[0].strip() and "messages" not in keys:
            problems.append(("instruction", "missing: give an instruction (or a prompt, or chat messages)"))
        kind = values.get("kind", HAPPY)
        if type(kind) is not str:
            problems.append((keys["kind"], f"expected a string, got {_type_name(kind)}"))
        else:
            kind = kind.strip().lower() or HAPPY
            if kind not in KINDS:
                problems.append((keys["kind"], f'unknown kind "{_shown(values["kind"], 50)}"; use {KIND_LIST}'))
        external_id = values.get("external_id", "")
        if external_id:
            self.id_key = keys["external_id"]
        if type(external_id) is int:
            external_id = str(external_id)
        if type(external_id) is not str:
            problems.append(
                (keys["external_id"], f"expected a string or a whole number, got {_type_name(external_id)}")
            )
            external_id = ""
        else:
            external_id = external_id.strip()
            if len(external_id) > EXTERNAL_ID_MAX:
                problems.append((keys["external_id"], f"longer than {EXTERNAL_ID_MAX} characters"))
            elif problem := _unstorable_problem(external_id):
                problems.append((keys["external_id"], problem))
        if problems:
            raise _Invalid(problems)
        return Record(*texts, kind, external_id, messages)

    @staticmethod
    def _messages(values: dict, keys: dict, problems: list) -> list:
        """Split OpenAI chat messages into prior turns, the instruction and the completion (set in `values`)."""
        key = keys["messages"]
        messages = values.pop("messages")
        if isinstance(messages, str):  # a CSV cell holding the JSON of the messages
            try:
                messages = orjson.loads(messages)
            except orjson.JSONDecodeError as exc:
                problems.append((key, _json_problem(exc)))
                return []
        if type(messages) is not list:
            problems.append((key, f"expected an array of {{role, content}} messages, got {_type_name(messages)}"))
            return []
        for name in ("instruction", "completion"):
            if name in values:
                problems.append((keys[name], f'give either chat messages ("{key}") or the {name}, not both'))
        turns = []
        for i, message in enumerate(messages):
            where = f"{key}[{i}]"
            if type(message) is not dict:
                problems.append((where, f"expected an object {{role, content}}, got {_type_name(message)}"))
                continue
            role = message.get("role")
            content = message.get("content")
            content = "" if content is None else content
            if not isinstance(role, str) or role not in CHAT_ROLE_SET:
                shown = _shown(role, 50) if isinstance(role, str) else _type_name(role)
                problems.append((f"{where}.role", f'unknown role "{shown}"; use system, user or assistant'))
            elif type(content) is not str:
                problems.append((f"{where}.content", f"expected a string, got {_type_name(content)}"))
            elif problem := _text_problem(content):
                problems.append((f"{where}.content", problem))
            else:
                turns.append({"role": role, "content": content})
        if len(turns) < len(messages):
            return []
        if turns and turns[-1]["role"] == "assistant":
            values["completion"] = turns.pop()["content"]
            keys["completion"] = key
        if not turns or turns[-1]["role"] != "user":
            problems.append(
                (key, "the last message before the assistant's answer must be the user's (the instruction)")
            )
            return []
        values["instruction"] = turns.pop()["content"]
        keys["instruction"] = key
        return turns


def _records(reader: _Reader, mapper: Mapper) -> Iterator[tuple[int, Any, Record | None, list | None]]:
    """(order, location, record, problems) of every record; problems is None when the record is good."""
    order = 0
    for loc, raw, problem in reader:
        order += 1
        if problem is not None:
            yield order, loc, None, [(None, problem)]
            continue
        try:
            yield order, loc, mapper.record(raw), None
        except _Invalid as exc:
            yield order, loc, None, exc.problems
