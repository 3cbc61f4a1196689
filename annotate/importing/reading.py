"""Reading files: JSONL (split on \\n only), one JSON array (streamed), CSV (pandas, in chunks)."""

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from django.core.exceptions import ValidationError

from ..models import ImportJob
from . import limits
from .common import _RAW_CONTROL, BOM, TOO_DEEP, TOO_LONG_NUMBER, _json_problem, human_size


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
            chunk = f.read(limits.READ_CHUNK)
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
            while raw := readline(limits.MAX_RECORD_BYTES + 1):
                line_no += 1
                start = position
                position += len(raw)
                self.position = position
                if len(raw) > limits.MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                    while (rest := readline(limits.READ_CHUNK)) and not rest.endswith(b"\n"):
                        position += len(rest)
                    position += len(rest)
                    self.position = position
                    yield line_no, None, f"longer than {human_size(limits.MAX_RECORD_BYTES)}, the limit of one record"
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
                chunk = f.read(limits.READ_CHUNK)
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
                        if len(buf) - idx > limits.MAX_RECORD_BYTES:
                            raise _Fatal(
                                f"line {start_line}",
                                f"a record longer than {human_size(limits.MAX_RECORD_BYTES)}, the limit",
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
                    f,
                    dtype=str,
                    keep_default_na=False,
                    index_col=False,
                    chunksize=limits.CSV_CHUNK_ROWS,
                    encoding="utf-8",
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
