"""Records: a raw record of the file (keys and values) mapped to the fields of an example, and checked."""

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson

from ..models import Example, Kind
from ..rendering import CHAT_ROLES
from ..tools import ToolSet
from . import limits
from .common import _UNREADABLE, HAPPY, ImportFailed, _shown, _unstorable_problem, popped_messages
from .mapping import MISSING, Mapping, Mismatch, PathError, has_rest, key_label, path_text, pick, tries_of
from .reading import _Reader
from .tool_records import record_tools, tool_messages

TEXT_FIELDS = ("instruction", "context", "input", "completion", "reasoning")
# The fields a key (a JSON key, a CSV column) can be mapped to, with the labels of the mapping form.
FIELDS = {
    "instruction": "Instruction (or prompt)",
    "context": "Context",
    "input": "Input",
    "completion": "Completion (or output)",
    "reasoning": "Reasoning (chain of thought)",
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
    "reasoning": "reasoning",
    "reasoning_content": "reasoning",
    "kind": "kind",
    "id": "external_id",
    "external_id": "external_id",
    "messages": "messages",
}
EXTERNAL_ID_MAX = Example._meta.get_field("external_id").max_length
KINDS = frozenset(Kind.values)
KIND_LIST = ", ".join(Kind.values[:-1]) + f" or {Kind.values[-1]}"
CHAT_ROLE_SET = frozenset(CHAT_ROLES)
MAX_METADATA_CHARS = 100_000  # the JSON of the values one example keeps as metadata
MAX_REFUSED = 100  # keys that no field takes, counted for the message (a file of endless distinct keys)
NOT_TAKEN = "no field takes this key (map it, or choose to drop it or keep it as metadata)"


class Record(NamedTuple):
    """One record as it will be stored."""

    instruction: str
    context: str
    input: str
    completion: str
    kind: str
    external_id: str
    messages: list
    metadata: str = ""  # the JSON of the values kept as metadata ("" when none)
    reasoning: str = ""  # the reasoning before the completion: a `reasoning` key, or the answer's reasoning_content


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


# What becomes of a key that no field takes (Mapper.target): dropped, kept as metadata, refused; or read by paths.
_DROP, _KEEP, _REFUSE, _ROOT = (type(name, (), {"__repr__": lambda self, n=name: n})() for name in
                                ("DROP", "KEEP", "REFUSE", "ROOT"))  # fmt: skip
# A NUL in the JSON of the metadata (a "\u0000" escape not itself escaped): PostgreSQL's jsonb cannot hold it.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class Mapper:
    """Turns a raw record (a dict of keys to values) into a Record, by the mapping (keys and paths) and then by name
    matching. With `refuse` (the import and its check), a key that no field takes, and that the mapping neither drops
    nor keeps, is a problem of the first record that holds it (once: `refused` counts the records of each); without
    it (the preview), such keys are only counted. Raise ImportFailed for a path that cannot be read."""

    def __init__(
        self, mapping: "Mapping | dict[str, str] | None" = None, *, refuse: bool = True, tools: ToolSet | None = None
    ) -> None:
        self.tools = tools  # a tools task's tool set: its records' messages may call functions (annotate/tools.py)
        self.spec = Mapping.of(mapping)
        self.mapping = {key: t for key, t in self.spec.keys.items() if t in FIELDS or t == ""}
        try:
            self.paths = self.spec.parsed_paths(FIELDS)
        except PathError as exc:
            raise ImportFailed([f"The mapping: {exc}"]) from None
        self.path_texts = {name: path_text(steps) for name, steps in self.paths.items()}
        self.tries = tries_of(self.paths.values())
        self.refuse = refuse
        self._targets: dict[str, Any] = {}
        self.ignored: set[str] = set()  # labels of the keys dropped (allowed), for the counts (up to 20)
        self.kept: set[str] = set()  # labels of the keys kept as metadata (up to 20)
        self.refused: dict[str, int] = {}  # label -> records that hold it, of the keys refused
        self.id_key = "id"  # the key that gave the last record's external id, to name it in a duplicate

    def target(self, key: str) -> Any:
        """The field a key goes to; else _ROOT (paths read it), _DROP, _KEEP or _REFUSE."""
        try:
            return self._targets[key]
        except KeyError:
            # A key a path starts from is read through the paths only, whatever its name or column would say.
            if key in self.tries:
                target = _ROOT
            else:
                target = self.mapping[key] if key in self.mapping else NAME_MATCHES.get(str(key).strip().lower())
                target = target or self.fate(key_label(key))
            if len(self._targets) < 10_000:  # a file with endless distinct keys must not grow this without bound
                self._targets[key] = target
            return target

    def fate(self, label: str) -> Any:
        """_DROP, _KEEP or _REFUSE: what the mapping does with a key that no field takes (or takes only in part)."""
        if label in self.spec.drop:
            if len(self.ignored) < 20:
                self.ignored.add(label)
            return _DROP
        if label in self.spec.keep:
            if len(self.kept) < 20:
                self.kept.add(label)
            return _KEEP
        return _REFUSE

    def record(self, raw: Any) -> Record:
        """The record as it will be stored. Raise _Invalid with every problem of the record (field, message)."""
        if type(raw) is not dict:
            raise _Invalid([(None, f"expected a JSON object {{…}}, got {_type_name(raw)}")])
        values: dict[str, Any] = {}
        keys: dict[str, str] = {}
        problems: list[tuple[str | None, str]] = []
        others: list[str] | None = None  # made at the first key no field takes: most records have none
        if self.tools is not None and ("tools" in raw or "parallel_tool_calls" in raw):
            raw = dict(raw)
            record_tools(raw.pop("tools", None), raw.pop("parallel_tool_calls", None), self.tools, problems)
        for key, value in raw.items():
            target = self.target(key)
            if target.__class__ is not str:  # no field takes it: dropped, kept, refused, or read by paths
                if target is not _DROP:
                    if others is None:
                        others = []
                    others.append(key)
                continue
            if value is None or value == "":
                continue
            if target in values:
                problems.append((key, f'gives the {target} again (so does "{_shown(keys[target])}"); keep one'))
                continue
            values[target] = value
            keys[target] = key
        metadata = ""
        if self.paths:
            self._read_paths(raw, values, keys, problems)
        if others:
            metadata = self._others(raw, others, problems)
        messages: list = []
        if "messages" in values:
            if self.tools is not None:
                messages = tool_messages(values, keys, problems, self.tools)
            else:
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
            if "instruction" in self.paths:
                problems.append((self.path_texts["instruction"], "finds nothing here, and an instruction is needed"))
            else:
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
        return Record(*texts[:4], kind, external_id, messages, metadata, texts[4])

    def _read_paths(self, raw: dict, values: dict, keys: dict, problems: list) -> None:
        """Set the values the paths find (absent when they find nothing, or null, or "")."""
        for name, steps in self.paths.items():
            where = self.path_texts[name]
            top = raw.get(steps[0])
            try:
                found = MISSING if top is None else pick(top, steps)
            except Mismatch as exc:
                problems.append((where, str(exc)))
                continue
            if found is MISSING or found is None or found == "":
                continue
            if name in values:
                problems.append((where, f'gives the {name} again (so does "{_shown(keys[name])}"); keep one'))
                continue
            values[name] = found
            keys[name] = where

    def _others(self, raw: dict, others: list[str], problems: list) -> str:
        """What becomes of the keys no field takes (or paths take only in part): refused (a problem the first time
        each is met), or kept: returns the JSON of the metadata ("" when none)."""
        kept: dict[str, Any] = {}
        for key in others:
            target = self.target(key)
            label = key_label(key)
            if target is _ROOT:
                if not has_rest(raw[key], self.tries[key]):
                    continue
                target = self.fate(label)
                if target is _DROP:
                    continue
            if target is _KEEP:
                if raw[key] is not None and raw[key] != "":
                    kept[label] = raw[key]
            elif label in self.refused:
                self.refused[label] += 1
            else:
                if len(self.refused) < MAX_REFUSED:
                    self.refused[label] = 1
                if self.refuse:
                    problems.append((key, NOT_TAKEN))
        if not kept:
            return ""
        try:
            text = orjson.dumps(kept).decode()
        except orjson.JSONEncodeError as exc:  # an unpaired surrogate, an integer over 64 bits
            problems.append((next(iter(kept)), f"cannot be kept as metadata: {exc}"))
            return ""
        first = next(iter(kept))
        if len(text) > MAX_METADATA_CHARS:
            size = f"{len(text):,} characters as JSON, over the limit of {MAX_METADATA_CHARS:,}"
            problems.append((first, f"the keys kept as metadata take {size}; drop some of them"))
        elif _NUL_ESCAPE.search(text):
            problems.append((first, "a kept value holds a NUL character (\\u0000), which cannot be stored"))
        return text

    @staticmethod
    def _messages(values: dict, keys: dict, problems: list) -> list:
        """Split OpenAI chat messages into prior turns, the instruction and the completion (set in `values`)."""
        key = keys["messages"]
        messages = popped_messages(values, keys, problems)
        if messages is _UNREADABLE:
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
            # The answer's reasoning, as reasoning models' chat messages carry it (the key their templates read).
            reasoning = messages[-1].get("reasoning_content")
            if reasoning is not None and reasoning != "":
                where = f"{key}[{len(messages) - 1}].reasoning_content"
                if "reasoning" in values:
                    again = f'gives the reasoning again (so does "{_shown(keys["reasoning"])}"); keep one'
                    problems.append((where, again))
                else:
                    values["reasoning"] = reasoning
                    keys["reasoning"] = where
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
