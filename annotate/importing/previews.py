"""What the mapping page shows before the lead commits: what each path picks, and every key that would not be stored.

Both read only the first records of the file (SAMPLE_RECORDS for the keys, PATH_SAMPLES for the paths), so each
request does bounded work whatever the file's size; a key met only further on is refused by the import itself, which
names it and its line.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..tools import ToolSet
from . import limits
from .common import _shown
from .mapping import MAX_REMAINDER_SHOWN, MISSING, Mapping, Mismatch, PathError, key_label, pick, rest_paths
from .reading import _Fatal, _reader
from .records import _ROOT, FIELDS, MAX_REFUSED, Mapper

PATH_SAMPLES = 3  # records whose picks each path shows
PICK_CHARS = 120


@dataclass
class Unstored:
    """A key that no field takes (or that paths take only in part), in the first records of the file."""

    key: str  # its label: as `--allow-unmapped` and the mapping name it
    records: int  # how many of the first records hold it
    where: str  # the first of them
    parts: list[str] = field(default_factory=list)  # for a key paths read: the parts they leave ("instances[0].input")


def unstored_keys(
    *, path: Path, file_format: str, mapping: Mapping | dict | None, tools: "ToolSet | None" = None
) -> list[Unstored]:
    """Every key of the first SAMPLE_RECORDS records that the mapping's keys and paths do not store, whatever it
    drops or keeps (up to MAX_REFUSED). A tools task (`tools`) stores a record's `tools` and `parallel_tool_calls`
    (annotate/importing/tool_records.py). Raise ImportFailed when a path cannot be read."""
    taken = TOOL_KEYS if tools is not None else ()
    spec = Mapping.of(mapping)
    mapper = Mapper(Mapping(keys=spec.keys, paths=spec.paths), refuse=False)
    reader = _reader(path, file_format)
    found: dict[str, Unstored] = {}
    try:
        for number, (loc, raw, _) in enumerate(reader):
            if number >= limits.SAMPLE_RECORDS or len(found) >= MAX_REFUSED:
                break
            if type(raw) is not dict:
                continue
            for key, value in raw.items():
                target = mapper.target(key)
                if target.__class__ is str or key in taken:
                    continue
                parts: list[str] = []
                if target is _ROOT:
                    rest_paths(value, mapper.tries[key], (key,), parts)
                    if not parts:
                        continue
                label = key_label(key)
                entry = found.get(label)
                if entry is None:
                    entry = found[label] = Unstored(label, 0, reader.describe(loc))
                entry.records += 1
                for part in parts:
                    if part not in entry.parts and len(entry.parts) < MAX_REMAINDER_SHOWN:
                        entry.parts.append(part)
    except _Fatal:
        pass  # the preview of the records names the problem
    return list(found.values())


TOOL_KEYS = ("tools", "parallel_tool_calls")


def path_picks(*, path: Path, file_format: str, paths: dict[str, str]) -> dict[str, list[str] | str]:
    """field -> what its path picks in each of the first PATH_SAMPLES records (text, cut short; "(nothing)"; or
    why it cannot be read), or the path's own problem (a string) when it cannot be parsed. Fields without a path are
    left out."""
    parsed: dict[str, Any] = {}
    out: dict[str, list[str] | str] = {}
    for name, text in paths.items():
        if name not in FIELDS or not text.strip():
            continue
        try:
            parsed[name] = Mapping(paths={name: text}).parsed_paths(FIELDS)[name]
        except PathError as exc:
            out[name] = str(exc)
            continue
        out[name] = []
    if not parsed:
        return out
    reader = _reader(path, file_format)
    try:
        for number, (loc, raw, problem) in enumerate(reader):
            if number >= PATH_SAMPLES:
                break
            for name, steps in parsed.items():
                picks = out[name]
                assert isinstance(picks, list)
                picks.append(f"{reader.describe(loc)}: {_pick_shown(raw, steps, problem)}")
    except _Fatal as exc:
        for name in parsed:
            picks = out[name]
            assert isinstance(picks, list)
            picks.append(f"{exc.where}: {exc.message}")
    return out


def _pick_shown(raw: Any, steps: tuple, problem: str | None) -> str:
    if problem is not None:
        return problem
    if type(raw) is not dict:
        return "not a JSON object"
    top = raw.get(steps[0], MISSING)
    try:
        found = MISSING if top is MISSING else pick(top, steps)
    except Mismatch as exc:
        return str(exc)
    if found is MISSING or found is None or found == "":
        return "(nothing)"
    if isinstance(found, str):  # one line: a line break shown as ⏎, other control characters escaped
        return _shown(found.replace("\r\n", "\n").replace("\n", " ⏎ "), PICK_CHARS)
    try:
        return _shown(orjson.dumps(found).decode(), PICK_CHARS)
    except orjson.JSONEncodeError:
        return _shown(found, PICK_CHARS)
