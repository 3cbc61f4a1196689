"""What every part of the import shares: its errors, statuses, and how user text is quoted in a problem."""

import codecs
import re
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, reset_queries

from ..models import Example, Kind, PromptTemplate, Revision, Task
from . import limits

IMPORT_STATUSES = (Example.Status.NEW, Example.Status.SUBMITTED, Example.Status.APPROVED)
BOM = codecs.BOM_UTF8
# Plain strings, for the COPY text and the counts' JSON.
HAPPY = Kind.HAPPY.value
NEW, IMPORTED, REASON_IMPORT = Example.Status.NEW.value, Example.Source.IMPORTED.value, Revision.Reason.IMPORT.value


class ImportFailed(ValidationError):
    """Nothing was imported; `messages` names each problem (line or row, field), then how many more there were."""

    def __init__(self, problems: list[str], more: int = 0, unmapped: list[str] | None = None) -> None:
        self.problems = problems
        self.more = more
        self.unmapped = unmapped or []  # labels of the keys that no field takes, refused
        super().__init__(problems + ([f"… and {more:,} more problem{'s' if more != 1 else ''}."] if more else []))


class ImportCancelled(Exception):
    """The import job was cancelled while it ran; its transaction is rolled back."""


def max_import_rows() -> int:
    """The most records one file may hold (the MAX_IMPORT_ROWS setting), read at each import so tests can change it."""
    return int(getattr(settings, "MAX_IMPORT_ROWS", limits.DEFAULT_MAX_IMPORT_ROWS))


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


_UNREADABLE = object()


def popped_messages(values: dict, keys: dict, problems: list):
    """The record's messages, popped from `values`: as given, or read from the JSON text a CSV cell holds. A JSON
    error is noted in `problems` (against the messages' key) and gives _UNREADABLE."""
    messages = values.pop("messages")
    if isinstance(messages, str):  # a CSV cell holding the JSON of the messages
        try:
            return orjson.loads(messages)
        except orjson.JSONDecodeError as exc:
            problems.append((keys["messages"], _json_problem(exc)))
            return _UNREADABLE
    return messages


# orjson stops at 1,024 levels; Python's json (JSON arrays) at its recursion limit (1,000 frames, less what is in use).
TOO_DEEP = "arrays and objects nested too deeply (the limit is about 1,000 levels)"
# Python's json refuses to convert an integer of more than 4,300 digits (sys.int_info.str_digits_check_threshold).
TOO_LONG_NUMBER = "a number too long to read (the limit is 4,300 digits)"
# A raw control character (anything but the \n that ends the line): JSON wants it escaped inside a string.
_RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def human_size(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n:,} bytes"


def _forget_queries() -> None:
    """With DEBUG on, Django keeps the text of every query (up to 9,000): a bulk insert's runs to megabytes. A long
    import would hold hundreds of them, so it drops the log as it goes."""
    if connection.queries_logged:
        reset_queries()


def locked_task(task: Task) -> tuple[Task, PromptTemplate]:
    """The task, locked for the rest of the caller's transaction, and its current template. Imports into one task (and
    template edits) wait for each other, so the template and the ids stay as checked. Raise ImportFailed when the
    task has no template yet."""
    task = Task.objects.select_for_update().get(pk=task.pk)
    template = task.current_template
    if template is None:
        raise ImportFailed(["The task has no prompt template yet; create one first."])
    return task, template
