"""The lead's mapping: which key (or path into a nested value) gives which field, and what happens to the rest.

A path reaches into nested values: `instances[0].output` is the "output" of the first element of the array under
"instances". Steps are `.name` (a key of an object) and `[N]` (an element of an array, from 0); a key that holds a dot,
a bracket or a quote is written `["the key"]` (a JSON string). The first step is a key of the record. Paths are
bounded: at most MAX_PATH_CHARS characters and MAX_PATH_STEPS steps, at most MAX_PATHS of them.

What a path finds nothing at (a key missing, an index past the end, JSON null) is absent, as a missing top-level key
is: fine for the optional fields, and the missing instruction is reported as usual, with the path. A path that meets
the wrong kind of value (an index into an object, a key into a string) is a problem of that record, named by the path.

A key that a path starts from is read through the paths only (its name, or its column's choice, gives no field).
Every key of a record that no field takes is refused, unless the lead allows dropping it (`drop`) or keeping it on
the example as metadata (`keep`). A key a path reads from is taken only as far as the paths reach: the rest of its
value (`instances[0].input` when only `instances[0].output` is mapped) counts as not stored, and so refuses the key.
Keys are named by `key_label`: as written, unless they cannot be stored on the job row (a NUL, an unpaired surrogate,
over MAX_KEY_CHARS), in which case by their escaped, shortened form, as problems quote them.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import limits
from .common import _UNSTORABLE, _shown

MAX_PATH_CHARS = 500
MAX_PATH_STEPS = 10
MAX_PATHS = 20  # one a field is 7; room for more if fields are added
MAX_INDEX = 999_999
MAX_REMAINDER_SHOWN = 10  # parts of a partly read key listed in the preview

Step = str | int
# One step: .name, [N] or ["a key"]; a name is anything up to the next ., [ or end.
_STEP = re.compile(r'\.([^.\[\]"]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
_FIRST = re.compile(r'([^.\[\]"]+)|\[("(?:[^"\\]|\\.)*")\]')


def key_list(text: str) -> frozenset[str]:
    """KEY,KEY,... as a set (import_examples --allow-unmapped, the API's allow_unmapped); "\\," is a comma inside a
    key."""
    parts = re.split(r"(?<!\\),", text)
    return frozenset(part.replace("\\,", ",").strip() for part in parts if part.strip())


def key_list_text(keys: Iterable[str]) -> str:
    """The keys as key_list reads them back: commas inside a key escaped."""
    return ",".join(key.replace(",", "\\,") for key in keys)


class PathError(ValueError):
    """A path that cannot be read; the message says what and where."""


def parse_path(text: str) -> tuple[Step, ...]:
    """The steps of a path (`instances[0].output` -> ("instances", 0, "output")). Raise PathError naming the problem."""
    text = text.strip()
    if not text:
        raise PathError("the path is empty")
    if len(text) > MAX_PATH_CHARS:
        raise PathError(f"the path is {len(text):,} characters long, over the limit of {MAX_PATH_CHARS}")
    first = _FIRST.match(text)
    if first is None:
        raise PathError('a path starts with a key of the record: name, or ["a key"]')
    steps: list[Step] = [first[1] if first[1] is not None else orjson.loads(first[2])]
    at = first.end()
    while at < len(text):
        step = _STEP.match(text, at)
        if step is None:
            raise PathError(
                f'cannot read the path from character {at + 1} ("{_shown(text[at:], 20)}"): use .name or [N]'
            )
        if step[2] is not None:
            if len(step[2]) > len(str(MAX_INDEX)):
                raise PathError(f"the index [{_shown(step[2], 20)}] is over the limit of {MAX_INDEX:,}")
            steps.append(int(step[2]))
        else:
            steps.append(step[1] if step[1] is not None else orjson.loads(step[3]))
        at = step.end()
        if len(steps) > MAX_PATH_STEPS:
            raise PathError(f"the path has more than {MAX_PATH_STEPS} steps, the limit")
    for step in steps:
        if isinstance(step, str) and _UNSTORABLE.search(step):
            raise PathError("the path holds a NUL or an unpaired surrogate")
    return tuple(steps)


def path_text(steps: Iterable[Step]) -> str:
    """A path written back: ("instances", 0, "output") -> "instances[0].output"."""
    out = []
    for i, step in enumerate(steps):
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif _FIRST.fullmatch(step) and step.strip() == step:
            out.append(step if i == 0 else f".{step}")
        else:
            out.append(f"[{orjson.dumps(step).decode()}]")
    return "".join(out)


MISSING = object()


class Mismatch(Exception):
    """A path met the wrong kind of value."""


def pick(value: Any, steps: tuple[Step, ...], start: int = 1) -> Any:
    """What the path finds in `value` (the record's value under the path's first key): MISSING when a key or element
    is not there. Raise Mismatch (message) when a step meets the wrong kind of value."""
    for i in range(start, len(steps)):
        step = steps[i]
        if value is None:
            return MISSING
        if isinstance(step, int):
            if type(value) is not list:
                raise Mismatch(f"{path_text(steps[:i])} is {_kind(value)}, not an array: [{step}] cannot be read")
            if step >= len(value):
                return MISSING
            value = value[step]
        else:
            if type(value) is not dict:
                raise Mismatch(f'{path_text(steps[:i])} is {_kind(value)}, not an object: "{_shown(step, 50)}" '
                               "cannot be read")  # fmt: skip
            value = value.get(step, MISSING)
            if value is MISSING:
                return MISSING
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return {dict: "an object", list: "an array", str: "a string"}.get(type(value), type(value).__name__)


# What the paths take below each key they start from, as a trie: {step: subtrie}, TAKEN where a path ends (all of
# the value below is taken).
TAKEN: Any = object()


def tries_of(paths: Iterable[tuple[Step, ...]]) -> dict[str, Any]:
    """first key -> the trie of the paths that start there (TAKEN for a path of one step: the whole value)."""
    tries: dict[str, Any] = {}
    for steps in paths:
        root = steps[0]
        if len(steps) == 1 or tries.get(root) is TAKEN:
            tries[root] = TAKEN
            continue
        node = tries.setdefault(root, {})
        for step in steps[1:-1]:
            child = node.setdefault(step, {})
            if child is TAKEN:
                break
            node = child
        else:
            node[steps[-1]] = TAKEN
    return tries


def has_rest(value: Any, trie: dict) -> bool:
    """Whether `value` holds anything the paths of `trie` do not take. Linear in the containers along the paths."""
    if trie is TAKEN:
        return False
    if type(value) is dict:
        return any(k not in trie or has_rest(v, trie[k]) for k, v in value.items())
    if type(value) is list:
        return any(i not in trie or has_rest(v, trie[i]) for i, v in enumerate(value))
    return False  # a path went on through a text or number: that is a problem of the record, reported by the path


def rest_paths(value: Any, trie: dict, prefix: tuple[Step, ...], out: list[str]) -> None:
    """The paths of what `value` holds beyond the trie's paths, up to MAX_REMAINDER_SHOWN of them (for the preview)."""
    if trie is TAKEN or len(out) >= MAX_REMAINDER_SHOWN:
        return
    items = value.items() if type(value) is dict else enumerate(value) if type(value) is list else ()
    for k, v in items:
        if len(out) >= MAX_REMAINDER_SHOWN:
            return
        if k not in trie:
            out.append(path_text((*prefix, k)))
        else:
            rest_paths(v, trie[k], (*prefix, k), out)


def key_label(key: str) -> str:
    """How a key is named in the mapping, the problems and `--allow-unmapped`: as written when it can be stored on the
    job row; else escaped and shortened, as problems quote it."""
    if len(key) <= limits.MAX_KEY_CHARS and not _UNSTORABLE.search(key):
        return key
    return _shown(key, 100)


@dataclass(frozen=True)
class Mapping:
    """The lead's mapping. `keys`: a top-level key -> field ("" takes it for no field); keys not named here match a
    field by name (NAME_MATCHES). `paths`: field -> path into the record. `drop` and `keep`: labels of the keys that no
    field takes, which the lead allows to be dropped, or keeps on the example as metadata."""

    keys: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()
    keep: frozenset[str] = frozenset()

    @classmethod
    def of(cls, value: "Mapping | dict | None") -> "Mapping":
        """A Mapping from itself, from its JSON (`as_json`), or from the older plain {key: field} of job rows."""
        if isinstance(value, Mapping):
            return value
        if not value:
            return cls()
        if isinstance(value.get("keys"), dict):
            return cls(
                keys={str(k): str(v) for k, v in value["keys"].items()},
                paths={str(k): str(v) for k, v in (value.get("paths") or {}).items()},
                drop=frozenset(map(str, value.get("drop") or ())),
                keep=frozenset(map(str, value.get("keep") or ())),
            )
        return cls(keys={str(k): str(v) for k, v in value.items()})

    def as_json(self) -> dict:
        return {"keys": self.keys, "paths": self.paths, "drop": sorted(self.drop), "keep": sorted(self.keep)}

    def parsed_paths(self, fields: Iterable[str]) -> dict[str, tuple[Step, ...]]:
        """field -> steps of each non-empty path, for the known fields. Raise PathError naming the field."""
        found = {}
        for name, text in self.paths.items():
            if name not in fields or not text.strip():
                continue
            try:
                found[name] = parse_path(text)
            except PathError as exc:
                raise PathError(f"the path for {name} ({_shown(text, 60)}): {exc}") from None
        if len(found) > MAX_PATHS:
            raise PathError(f"more than {MAX_PATHS} paths, the limit")
        return found
