"""Import examples from a file into a task: JSONL, a JSON array, or CSV. All or nothing, streamed, memory bounded.

`examples_import` reads the file once, checking each record as it inserts it, in batches inside ONE transaction:
each example with its first revision (when it has a completion) and, imported as submitted or approved, the
transition from new that `services.example_create` records (imported as new, the example has not moved: its source
and creation time, and the audit log's entry for the import, say what such a row would). COPY on PostgreSQL (a
thread reads, checks and formats the next batch while the server loads the current one), bulk_create elsewhere.
The task's unique index on (task, external id) refuses a repeated id. At the first problem the transaction is rolled
back, so nothing is imported unless every record is good, and `import_check` reads the whole file to name every
problem: up to MAX_ERRORS, each with the line (JSONL, JSON) or the row (CSV, counted as in a spreadsheet: the header
is row 1) and the field, external ids checked against the rest of the file and the task's examples (in a temporary
SQLite database, so memory stays bounded). A good file is read once; a bad one stops early and is read again to
explain it.

Small files import in the lead's request; larger ones (INLINE_MAX_RECORDS, INLINE_MAX_BYTES) run as an ImportJob
on a Celery worker, which reports progress on its row (`import_start`, `import_run`).

A record is one of these shapes; its keys are matched to fields by name, or by the lead's column mapping:

- `{instruction, context?, input?, output? | completion?, kind?, id?}`
- `{prompt, completion?}`: the prompt is the instruction.
- `{messages: [{role, content}, ...]}` in the OpenAI chat shape (roles system, user, assistant). A final assistant
  message is the completion; the user message before it is the instruction; the turns before that user message
  (a system message included, as given) are the example's prior messages. Without a final assistant message the
  example has no completion yet, and the last message must be the user's.

`id` becomes the external id (unique per task); `kind` is happy (the default), edge, negative or ambiguous. Keys
that match no field are ignored (and reported). Empty values and JSON null count as absent.

Hostile input is refused with a message that names the limit or the problem and where it is: a file over
MAX_IMPORT_BYTES (setting), more than MAX_IMPORT_ROWS records (setting, default 2,000,000; reading stops there), a
record over MAX_RECORD_BYTES, a field over MAX_FIELD_CHARS, invalid UTF-8 (a BOM at the start is dropped; lines may
end in CRLF), a NUL or an unpaired surrogate, JSON nested deeper than about 1,000 levels or a number too long to read.
Values are text: a CSV cell such as `=cmd()` is stored as written and never evaluated, and a URL is never fetched
(nothing here imports from URLs; a file comes from the lead's computer or the command line).
"""

import codecs
import contextlib
import json
import logging
import os
import queue
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, connection, reset_queries, transaction
from django.utils import timezone

from pairsmith.jobs import job_cancel, job_claim, job_fail, job_finish, job_heartbeat, job_send

from . import quality
from .audit import audit_record
from .limits import MAX_FIELD_CHARS  # the longest text a field (or a chat message) may hold
from .models import AuditEvent, Example, ImportJob, Kind, PromptTemplate, Revision, Task, Transition
from .quality.text import fold, prompt_key
from .rendering import CHAT_ROLES, required_fields
from .scans import findings_of, warning_fields

logger = logging.getLogger(__name__)

DEFAULT_MAX_IMPORT_ROWS = 2_000_000  # records a file may hold; the MAX_IMPORT_ROWS setting overrides it
MAX_RECORD_BYTES = 16 * 1024 * 1024  # the longest JSONL line or JSON array element: bounds the memory of one record
MAX_ERRORS = 20  # problems reported in full; the rest are counted ("and N more")
INLINE_MAX_RECORDS = 5_000  # up to this many records (and INLINE_MAX_BYTES) import in the request; more run as a job
INLINE_MAX_BYTES = 5 * 1024 * 1024
PREVIEW_RECORDS = 10
SAMPLE_RECORDS = 200  # records read to find the keys of a JSON file, for the column mapping
MAX_KEYS = 200  # keys offered in the column mapping (the rest still match by name)
MAX_KEY_CHARS = 1_000  # a longer key cannot be mapped (it matches no name either): it is ignored
BATCH_SIZE = 5_000  # rows per insert batch, and external ids per duplicate check
CSV_CHUNK_ROWS = 10_000
READ_CHUNK = 1024 * 1024
PROGRESS_SECONDS = 0.5
UPLOAD_MAX_AGE_SECONDS = 24 * 3600  # an upload nobody committed is deleted after this

IMPORT_STATUSES = (Example.Status.NEW, Example.Status.SUBMITTED, Example.Status.APPROVED)
BOM = codecs.BOM_UTF8
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
# Plain strings, for the COPY text and the counts' JSON.
HAPPY = Kind.HAPPY.value
NEW, IMPORTED, REASON_IMPORT = Example.Status.NEW.value, Example.Source.IMPORTED.value, Revision.Reason.IMPORT.value


class ImportFailed(ValidationError):
    """Nothing was imported; `messages` names each problem (line or row, field), then how many more there were."""

    def __init__(self, problems: list[str], more: int = 0) -> None:
        self.problems = problems
        self.more = more
        super().__init__(problems + ([f"… and {more:,} more problem{'s' if more != 1 else ''}."] if more else []))


class ImportCancelled(Exception):
    """The import job was cancelled while it ran; its transaction is rolled back."""


def max_import_rows() -> int:
    """The most records one file may hold (the MAX_IMPORT_ROWS setting), read at each import so tests can change it."""
    return int(getattr(settings, "MAX_IMPORT_ROWS", DEFAULT_MAX_IMPORT_ROWS))


# Characters a message must not echo as they are: NUL and unpaired surrogates cannot be stored (PostgreSQL text,
# UTF-8) nor rendered, and other control characters would garble the message.
_UNSHOWABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# What a stored text must not hold: NUL (PostgreSQL refuses it) and unpaired surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _shown(value: Any, limit: int = 80) -> str:
    """User text quoted in a problem: cut to `limit` characters, control characters and surrogates escaped."""
    text = str(value)
    cut = text[:limit]
    if _UNSHOWABLE.search(cut):
        cut = _UNSHOWABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", cut)
    return cut + "…" if len(text) > limit else cut


def _unstorable_problem(value: str) -> str | None:
    """Why a text cannot be stored (a NUL, an unpaired surrogate), or None."""
    if value.isascii():  # the common case, and a fast one: only a NUL can be wrong
        found = "\x00" if "\x00" in value else None
    else:
        match = _UNSTORABLE.search(value)
        found = match.group() if match else None
    if found is None:
        return None
    if found == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return f"contains an unpaired surrogate (\\u{ord(found):04x}), which is not valid Unicode"


def _json_problem(exc: orjson.JSONDecodeError) -> str:
    """orjson's error in words, with its column (the line is named by the caller)."""
    if exc.msg.startswith("depth limit exceeded"):
        return f"invalid JSON: {TOO_DEEP} (at column {exc.colno})"
    if exc.msg.startswith("number is infinity"):
        return f"invalid JSON: a number too large to read at column {exc.colno}"
    return f"invalid JSON: {exc.msg} at column {exc.colno}"


# orjson stops at 1,024 levels; Python's json (JSON arrays) at its recursion limit (1,000 frames, less what is in use).
TOO_DEEP = "arrays and objects nested too deeply (the limit is about 1,000 levels)"
# Python's json refuses to convert an integer of more than 4,300 digits (sys.int_info.str_digits_check_threshold).
TOO_LONG_NUMBER = "a number too long to read (the limit is 4,300 digits)"
# A raw control character (anything but the \n that ends the line): JSON wants it escaped inside a string.
_RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def human_size(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n:,} bytes"


# --- reading files -------------------------------------------------------------------------------------------


class FileFormat:
    JSONL = ImportJob.FileFormat.JSONL.value
    JSON = ImportJob.FileFormat.JSON.value
    CSV = ImportJob.FileFormat.CSV.value


def detect_format(*, path: Path, filename: str = "") -> str:
    """The format of a file: by its name (.jsonl, .ndjson, .csv), else by its first character ([ JSON, { JSONL)."""
    suffix = Path(filename or path.name).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return FileFormat.JSONL
    if suffix == ".csv":
        return FileFormat.CSV
    with open(path, "rb") as f:
        head = f.read(64 * 1024).removeprefix(BOM).lstrip()
    if head.startswith(b"["):
        return FileFormat.JSON
    if head.startswith(b"{"):
        return FileFormat.JSONL
    return FileFormat.JSON if suffix == ".json" else FileFormat.CSV


class _Fatal(Exception):
    """A problem after which the rest of the file cannot be read (broken CSV, JSON array syntax, bad UTF-8)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def locate_bad_utf8(path: Path) -> tuple[int, int, int] | None:
    """(line, byte offset in the line, byte offset in the file) of the first invalid UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line, line_start = 0, 1, 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(READ_CHUNK)
            pending = decoder.getstate()[0]  # bytes of a character split across chunks
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                before = data[: exc.start]
                bad = offset - len(pending) + exc.start
                if b"\n" in before:
                    line += before.count(b"\n")
                    line_start = offset - len(pending) + before.rfind(b"\n") + 1
                return line, bad - line_start, bad
            if not chunk:
                return None
            if b"\n" in chunk:
                line += chunk.count(b"\n")
                line_start = offset + chunk.rfind(b"\n") + 1
            offset += len(chunk)


def _utf8_fatal(path: Path) -> _Fatal:
    found = locate_bad_utf8(path)
    if found is None:  # the reader saw an error the scan does not: report it without a place
        return _Fatal("file", "invalid UTF-8")
    line, in_line, in_file = found
    return _Fatal(f"line {line}", f"invalid UTF-8 at byte offset {in_line} of the line ({in_file:,} of the file)")


class _Reader:
    """The raw records of a file: (location, record or None, problem or None). Raises _Fatal when it cannot go on.

    `position` is how many bytes have been read so far, for progress.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.position = 0

    def describe(self, loc: Any) -> str:
        return f"line {loc}"

    def __iter__(self) -> Iterator[tuple[Any, Any, str | None]]:
        raise NotImplementedError


class _JsonLinesReader(_Reader):
    """One JSON object a line, split on "\\n" only (a "\\r" before it is JSON whitespace). Blank lines are skipped.

    A UTF-8 BOM at the start of the file is dropped. Since only "\\n" ends a line, a lone "\\r" (or a U+2028) inside
    a line is data: raw inside a string (where JSON wants "\\\\r"), it is kept as it is, like any control character;
    the field check then refuses what cannot be stored (a NUL).
    """

    def __iter__(self):
        with open(self.path, "rb") as f:
            readline = f.readline
            line_no = position = 0
            while raw := readline(MAX_RECORD_BYTES + 1):
                line_no += 1
                start = position
                position += len(raw)
                self.position = position
                if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                    while (rest := readline(READ_CHUNK)) and not rest.endswith(b"\n"):
                        position += len(rest)
                    position += len(rest)
                    self.position = position
                    yield line_no, None, f"longer than {human_size(MAX_RECORD_BYTES)}, the limit of one record"
                    continue
                text = raw[3:] if line_no == 1 and raw.startswith(BOM) else raw
                try:
                    record = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    if not text.strip():
                        continue  # a blank line
                    record, problem = self._explain(raw, text, exc, start)
                    yield line_no, record, problem
                else:
                    yield line_no, record, None

    @staticmethod
    def _explain(raw: bytes, text: bytes, exc: orjson.JSONDecodeError, start: int) -> tuple[Any, str | None]:
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError as bad:
            at = bad.start + len(raw) - len(text)
            return None, f"invalid UTF-8 at byte offset {at} of the line ({start + at:,} of the file)"
        if _RAW_CONTROL.search(decoded):
            # A raw control character inside a string: parse leniently, keeping it as data (a NUL is then refused by
            # the field check, which names the field). A line that is still not JSON gets orjson's message.
            try:
                return json.loads(decoded, strict=False), None
            except RecursionError:
                return None, f"invalid JSON: {TOO_DEEP}"
            except json.JSONDecodeError:
                pass
            except ValueError:  # an integer over Python's digit limit
                return None, f"invalid JSON: {TOO_LONG_NUMBER}"
        return None, _json_problem(exc)


class _JsonArrayReader(_Reader):
    """One JSON array of objects, read element by element (never the whole file), line numbers tracked."""

    _SPACE = re.compile(r"[ \t\r\n]*")

    def describe(self, loc: Any) -> str:
        number, line = loc
        return f"record {number} (line {line})"

    def __iter__(self):
        decoder = json.JSONDecoder()
        text_decoder = codecs.getincrementaldecoder("utf-8-sig")()
        with open(self.path, "rb") as f:
            buf, idx, line, eof = "", 0, 1, False

            def more() -> bool:
                """Append the next chunk to the buffer (dropping what was consumed). False at the end of the file."""
                nonlocal buf, idx, eof
                if eof:
                    return False
                chunk = f.read(READ_CHUNK)
                try:
                    text = text_decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError:
                    raise _utf8_fatal(self.path) from None
                eof = not chunk
                buf, idx = buf[idx:] + text, 0
                self.position = f.tell()
                return True

            def skip_space() -> None:
                nonlocal idx, line
                while True:
                    end = self._SPACE.match(buf, idx).end()
                    line += buf.count("\n", idx, end)
                    idx = end
                    if idx < len(buf) or not more():
                        return

            skip_space()
            if idx >= len(buf):
                return  # an empty file: no records
            if buf[idx] != "[":
                raise _Fatal(f"line {line}", "a JSON file must hold one array of records: [{…}, {…}]")
            idx += 1
            number = 0
            while True:
                skip_space()
                if idx >= len(buf):
                    raise _Fatal(f"line {line}", "the file ends before the array is closed with ]")
                if buf[idx] == "]":
                    idx += 1
                    skip_space()
                    if idx < len(buf):
                        raise _Fatal(f"line {line}", "there is text after the closing ] of the array")
                    return
                if number:
                    if buf[idx] != ",":
                        raise _Fatal(f"line {line}", "invalid JSON: expected , or ] after a record")
                    idx += 1
                    skip_space()
                start_line = line
                while True:
                    try:
                        record, end = decoder.raw_decode(buf, idx)
                        break
                    except RecursionError:  # 100,000 nested arrays: a clear refusal, not a crash
                        raise _Fatal(f"line {start_line}", f"invalid JSON: {TOO_DEEP}") from None
                    except json.JSONDecodeError as exc:
                        # The element may only be cut by the end of the buffer: read on, up to a record's limit.
                        cut = exc.pos >= len(buf) - 16 or exc.msg.startswith("Unterminated string")
                        if len(buf) - idx > MAX_RECORD_BYTES:
                            raise _Fatal(
                                f"line {start_line}", f"a record longer than {human_size(MAX_RECORD_BYTES)}, the limit"
                            ) from None
                        if not cut or not more():
                            at = line + buf.count("\n", idx, exc.pos)
                            raise _Fatal(f"line {at}", f"invalid JSON: {exc.msg}") from None
                    except ValueError:  # not a JSONDecodeError: an integer over Python's digit limit
                        raise _Fatal(f"line {start_line}", f"invalid JSON: {TOO_LONG_NUMBER}") from None
                number += 1
                line += buf.count("\n", idx, end)
                idx = end
                yield (number, start_line), record, None


class _CsvReader(_Reader):
    """CSV read by pandas in chunks (dtype=str, no NA guessing). The header is row 1; rows may span lines."""

    def describe(self, loc: Any) -> str:
        return f"row {loc}"

    def columns(self) -> list[str]:
        import pandas as pd

        try:
            with open(self.path, "rb") as f:
                return [str(c) for c in pd.read_csv(f, dtype=str, keep_default_na=False, nrows=0).columns]
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            return []

    def __iter__(self):
        import pandas as pd

        with open(self.path, "rb") as f:
            try:
                chunks = pd.read_csv(
                    f, dtype=str, keep_default_na=False, index_col=False, chunksize=CSV_CHUNK_ROWS, encoding="utf-8"
                )
                for chunk in chunks:
                    self.position = f.tell()
                    names = [str(c) for c in chunk.columns]
                    columns = [chunk[c].tolist() for c in chunk.columns]
                    for row, values in zip(chunk.index.tolist(), zip(*columns, strict=True), strict=True):
                        yield row + 2, dict(zip(names, map(_cell, values), strict=True)), None
            except pd.errors.EmptyDataError:
                return
            except pd.errors.ParserError as exc:
                message = str(exc).replace("Error tokenizing data. C error: ", "").strip()
                raise _Fatal("file", f"not valid CSV: {message}") from None
            except UnicodeDecodeError:
                raise _utf8_fatal(self.path) from None


def _cell(value: Any) -> str:
    """A CSV cell as text: missing cells are empty; a CRLF inside a quoted cell becomes a newline."""
    if not isinstance(value, str):
        return ""
    return value.replace("\r\n", "\n") if "\r" in value else value


def _reader(path: Path, file_format: str) -> _Reader:
    readers = {FileFormat.JSONL: _JsonLinesReader, FileFormat.JSON: _JsonArrayReader, FileFormat.CSV: _CsvReader}
    if file_format not in readers:
        raise ValidationError(f"Unknown file format {file_format!r}; use jsonl, json or csv.")
    return readers[file_format](path)


# --- records -------------------------------------------------------------------------------------------------


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
    if len(value) > MAX_FIELD_CHARS:
        return f"{len(value):,} characters, over the limit of {MAX_FIELD_CHARS:,} characters a field"
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


# --- problems and duplicate ids ------------------------------------------------------------------------------


class _Problems:
    """Up to MAX_ERRORS problems in file order, and a count of the rest."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.kept: list[tuple[int, str]] = []
        self.count = 0

    def add(self, order: int, where: str, field_name: str | None, message: str) -> None:
        self.count += 1
        # A field's name is a key of the file: user text, quoted safely.
        text = f'{where}, field "{_shown(field_name, 100)}": {message}' if field_name else f"{where}: {message}"
        self.kept.append((order, text))
        if len(self.kept) > MAX_ERRORS:  # keep the first ones in file order (duplicates are found a batch late)
            self.kept.sort(key=lambda item: item[0])
            self.kept.pop()

    def add_record(self, order: int, loc: Any, problems: list[tuple[str | None, str]]) -> None:
        where = self.reader.describe(loc)
        for field_name, message in problems:
            self.add(order, where, field_name, message)

    def raise_if_any(self) -> None:
        if self.count:
            self.kept.sort(key=lambda item: item[0])
            raise ImportFailed([text for _, text in self.kept], self.count - len(self.kept))


class _IdChecker:
    """External ids seen so far, kept on disk in a private temporary SQLite database so memory stays bounded.

    Ids are checked in batches: against the earlier records of the file (SQLite), and against the task's existing
    examples (one query per batch on the unique index task + external_id).
    """

    def __init__(self, task: Task, problems: _Problems) -> None:
        self.task = task
        self.problems = problems
        self.pending: list[tuple[str, int, str, str]] = []
        self.db: sqlite3.Connection | None = None

    def add(self, external_id: str, order: int, where: str, key: str) -> None:
        self.pending.append((external_id, order, where, key))
        if len(self.pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        if self.db is None:
            self.db = sqlite3.connect("")  # "": a temporary on-disk database, deleted when closed
            self.db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY, at TEXT NOT NULL, ord INTEGER) WITHOUT ROWID")
        before = self.db.total_changes
        self.db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", [(i, w, o) for i, o, w, _ in self.pending])
        if self.db.total_changes - before < len(self.pending):  # a repeat inside the file: find which
            for external_id, order, where, key in self.pending:
                first_at, first_order = self.db.execute(
                    "SELECT at, ord FROM seen WHERE id = ?", (external_id,)
                ).fetchone()
                if first_order != order:
                    self.problems.add(order, where, key, f'"{_shown(external_id)}" repeats the id of {first_at}')
        ids = [external_id for external_id, _, _, _ in self.pending]
        existing = set()
        for start in range(0, len(ids), 1000):
            existing.update(
                self.task.examples.filter(external_id__in=ids[start : start + 1000]).values_list(
                    "external_id", flat=True
                )
            )
        for external_id, order, where, key in self.pending:
            if external_id in existing:
                self.problems.add(
                    order, where, key, f'"{_shown(external_id)}" is already the id of an example of this task'
                )
        self.pending.clear()
        _forget_queries()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


# --- progress ------------------------------------------------------------------------------------------------


@dataclass
class Progress:
    phase: str  # "insert" (the import), or "check" (after a problem: reading the whole file to name every problem)
    records: int
    position: int  # bytes of the file read so far
    size: int
    done: bool = False


class Reporter:
    """Receives progress; `finish` runs inside the import's transaction, just before it commits. No-op by default."""

    def progress(self, progress: Progress) -> None:
        """Report progress; raise ImportCancelled to stop (and roll back)."""

    def finish(self, counts: dict) -> None:
        """Called in the transaction that inserts the examples: raise to roll it all back."""

    def close(self) -> None:
        pass


class JobReporter(Reporter):
    """Progress on the ImportJob row, in bytes of the file read (total = its size). After a problem, the pass that
    names every problem counts again from 0, with a notice on the row that says so.

    The inserts run in one long transaction; a heartbeat written in it would stay invisible (no progress bar, and an
    expired lease lets the sweep start the job again). So on PostgreSQL, outside any caller's transaction, heartbeats
    go through a thread of their own, with its own connection, committed at once. Finishing the job happens in the
    import's transaction, so the examples and the "succeeded" row commit together.
    """

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        own_connection = connection.vendor == "postgresql" and not connection.in_atomic_block
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="import-heartbeat") if own_connection else None

    def _call(self, function: Callable, *args, **kwargs):
        if self._thread is None:
            return function(*args, **kwargs)
        return self._thread.submit(function, *args, **kwargs).result()

    def progress(self, progress: Progress) -> None:
        notice = LISTING_PROBLEMS if progress.phase == "check" else ""
        if not self._call(job_heartbeat, self.job, progress=progress.position, total=progress.size, notice=notice):
            raise ImportCancelled

    def finish(self, counts: dict) -> None:
        if not job_finish(self.job, counts=counts, progress=self.job.size, total=self.job.size, notice=""):
            raise ImportCancelled

    def close(self) -> None:
        if self._thread is not None:
            self._thread.submit(lambda: connection.close()).result()  # the thread's own connection
            self._thread.shutdown()


# What a running import's row says while it reads the file again to name every problem.
LISTING_PROBLEMS = "The import stopped at a problem and kept nothing. Reading the whole file to list every problem:"


# --- reading and checking records ----------------------------------------------------------------------------


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


def _check_file(path: Path) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImportFailed(["The file to import is gone (deleted before the import ran); upload it again."]) from None
    if size > settings.MAX_IMPORT_BYTES:
        limit = human_size(settings.MAX_IMPORT_BYTES)
        raise ImportFailed(
            [f"The file is {human_size(size)}, over the import limit of {limit}. Split it, or raise MAX_IMPORT_BYTES."]
        )
    return size


def _check_status(status: str) -> None:
    if status not in IMPORT_STATUSES:
        raise ValidationError(f"Cannot import as {status!r}; use {', '.join(IMPORT_STATUSES)}.")


class _Tally:
    """The counts of the records read so far, as `import_check` returns them."""

    def __init__(self, status: str) -> None:
        self.status = str(status)
        self.records = self.with_completion = 0
        self.kinds: Counter[str] = Counter()

    def add(self, record: Record) -> None:
        self.records += 1
        self.kinds[record.kind] += 1
        if record.completion:
            self.with_completion += 1

    def counts(self, mapper: Mapper) -> dict:
        return {
            "records": self.records,
            "with_completion": self.with_completion,
            "status": self.status,
            "kinds": dict(self.kinds),
            "ignored": sorted(_shown(key, 100) for key in mapper.ignored),  # stored on the job row: no NUL
        }


def import_check(
    *,
    task: Task,
    path: Path,
    file_format: str,
    mapping: dict[str, str] | None = None,
    status: str = Example.Status.NEW,
    reporter: Reporter | None = None,
) -> dict:
    """Read and check every record, streaming, without importing: return the counts, or raise ImportFailed naming
    every problem (line or row, field), up to MAX_ERRORS and a count of the rest."""
    _check_status(status)
    size = _check_file(path)
    reporter = reporter or Reporter()
    reader = _reader(path, file_format)
    mapper = Mapper(mapping)
    problems = _Problems(reader)
    ids = _IdChecker(task, problems)
    needs_completion = status != Example.Status.NEW
    max_rows = max_import_rows()
    tally = _Tally(status)
    order = 0
    last = time.monotonic()
    try:
        for order, loc, record, record_problems in _records(reader, mapper):
            if order > max_rows:
                # Reported first (order 0), whatever else was found; the rest of the file is not read.
                problems.add(
                    0,
                    reader.describe(loc),
                    None,
                    f"the file holds more than {max_rows:,} records, the import limit; "
                    "split it, or raise the MAX_IMPORT_ROWS setting",
                )
                break
            if record_problems is not None:
                problems.add_record(order, loc, record_problems)
                continue
            tally.add(record)
            if needs_completion and not record.completion:
                problems.add(order, reader.describe(loc), "completion", f"missing, and an example {status} needs one")
            if record.external_id:
                ids.add(record.external_id, order, reader.describe(loc), mapper.id_key)
            if not order & 1023 and time.monotonic() - last >= PROGRESS_SECONDS:
                reporter.progress(Progress("check", tally.records, reader.position, size))
                last = time.monotonic()
        ids.flush()
    except _Fatal as exc:
        problems.add(order + 1, exc.where, None, exc.message)
    finally:
        ids.close()
    problems.raise_if_any()
    if not tally.records:
        raise ImportFailed(["The file holds no records."])
    reporter.progress(Progress("check", tally.records, size, size, done=True))
    return tally.counts(mapper)


class _Stop(Exception):
    """The import met a problem (a bad record, a missing completion, too many records): it rolls back, and the whole
    file is checked to name every problem."""


def _good_records(reader: _Reader, mapper: Mapper, tally: _Tally) -> Iterator[Record]:
    """The records of the file, counted in `tally`; raise _Stop at the first one that `import_check` would refuse."""
    needs_completion = tally.status != NEW
    max_rows = max_import_rows()
    for order, _, record, problems in _records(reader, mapper):
        if problems is not None or order > max_rows or (needs_completion and not record.completion):
            raise _Stop
        tally.add(record)
        yield record


def examples_import(
    *,
    task: Task,
    path: Path,
    file_format: str,
    mapping: dict[str, str] | None = None,
    status: str = Example.Status.NEW,
    actor=None,
    reporter: Reporter | None = None,
    filename: str = "",
    job_id: int | None = None,
) -> dict:
    """Import every record of the file in one transaction, checking each as it goes: all or nothing. Return the
    counts. `filename` (the name as uploaded) and `job_id` go into the audit log's record of the import.

    Raise ImportFailed naming the problems (nothing imported), ValidationError for a bad status or format, and
    ImportCancelled when the reporter says the job was cancelled (rolled back).
    """
    _check_status(status)
    size = _check_file(path)
    reporter = reporter or Reporter()
    reader = _reader(path, file_format)
    mapper = Mapper(mapping)
    tally = _Tally(status)
    last = -PROGRESS_SECONDS  # the first batch is reported at once: the bar moves as soon as rows go in

    def report(inserted: int, position: int) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_SECONDS:
            reporter.progress(Progress("insert", inserted, position, size))
            last = time.monotonic()

    try:
        with transaction.atomic():
            # Serialise imports into one task (and template edits): the template and the ids stay as checked.
            task = Task.objects.select_for_update().get(pk=task.pk)
            template = task.current_template
            if template is None:
                raise ImportFailed(["The task has no prompt template yet; create one first."])
            loader_class = _CopyLoader if connection.vendor == "postgresql" else _OrmLoader
            loader = loader_class(task=task, template_id=template.pk, status=status, actor=actor)
            inserted = loader.load(_good_records(reader, mapper, tally), reader, report)
            if not inserted:
                raise ImportFailed(["The file holds no records."])
            counts = tally.counts(mapper)
            reporter.progress(Progress("insert", inserted, size, size, done=True))
            reporter.finish(counts)
            audit_record(
                task=task,
                actor=actor,
                action=AuditEvent.Action.IMPORT,
                target=_shown(filename or path.name, 200),
                detail={"records": inserted, "status": str(status), "format": file_format, "job": job_id},
            )
    except (_Stop, _Fatal, IntegrityError) as exc:
        # Rolled back: nothing was imported. Read the whole file to name every problem (a repeated id included).
        import_check(task=task, path=path, file_format=file_format, mapping=mapping, status=status, reporter=reporter)
        if isinstance(exc, IntegrityError):  # the file is good: a change meanwhile (an id taken, a user deleted)
            message = f"The database refused a row because of a change made meanwhile; import again. ({exc})"
            raise ImportFailed([message]) from exc
        raise ImportFailed(["The file changed during the import; try again."]) from exc
    return counts


# --- loaders: the inserts (examples, their first revisions and transitions) -------------------------------------


def _forget_queries() -> None:
    """With DEBUG on, Django keeps the text of every query (up to 9,000): a bulk insert's runs to megabytes. A long
    import would hold hundreds of them, so it drops the log as it goes."""
    if connection.queries_logged:
        reset_queries()


def _batches(records: Iterator[Record]) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


class _Loader:
    def __init__(self, *, task: Task, template_id: int, status: str, actor) -> None:
        self.task = task
        self.template_id = template_id
        self.status = str(status)
        self.actor_id = actor.pk if actor is not None else None
        self.now = timezone.now()
        # An example imported for review has entered review now, as example_submit records it.
        fields = {f.attname for f in Example._meta.concrete_fields}
        self.entered_review = {"submitted_at": self.now} if status != NEW and "submitted_at" in fields else {}
        # The per-example quality checks, as a save runs them, so that queues can filter and sort imported
        # examples by their warnings at once (the task-wide ones come with the next scan).
        self.rules = quality.TaskRules.of(task)
        self.required = required_fields(PromptTemplate.objects.get(pk=template_id).prompt_format)

    def derived(self, r: Record) -> tuple[str, dict]:
        """The prompt hash of a record (services.prompt_hash) and its stored warnings, each text folded once for
        both."""
        fields = {"instruction": r.instruction, "context": r.context, "input": r.input}
        folded = {name: fold(value) for name, value in fields.items()}
        found = findings_of(
            self.rules,
            fields=fields,
            messages=r.messages,
            completion=r.completion,
            required=self.required,
            unwritten=self.status == NEW,  # not written yet: "empty" or "short" says nothing about it
            folded=(folded, fold(r.completion)),
        )
        return prompt_key(folded.values(), r.messages), warning_fields(found)

    def load(self, records: Iterator[Record], reader: _Reader, report: Callable[[int, int], None]) -> int:
        """Insert the records; call report(inserted, bytes of the file read) after each batch. Return the count."""
        raise NotImplementedError


class _OrmLoader(_Loader):
    """bulk_create, batch by batch: any database (SQLite in development)."""

    def load(self, records: Iterator[Record], reader: _Reader, report: Callable[[int, int], None]) -> int:
        inserted = 0
        for batch in _batches(records):
            self.write(batch)
            _forget_queries()
            inserted += len(batch)
            report(inserted, reader.position)
        return inserted

    def write(self, batch: list[Record]) -> None:
        derived = [self.derived(r) for r in batch]
        examples = Example.objects.bulk_create(
            [
                Example(
                    task=self.task,
                    template_id=self.template_id,
                    instruction=r.instruction,
                    context=r.context,
                    input=r.input,
                    messages=r.messages,
                    completion=r.completion,
                    kind=r.kind,
                    source=IMPORTED,
                    external_id=r.external_id,
                    prompt_hash=key,
                    status=self.status,
                    **self.entered_review,
                    **warned,
                )
                for r, (key, warned) in zip(batch, derived, strict=True)
            ]
        )
        Revision.objects.bulk_create(
            Revision(example=e, text=e.completion, kind=e.kind, reason=REASON_IMPORT, example_version=1)
            for e in examples
            if e.completion
        )
        if self.status != NEW:
            Transition.objects.bulk_create(
                Transition(example=e, from_status=NEW, to_status=self.status, actor_id=self.actor_id, note=IMPORTED)
                for e in examples
            )


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextlib.contextmanager
def _short_switch_interval(seconds: float) -> Iterator[None]:
    """The interpreter's thread switch interval set to `seconds` while the block runs: process-wide, so imports that
    overlap in one process (threads of a web server or worker) share it, and the last one out restores it."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(seconds)
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


def _uuid4s(n: int) -> list[str]:
    """`n` random UUIDs (version 4) as text, as str(uuid.uuid4()) gives them, from one read of the system's random
    source: about a quarter of the time of n calls, which shows in an import of a million examples."""
    random = os.urandom(16 * n).hex()
    variant = "89ab89ab89ab89ab"  # the top two bits of byte 8 set to 10 (RFC 4122), from its first hex digit
    out = []
    for i in range(0, 32 * n, 32):
        h = random[i : i + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant[int(h[16], 16)]}{h[17:20]}-{h[20:]}")
    return out


def _escaped(text: str) -> str:
    """`text` in COPY's text format (backslash, tab, newline and carriage return escaped): four C-level searches and
    replaces, ~6× faster than str.translate with a table on 1 KB with nothing to escape, ~20× with line breaks."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


def _copy_text(value: Any) -> str:
    """A value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | dict):
        value = orjson.dumps(value).decode()
    return _escaped(str(value))


class _CopyLoader(_Loader):
    """COPY on PostgreSQL, several times faster than INSERT, in a pipeline: a thread reads, checks, hashes and formats
    the next batch as COPY text while this thread's connection loads the current one, so the client's work overlaps
    the server's (index upkeep dominates). Example ids come from the sequence first (nextval is not transactional, so
    the formatting thread takes them on a connection of its own), so that revisions and transitions can refer to them.
    Foreign keys are checked as each row goes in (SET CONSTRAINTS ALL IMMEDIATE: Django declares them deferred), while
    the thread formats the next batch, instead of all at the commit, where nothing overlaps them (a third of the
    server's time). Columns another change adds to these models are written with their (constant) default.
    """

    EXAMPLE = ("id", "task_id", "template_id", "uuid", "instruction", "context", "input", "messages", "completion",
               "kind", "source", "external_id", "prompt_hash", "warnings", "warning_codes", "risk", "status", "version",
               "author_id", "claimed_by_id", "claim_expires_at", "created_at", "updated_at")  # fmt: skip
    REVISION = ("example_id", "text", "kind", "author_id", "reason", "example_version", "created_at")
    TRANSITION = ("example_id", "from_status", "to_status", "actor_id", "note", "created_at")
    QUEUED_BATCHES = 2  # formatted batches waiting: bounds the memory of the pipeline
    SWITCH_INTERVAL = 0.0005  # seconds: how soon the loading thread gets the GIL back (see load)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sql: dict = {}
        self.extra: dict = {}
        for model, attnames in ((Example, self.EXAMPLE), (Revision, self.REVISION), (Transition, self.TRANSITION)):
            fields = model._meta.concrete_fields
            column = {f.attname: f.column for f in fields}
            extra = [f for f in fields if f.attname not in attnames and not f.primary_key]
            columns = [*map(column.get, attnames), *(f.column for f in extra)]
            quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
            self.sql[model] = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({quoted}) FROM STDIN"
            self.extra[model] = "".join("\t" + _copy_text(self._default(model, f)) for f in extra)
        now = _copy_text(self.now)
        self.example_tail = f"\t{self.status}\t1\t\\N\t\\N\t\\N\t{now}\t{now}{self.extra[Example]}\n"
        self.revision_tail = f"\t\\N\t{REASON_IMPORT}\t1\t{now}{self.extra[Revision]}\n"
        actor = _copy_text(self.actor_id)
        self.transition_tail = f"\t{NEW}\t{self.status}\t{actor}\t{IMPORTED}\t{now}{self.extra[Transition]}\n"

    def _default(self, model, f) -> Any:
        if model is Example and f.attname in self.entered_review:
            return self.entered_review[f.attname]
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            return self.now
        if f.unique:
            raise RuntimeError(f"annotate.importing cannot fill the unique column {model.__name__}.{f.name}: add it.")
        return f.get_default()

    def load(self, records: Iterator[Record], reader: _Reader, report: Callable[[int, int], None]) -> int:
        batches: queue.Queue = queue.Queue(maxsize=self.QUEUED_BATCHES)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(records, reader, batches, stop), name="import-copy-format", daemon=True
        )
        # This thread sends each batch in 128 kB pieces, waiting on the socket between them; when the formatting
        # thread holds the GIL, taking it back can cost up to the switch interval (5 ms), and the server idles
        # meanwhile. A shorter interval while the two threads run: ~7% more records/s on 2 cores (benchmarks/).
        with _short_switch_interval(self.SWITCH_INTERVAL):
            inserted = self._load(producer, batches, stop, report)
        # Back to Django's default for the rest of the transaction (the audit row, a caller's own writes).
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        return inserted

    def _load(
        self,
        producer: threading.Thread,
        batches: queue.Queue,
        stop: threading.Event,
        report: Callable[[int, int], None],
    ) -> int:
        inserted = 0
        try:
            producer.start()
            # psycopg's own cursor, for COPY; its errors wrapped as Django's (a repeated id: IntegrityError)
            with connection.cursor() as cursor, connection.wrap_database_errors:
                raw = cursor.cursor
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # this transaction only: see the class's docstring
                while (item := batches.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    examples, revisions, transitions, count, position = item
                    with raw.copy(self.sql[Example]) as copy:
                        copy.write(examples)
                    if revisions:
                        with raw.copy(self.sql[Revision]) as copy:
                            copy.write(revisions)
                    if transitions:
                        with raw.copy(self.sql[Transition]) as copy:
                            copy.write(transitions)
                    inserted += count
                    report(inserted, position)
        finally:
            stop.set()
            if producer.is_alive():
                producer.join()
        return inserted

    def _produce(self, records: Iterator[Record], reader: _Reader, batches: queue.Queue, stop: threading.Event) -> None:
        """The formatting thread: put (examples, revisions, transitions, count, position) per batch, then None."""

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    batches.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for batch in _batches(records):
                if not put((*self._format(batch), len(batch), reader.position)):
                    return
            put(None)
        except BaseException as exc:  # handed to the loading thread, which raises it
            put(exc)
        finally:
            connection.close()  # this thread's own connection (the one nextval used)

    def _format(self, batch: list[Record]) -> tuple[str, str, str]:
        with connection.cursor() as cursor:
            # One row of text, not a row an id: the ids are only ever written back as text.
            cursor.execute(
                "SELECT string_agg(nextval(pg_get_serial_sequence(%s, 'id'))::text, ',') FROM generate_series(1, %s)",
                [Example._meta.db_table, len(batch)],
            )
            ids = cursor.fetchone()[0].split(",")
        head = f"\t{self.task.pk}\t{self.template_id}\t"
        examples, revisions, transitions = [], [], []
        moved = self.status != NEW  # a transition only when the status moves (submitted, approved)
        for pk, uid, r in zip(ids, _uuid4s(len(batch)), batch, strict=True):
            completion = _escaped(r.completion)
            messages = _escaped(orjson.dumps(r.messages).decode()) if r.messages else "[]"
            key, found = self.derived(r)
            warned = (
                f"{_escaped(orjson.dumps(found['warnings']).decode())}\t{found['warning_codes']}\t{found['risk']}"
                if found["risk"]
                else "[]\t\t0"
            )
            examples.append(
                f"{pk}{head}{uid}\t{_escaped(r.instruction)}\t{_escaped(r.context)}\t"
                f"{_escaped(r.input)}\t{messages}\t{completion}\t{r.kind}\t{IMPORTED}\t"
                f"{_escaped(r.external_id)}\t{key}\t{warned}{self.example_tail}"
            )
            if completion:
                revisions.append(f"{pk}\t{completion}\t{r.kind}{self.revision_tail}")
            if moved:
                transitions.append(f"{pk}{self.transition_tail}")
        return "".join(examples), "".join(revisions), "".join(transitions)


# --- uploads, preview and jobs (the browser's side) ----------------------------------------------------------

_TOKEN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def upload_dir() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def upload_path(token: str) -> Path:
    """Where an upload is kept: a generated name under VAR_DIR/imports, never the name it was uploaded with."""
    if not _TOKEN.fullmatch(token):
        raise ValueError("not an upload token")
    return upload_dir() / f"{token}.upload"


def upload_token() -> str:
    return str(uuid.uuid4())


@dataclass
class Upload:
    """A file uploaded for import, waiting for the lead's mapping and go-ahead."""

    token: str
    filename: str
    size: int
    file_format: str

    @property
    def path(self) -> Path:
        return upload_path(self.token)


def upload_accept(*, token: str, filename: str, file_format: str = "") -> Upload:
    """Check an uploaded file: its size, its format, that records can be read. Raise ValidationError (file deleted)."""
    path = upload_path(token)
    try:
        size = _check_file(path)
        if size == 0:
            raise ValidationError("The file is empty.")
        file_format = file_format or detect_format(path=path, filename=filename)
        reader = _reader(path, file_format)
        keys = source_keys(path=path, file_format=file_format)
        if not keys:
            problems = _Problems(reader)
            try:
                for order, loc, _, record_problems in _records(reader, Mapper()):
                    if record_problems:
                        problems.add_record(order, loc, record_problems)
                    break
            except _Fatal as exc:
                problems.add(0, exc.where, None, exc.message)
            problems.raise_if_any()
            raise ValidationError("The file holds no records.")
    except ValidationError:
        path.unlink(missing_ok=True)
        raise
    return Upload(token=token, filename=filename[:255], size=size, file_format=file_format)


def source_keys(*, path: Path, file_format: str) -> list[str]:
    """The keys a file's records use (CSV: its header; JSON: those of its first records), in order of appearance.

    Up to MAX_KEYS, each one that can be mapped: the mapping is stored on the job row (JSON), where a NUL or an
    unpaired surrogate cannot go, and a key of a megabyte has no business in a form.
    """
    reader = _reader(path, file_format)
    if isinstance(reader, _CsvReader):
        found = reader.columns()
    else:
        keys: dict[str, None] = {}
        try:
            for number, (_, raw, _) in enumerate(reader):
                if isinstance(raw, dict):
                    keys.update(dict.fromkeys(str(key) for key in raw))
                if number >= SAMPLE_RECORDS or len(keys) > MAX_KEYS:
                    break
        except _Fatal:
            pass
        found = list(keys)
    return [key for key in found if len(key) <= MAX_KEY_CHARS and not _UNSTORABLE.search(key)][:MAX_KEYS]


def default_mapping(keys: list[str]) -> dict[str, str]:
    """Each key mapped to the field of its name (or alias: prompt, output, id), else ignored (""). Two keys may name
    one field ("prompt" and "instruction"): records of a JSON file may take either shape, just not both at once."""
    return {key: NAME_MATCHES.get(key.strip().lower(), "") for key in keys}


def preview(*, path: Path, file_format: str, mapping: dict[str, str], limit: int = PREVIEW_RECORDS) -> list[dict]:
    """The first records as they will be stored (`record`), or their problems (`problems`, messages)."""
    reader = _reader(path, file_format)
    rows = []
    try:
        for order, loc, record, problems in _records(reader, Mapper(mapping)):
            messages = [f'field "{_shown(f, 100)}": {m}' if f else m for f, m in problems or ()]
            rows.append({"where": reader.describe(loc), "record": record, "problems": messages})
            if order >= limit:
                break
    except _Fatal as exc:
        rows.append({"where": exc.where, "record": None, "problems": [exc.message]})
    return rows


def import_start(*, task: Task, upload: Upload, mapping: dict[str, str], status: str, user) -> ImportJob:
    """Record the import as a job. A small file is imported now, in this request; a large one (over
    INLINE_MAX_BYTES or INLINE_MAX_RECORDS) is queued for a worker. Raise ImportFailed (small file: nothing was
    imported and the upload is kept for another try) or ValidationError for a bad status.
    """
    from .tasks import import_run_task

    _check_status(status)
    small = upload.size <= INLINE_MAX_BYTES
    if small:
        counts = import_check(
            task=task, path=upload.path, file_format=upload.file_format, mapping=mapping, status=status
        )
        small = counts["records"] <= INLINE_MAX_RECORDS
    job = ImportJob.objects.create(
        task=task,
        filename=upload.filename[:255],
        path=str(upload.path),
        file_format=upload.file_format,
        size=upload.size,
        status_on_import=status,
        mapping=mapping,
        created_by=user,
    )
    if small:
        import_run(job_id=job.pk)
        job.refresh_from_db()
    else:
        job_send(import_run_task, job)
    return job


def import_run(*, job_id: int) -> None:
    """Run an import job (a worker's side, or inline for a small file): claim it, import, mark the row.

    Problems and cancellation are recorded on the row and the upload deleted. Transient database errors are raised
    with the upload kept: the lease expires and the sweep runs the job again (up to its attempts).
    """
    job = job_claim(ImportJob, job_id)
    if job is None:
        return  # another worker has it, or it is finished or cancelled
    reporter = JobReporter(job)
    done = True
    try:
        examples_import(
            task=job.task,
            path=Path(job.path),
            file_format=job.file_format,
            mapping=job.mapping or None,
            status=job.status_on_import,
            actor=job.created_by,
            reporter=reporter,
            filename=job.filename,
            job_id=job.pk,
        )
    except ValidationError as exc:
        # The problems quote the file (escaped by _shown); the net catches what else could hold a NUL.
        job_fail(job, _UNSTORABLE.sub("\ufffd", "\n".join(exc.messages)))
    except ImportCancelled:
        pass
    except (OperationalError, InterfaceError):
        done = False
        raise
    except Exception as exc:
        logger.exception("Import job %s failed", job.pk)
        job_fail(job, f"The import stopped on an unexpected error ({type(exc).__name__}); nothing was imported.")
    finally:
        reporter.close()
        if done:
            Path(job.path).unlink(missing_ok=True)


def uploads_prune(*, max_age: float = UPLOAD_MAX_AGE_SECONDS) -> int:
    """Delete uploads older than `max_age` seconds that no live import job needs. Returns how many."""
    folder = upload_dir()
    if not folder.is_dir():
        return 0
    live = set(ImportJob.objects.filter(state__in=["queued", "running"]).values_list("path", flat=True))
    cutoff = time.time() - max_age
    removed = 0
    for path in folder.glob("*.upload"):
        try:
            if path.stat().st_mtime < cutoff and str(path) not in live:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def import_cancel(*, job: ImportJob) -> bool:
    """Cancel a queued or running import and delete its upload; a running worker stops at its next heartbeat and
    rolls back. Returns whether it was cancelled (False: it had already finished)."""
    if not job_cancel(job):
        return False
    # A worker still reading the file keeps its open handle; one about to open it finds it gone and stops.
    Path(job.path).unlink(missing_ok=True)
    return True
