"""Exports: numbered, immutable versions of a task's approved examples, written by a Celery job.

`export_request` queues the next version; the worker claims it and calls `export_build`, which streams the approved
examples in id order, renders each through its own template version, checks it against its format's rules, splits
it deterministically, and writes train.jsonl, validation.jsonl, manifest.json and README.md into a hidden partial
folder. The folder is fsynced and renamed to EXPORT_ROOT/<slug>/v<N> in the same transaction that marks the row
succeeded, so a reader never sees half an export, and a worker killed mid-way leaves only a partial folder that the
next attempt removes.
"""

import errno
import heapq
import logging
import math
import os
import re
import secrets
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from fractions import Fraction
from hashlib import sha256
from itertools import chain, islice
from pathlib import Path
from queue import Empty, Queue
from typing import BinaryIO

import orjson
import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import BooleanField, Max
from django.db.models.expressions import RawSQL
from django.utils import timezone

from annotate.audit import Action, audit_record
from annotate.models import Example, Kind, Membership, PromptTemplate, Role, Task
from annotate.rendering import CHAT_ROLES, TemplateError, TemplateSpec, limit, record_renderer, spec_limits_error
from pairsmith.jobs import LIVE_STATES, JobState, job_cancel, job_fail, job_finish, job_heartbeat, job_send

from . import retention
from .card import dataset_card
from .models import EXPORT_FORMATS, FILE_KEYS, ApiToken, Export, ExportChange, token_digest
from .storage import export_dir, fsync_dir
from .storage import export_file_path as export_file_path  # views, commands and tests read both from here

logger = logging.getLogger(__name__)

FORMATS = tuple(value for value, _ in EXPORT_FORMATS)
SPLITS = ("train", "validation")
SPLIT_FILES = {"train": "train.jsonl", "validation": "validation.jsonl"}
CHUNK = 2_000  # rows per fetch from the server-side cursor, and lines per write
HEARTBEAT_SECONDS = 1.0  # progress on the row (the page polls every 2 s) and a lease far from running out
MAX_PROBLEMS = 100  # problems kept on the row; the error counts them all
CONTENT_HASH_DIGITS = 16
TOKEN_PREFIX = "psk_"
# Test-only: seconds to sleep per record, so that tests can watch, cancel or kill an export in flight.
THROTTLE_ENV = "PAIRSMITH_EXPORT_THROTTLE"

# The fields each format's record holds, exactly; order as written.
RECORD_KEYS = {
    "openai-chat": ("messages",),
    "prompt-completion": ("prompt", "completion"),
    "alpaca": ("instruction", "input", "output"),
}


class ExportCancelled(Exception):
    """The export was cancelled (or taken over by another worker) while it was being written."""


DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # no space left, or over the quota


class ExportDiskFull(Exception):
    """The filesystem of EXPORT_ROOT ran out of space (or quota) while `name` was being written."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"The disk is full while writing {name}: no space left on the device of EXPORT_ROOT. Nothing of this "
            "version was kept; free some space there and export again."
        )


@contextmanager
def _writing(name: str) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) while writing `name` into ExportDiskFull, which names the file."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise ExportDiskFull(name) from exc
        raise


class ExportRecordsInvalid(Exception):
    """Records failed their format's checks; `problems` lists them (up to MAX_PROBLEMS), `count` counts them all."""

    def __init__(self, problems: list[dict], count: int) -> None:
        self.problems = problems
        self.count = count
        lines = [f"{p['example']} ({p['uuid']}): {p['reason']}" for p in problems[:20]]
        more = f"\n… and {count - len(lines)} more" if count > len(lines) else ""
        super().__init__(
            f"{count} record{'s' if count != 1 else ''} failed the format checks; nothing was written. "
            "Fix these examples and export again:\n" + "\n".join(lines) + more
        )


# --- the split and the record checks ----------------------------------------------------------------------------


def split_of(*, seed: str, uuid: str, ratio: float) -> str:
    """The side of the split: "validation" when the first 8 bytes of sha256("<seed>:<uuid>"), a big-endian integer,
    are below ratio × 2**64 (that is, the hash read as a fraction is below the ratio), else "train"."""
    return _splitter(seed, ratio)(uuid)


def _split_limit(ratio: float) -> bytes:
    """ratio × 2**64, rounded up, as 8 big-endian bytes: the first 8 bytes of a hash (as a big-endian integer) are
    below ratio × 2**64 exactly when, compared as bytes, they are below this."""
    return math.ceil(Fraction(ratio) * 2**64).to_bytes(8, "big")


def _splitter(seed: str, ratio: float) -> Callable[[str], str]:
    """split_of for one seed and ratio, with what does not depend on the example worked out once."""
    prefix = f"{seed}:".encode()
    limit = _split_limit(ratio) + bytes(24)  # compared with the whole digest: zeros after the 8 bytes that count

    def split(uuid: str) -> str:
        return "validation" if sha256(prefix + uuid.encode()).digest() < limit else "train"

    return split


def _in_validation_sql(seed: str, ratio: float) -> RawSQL:
    """split_of as SQL, for PostgreSQL: the database hashes while the worker renders (same rule, same bytes:
    "<seed>:<uuid as lowercase hyphenated text>" in UTF-8; bytea compares bytewise like Python bytes)."""
    return RawSQL(
        'substring(sha256(convert_to(%s || "annotate_example"."uuid"::text, \'UTF8\')) from 1 for 8) < %s',
        (f"{seed}:", _split_limit(ratio)),
        output_field=BooleanField(),
    )


_ROLES = frozenset(CHAT_ROLES)


def _text_ok(value) -> bool:
    """A string with something other than whitespace in it."""
    return value.__class__ is str and value != "" and not value.isspace()


def _record_ok(export_format: str, record) -> bool:
    """True when the record is certainly valid: the common case, checked without building anything."""
    if record.__class__ is not dict:
        return False
    if export_format == "openai-chat":
        messages = record.get("messages")
        if len(record) != 1 or messages.__class__ is not list or not messages:
            return False
        for message in messages:  # inlined: this runs for every turn of every record
            if message.__class__ is not dict or len(message) != 2:
                return False
            role, content = message.get("role"), message.get("content")
            if role.__class__ is not str or role not in _ROLES:
                return False
            if content.__class__ is not str or not content or content.isspace():
                return False
        return messages[-1]["role"] == "assistant"
    keys = RECORD_KEYS[export_format]
    if len(record) != len(keys) or tuple(record) != keys:
        return False
    if any(record[key].__class__ is not str for key in keys):
        return False
    return _text_ok(record[keys[-1]])  # the completion, or alpaca's output


def record_problem(export_format: str, record) -> str | None:
    """Why `record` breaks the rules of `export_format`, or None when it is a valid record."""
    if _record_ok(export_format, record):
        return None
    return _record_explain(export_format, record) or f"the record does not have the {export_format} shape"


def _record_explain(export_format: str, record) -> str | None:
    if not isinstance(record, dict):
        return "the record is not a JSON object"
    expected = RECORD_KEYS[export_format]
    if tuple(record) != expected:
        extra = sorted(set(record) - set(expected))
        missing = [key for key in expected if key not in record]
        parts = [
            f"unknown keys {', '.join(extra)}" if extra else "",
            f"missing keys {', '.join(missing)}" if missing else "",
        ]
        return "; ".join(part for part in parts if part) or f"keys out of order, expected {', '.join(expected)}"
    if export_format == "openai-chat":
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            return "messages is not a non-empty list"
        for position, message in enumerate(messages, 1):
            if not isinstance(message, dict):
                return f"message {position} is not an object"
            if set(message) != {"role", "content"}:
                keys = ", ".join(sorted(set(message) ^ {"role", "content"}))
                return f"message {position} must have exactly role and content (differs in: {keys})"
            if not isinstance(message["role"], str) or message["role"] not in _ROLES:
                return f"message {position} has unknown role {message['role']!r}"
            if not isinstance(message["content"], str):
                return f"message {position} content is not a string"
            if not _text_ok(message["content"]):
                return f"message {position} ({message['role']}) has empty content"
        if messages[-1]["role"] != "assistant":
            return "the last message is not the assistant's"
        return None
    for key in expected:
        if not isinstance(record[key], str):
            return f"{key} is not a string"
    if not _text_ok(record[expected[-1]]):
        return f"{expected[-1]} is empty"
    return None


# --- requesting, cancelling ---------------------------------------------------------------------------------------


@transaction.atomic
def export_request(
    *,
    task: Task,
    export_format: str,
    validation_ratio: float | None = None,
    kinds: list[str] | None = None,
    user=None,
) -> Export:
    """Queue the next export version of `task` and wake a worker after commit. Raise ValidationError for an unknown
    format or kind, a ratio outside [0, 1), or when nothing approved matches."""
    if export_format not in FORMATS:
        raise ValidationError({"export_format": f"Unknown format {export_format!r}; use one of {', '.join(FORMATS)}."})
    ratio = task.validation_ratio if validation_ratio is None else validation_ratio
    if not isinstance(ratio, int | float) or not math.isfinite(ratio) or not 0 <= ratio < 1:
        raise ValidationError(
            {"validation_ratio": f"The validation ratio must be at least 0 and below 1, not {ratio!r}."}
        )
    chosen = sorted(set(kinds)) if kinds else sorted(Kind.values)
    unknown = [kind for kind in chosen if kind not in Kind.values]
    if unknown:
        raise ValidationError({"kinds": f"Unknown kind {unknown[0]!r}; use {', '.join(Kind.values)}."})
    if not _approved(task, chosen).exists():
        what = "no approved examples yet" if len(chosen) == len(Kind.values) else "no approved examples of those kinds"
        raise ValidationError(f"Nothing to export: {what}.")
    Task.objects.select_for_update().get(pk=task.pk)  # serialise version numbering per task
    version = (Export.objects.filter(task=task).aggregate(v=Max("version"))["v"] or 0) + 1
    export = Export(
        task=task,
        version=version,
        format=export_format,
        filters={"status": Example.Status.APPROVED, "kinds": chosen},
        validation_ratio=float(ratio),
        split_seed=task.split_seed,
        created_by=user,
    )
    export.full_clean()
    export.save()
    audit_record(
        task=task,
        actor=user,
        action=Action.EXPORT_REQUESTED,
        target=f"v{version}",
        detail={"format": export_format, "validation_ratio": float(ratio), "kinds": chosen},
    )
    from .tasks import export_build_task  # the task module imports this one

    job_send(export_build_task, export)
    return export


@transaction.atomic
def export_cancel(*, export: Export, actor=None) -> None:
    """Cancel a queued or running export; a running worker stops at its next heartbeat. `actor` cancelled it (None:
    a command). Raise ValidationError when it has already finished."""
    if not job_cancel(export):
        export.refresh_from_db(fields=["state"])
        raise ValidationError(f"Export v{export.version} has already {export.state}; only a live export can stop.")
    audit_record(task=export.task, actor=actor, action=Action.EXPORT_CANCELLED, target=f"v{export.version}")


def _approved(task: Task, kinds: list[str]):
    examples = Example.objects.filter(task=task, status=Example.Status.APPROVED)
    if len(kinds) != len(Kind.values):
        examples = examples.filter(kind__in=kinds)
    return examples


# --- building -------------------------------------------------------------------------------------------------------


def export_build(*, export: Export) -> Export:
    """Write the files of a claimed (running) export, then publish them and mark the row succeeded in one step.
    Bad records mark it failed with their example ids and reasons; cancellation stops it and leaves nothing.
    Raise DatabaseError (or psycopg.OperationalError, from the reading connection) on database trouble: the row
    stays running and the sweep retries it once its lease ends. Once published, the task's older versions beyond
    the number it keeps are pruned."""
    task_dir = Path(settings.EXPORT_ROOT) / export.task.slug
    published = False
    partial = task_dir / f".partial-v{export.version}-{secrets.token_hex(4)}"
    try:
        with _writing(f"the folder {partial.name}"):  # a disk out of space or inodes fails here too, not forever
            task_dir.mkdir(parents=True, exist_ok=True)
            _remove_partials(task_dir, export)
            partial.mkdir()
        built = _write_files(export, partial)
        _publish(export, partial, built)
        published = True
    except ExportCancelled:
        logger.info("Export %s stopped: cancelled or taken over.", export.pk)
    except ExportRecordsInvalid as exc:
        job_fail(export, str(exc))
        Export.objects.filter(pk=export.pk, state=JobState.FAILED).update(problems=exc.problems)
    except ExportDiskFull as exc:
        logger.warning("Export %s failed: %s", export.pk, exc)
        job_fail(export, str(exc))
    except (DatabaseError, psycopg.OperationalError):
        raise  # transient: the row stays running, the sweep re-sends it when the lease ends
    except Exception as exc:  # a bug: say so on the row rather than retrying forever
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:  # a file that _writing does not wrap (.changes)
            job_fail(export, str(ExportDiskFull("the export's files")))
        else:
            logger.exception("Export %s failed", export.pk)
            job_fail(export, f"The export stopped on an unexpected error: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if published:
        try:
            retention.export_prune(task=export.task)
        except DatabaseError:  # the version is out and stays so; the next export that succeeds prunes again
            logger.warning(
                "Pruning the exports of %s failed; the next export retries.", export.task.slug, exc_info=True
            )
    export.refresh_from_db()
    return export


_PARTIAL = re.compile(r"\.partial-v([0-9]+)-")


def _remove_partials(task_dir: Path, export: Export) -> None:
    """Remove what killed workers left: earlier attempts at this version, and the hidden folders of versions that
    ended (cancelled, or failed after their last attempt) while a dead worker's folder was still there. A folder of
    another version still in progress is that build's own and stays."""
    live = set(
        Export.objects.filter(task=export.task, state__in=LIVE_STATES)
        .exclude(pk=export.pk)
        .values_list("version", flat=True)
    )
    for stale in task_dir.glob(".partial-v*-*"):
        match = _PARTIAL.match(stale.name)
        if match and (int(match.group(1)) == export.version or int(match.group(1)) not in live):
            shutil.rmtree(stale, ignore_errors=True)


@dataclass
class _SplitWriter:
    """One split's JSONL file and its manifest index (one `[id, uuid, hash]` entry per record), in id order.

    Lines gather in memory and go out a chunk at a time. Writing and hashing a chunk happen on `pool`'s thread:
    both release the GIL, so they overlap with rendering the next records. One chunk is in flight at most.
    """

    data: BinaryIO
    index: BinaryIO
    pool: ThreadPoolExecutor
    lines: list = field(default_factory=list)
    entries: list = field(default_factory=list)
    digest: object = field(default_factory=sha256)
    size: int = 0
    records: int = 0
    pending: Future | None = None

    def flush(self) -> None:
        if not self.lines:
            return
        records = len(self.lines)
        self.lines.append(b"")  # so that the join ends with a newline, without copying the chunk again
        chunk = b"\n".join(self.lines)
        index = ((",\n      " if self.records else "      ") + ",\n      ".join(self.entries)).encode()
        self.wait()
        self.pending = self.pool.submit(self._write, chunk, index)
        self.size += len(chunk)
        self.records += records
        self.lines.clear()
        self.entries.clear()

    def _write(self, chunk: bytes, index: bytes) -> None:
        with _writing(Path(self.data.name).name):
            self.data.write(chunk)
            self.digest.update(chunk)
            self.index.write(index)

    def wait(self) -> None:
        """Wait for the chunk in flight; raise its error, if any (a full disk)."""
        if self.pending is not None:
            self.pending.result()
            self.pending = None


@dataclass
class _Built:
    counts: dict
    files: dict
    templates: list
    changes: dict
    base_version: int | None
    warnings: dict


def _throttle() -> float:
    try:
        return max(0.0, float(os.environ.get(THROTTLE_ENV) or 0))
    except ValueError:
        return 0.0


@contextmanager
def _approved_rows(export: Export) -> Iterator[tuple[int, Iterator[list[tuple]]]]:
    """How many approved examples there are, and their rows in id order, in batches, streamed through a server-side
    cursor: (id, uuid as text, template id, instruction, context, input, completion, kind, prior messages, the
    stored warning codes (",leak,short,"), whether it goes to validation).

    On PostgreSQL a worker reads on a connection of its own, in one REPEATABLE READ, read-only transaction, with a
    named (server-side) cursor: the count and the rows come from one snapshot; the cursor streams (Django's
    `.iterator()` outside a transaction declares its cursor WITH HOLD, which copies the whole result on the server
    before the first row); and the progress the job writes on the default connection is seen at once. UUIDs and
    JSON arrive as text, which is what the export writes: decoding them into objects would be wasted work (on 100k
    rows, measured: 139k rows/s against 51k for values_list().iterator()). A thread fetches the next batch while
    this one is processed. Inside a transaction (the tests), the rows are read in it, on this thread, since another
    connection would not see them.
    """
    columns = [
        "id", "uuid", "template_id", "instruction", "context", "input", "completion", "kind", "messages",
        "warning_codes", "metadata",
    ]  # fmt: skip
    examples = _approved(export.task, export.filters.get("kinds") or list(Kind.values)).order_by("id")
    if connection.vendor != "postgresql":
        split = _splitter(export.split_seed, export.validation_ratio)
        rows = examples.values_list(*columns).iterator(chunk_size=CHUNK)
        batches = iter(
            lambda: [
                (row[0], uuid, *row[2:], split(uuid) == "validation")
                for row in islice(rows, CHUNK)
                for uuid in (str(row[1]),)
            ],
            [],
        )
        yield examples.count(), batches
        return
    in_validation = _in_validation_sql(export.split_seed, export.validation_ratio)
    queryset = examples.annotate(in_validation=in_validation).values_list(*columns, "in_validation")
    from psycopg.types.string import TextLoader

    sql, params = queryset.query.sql_with_params()
    if connection.in_atomic_block:
        connection.ensure_connection()
        reader, own = connection.connection, False
    else:
        reader, own = psycopg.connect(**connection.get_connection_params()), True
        reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        reader.read_only = True
    try:
        # In the caller's transaction no savepoint: rolling one back would undo the job's own writes (a cancel).
        with reader.transaction() if own else nullcontext():
            with reader.cursor() as cursor:
                count_sql, count_params = examples.order_by().values("id").query.sql_with_params()
                total = cursor.execute(f"SELECT count(*) FROM ({count_sql}) AS approved", count_params).fetchone()[0]
            with reader.cursor(name=f"export_{export.pk}") as cursor:
                cursor.adapters.register_loader("uuid", TextLoader)
                cursor.adapters.register_loader("jsonb", TextLoader)
                cursor.execute(sql, params)
                if not own:  # the caller's connection: stay on this thread
                    yield total, iter(lambda: cursor.fetchmany(CHUNK), [])
                    return
                batches = _read_ahead(lambda: cursor.fetchmany(CHUNK))
                try:
                    yield total, batches
                finally:
                    batches.close()  # stop the fetching thread before the cursor closes
    finally:
        if own:
            reader.close()


def _read_ahead(fetch: Callable[[], list]) -> Generator[list, None, None]:
    """Yield the batches of `fetch()` until an empty one, fetching the next in a thread while the caller works on
    this one: PostgreSQL reads, formats and sends rows on the other core in the meantime (the thread waits on the
    socket without the GIL)."""
    ready: Queue = Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                batch = fetch()
                ready.put(batch)
                if not batch:
                    return
        except Exception as exc:  # handed to the consumer, raised there
            ready.put(exc)

    thread = threading.Thread(target=produce, name="export-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            batch = ready.get()
            if isinstance(batch, Exception):
                raise batch
            if not batch:
                return
            yield batch
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to put, then let it see `stop`
            with suppress(Empty):
                ready.get(timeout=0.05)
        thread.join()


def _write_files(export: Export, folder: Path) -> _Built:
    """Write the four files into `folder`. Raise ExportCancelled or ExportRecordsInvalid."""
    task = export.task
    export_format = export.format
    # Every template version of the task, once: records join their template through this dict, not per-row queries.
    templates = {}
    for template in task.templates.all():
        template.task = task  # effective_system_message reads the task's system prompt without a query
        spec = TemplateSpec.of(template)
        templates[template.pk] = (template.version, spec, _renderer(spec, export_format, template.version))
    max_record = limit("MAX_RENDERED_RECORD_BYTES")
    base = _base_export(export)
    throttle = _throttle()
    problems: list[dict] = []
    problem_count = 0
    tally: Counter = Counter()  # (split, kind, template version) -> records
    warned: Counter = Counter()  # warning code -> exported examples that carry it
    dumps = orjson.dumps
    done = 0
    last_beat = time.monotonic()
    with (
        _approved_rows(export) as (total, batches),
        open(folder / "train.jsonl", "wb") as train_data,
        open(folder / "validation.jsonl", "wb") as validation_data,
        open(folder / ".train.index", "wb") as train_index,
        open(folder / ".validation.index", "wb") as validation_index,
        open(folder / ".changes", "wb") as changes,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-write") as pool,  # one thread: chunks in order
    ):
        # Compared with the previous version as the records go by; the first version has nothing to compare with.
        try:
            diff = _Diff(_manifest_entries(export_dir(base) / "manifest.json"), changes) if base else None
        except FileNotFoundError:  # the base version was deleted since it was chosen (its files are open otherwise)
            base = diff = None
        if not job_heartbeat(export, progress=0, total=total):
            raise ExportCancelled
        writers = {
            "train": _SplitWriter(train_data, train_index, pool),
            "validation": _SplitWriter(validation_data, validation_index, pool),
        }
        chat = export_format == "openai-chat"
        rows = chain.from_iterable(batches)
        for (
            pk,
            uuid,
            template_id,
            instruction,
            context,
            input_,
            completion,
            kind,
            messages,
            codes,
            metadata,
            in_validation,
        ) in rows:
            if not chat:
                messages = None  # only chat records carry prior turns
            elif messages.__class__ is str:  # jsonb as text, from PostgreSQL
                messages = orjson.loads(messages) if messages != "[]" else None
            template = templates.get(template_id)
            if template is None:  # not one of the task's own templates: a data error, rare
                version, spec = _foreign_template(template_id)
                template = templates[template_id] = (version, spec, _renderer(spec, export_format, version))
            version, _, render = template
            try:
                record = render({"instruction": instruction, "context": context, "input": input_}, completion, messages)
                problem = None if _record_ok(export_format, record) else record_problem(export_format, record)
            except TemplateError as exc:  # its template is over a limit
                problem = str(exc)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # malformed prior chat turns
                problem = f"cannot be rendered: {type(exc).__name__} {exc}"
            if problem is None:
                line = dumps(record)
                if len(line) > max_record:  # the length of what is written anyway: no cost per record to speak of
                    problem = (
                        f"the record is {len(line):,} bytes, over the limit of {max_record:,} bytes "
                        "(MAX_RENDERED_RECORD_BYTES)"
                    )
            if problem is not None:
                problem_count += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append({"example": pk, "uuid": uuid, "reason": problem})
            elif not problem_count:  # after the first problem, only check: nothing will be published
                content = sha256(line).hexdigest()[:CONTENT_HASH_DIGITS]
                split = "validation" if in_validation else "train"
                writer = writers[split]
                writer.lines.append(line)
                found = codes.strip(",").split(",") if codes else []  # warnings, as the last check stored them
                warned.update(found)
                # An imported example's metadata (annotate.importing) as a fifth column, only when it has some.
                if metadata and metadata != "{}":
                    kept = metadata if metadata.__class__ is str else orjson.dumps(metadata).decode()
                    writer.entries.append(f'[{pk}, "{uuid}", "{content}", {orjson.dumps(found).decode()}, {kept}]')
                elif codes:
                    writer.entries.append(f'[{pk}, "{uuid}", "{content}", {orjson.dumps(found).decode()}]')
                else:
                    writer.entries.append(f'[{pk}, "{uuid}", "{content}", []]')
                if len(writer.lines) >= CHUNK:
                    writer.flush()
                tally[split, kind, version] += 1
                if diff is not None:
                    diff.feed(pk, uuid, content, split)
            done += 1
            if throttle:
                time.sleep(throttle)
            if done % 64 == 0 and time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                if not job_heartbeat(export, progress=done):
                    raise ExportCancelled
                last_beat = time.monotonic()
        if problem_count:
            raise ExportRecordsInvalid(problems, problem_count)
        if diff is not None:
            diff.finish()
        for split, writer in writers.items():
            with _writing(SPLIT_FILES[split]):
                writer.flush()
                writer.wait()
                writer.data.flush()
                os.fsync(writer.data.fileno())
                writer.index.flush()
    if not job_heartbeat(export, progress=done):
        raise ExportCancelled
    counts = {
        "train": writers["train"].records,
        "validation": writers["validation"].records,
        "total": writers["train"].records + writers["validation"].records,
        "by_kind": {split: _sum_by(tally, split) for split in SPLITS},
    }
    by_template: Counter = Counter()
    for (_, _, version), n in tally.items():
        by_template[version] += n
    files = {
        SPLIT_FILES[split]: {
            "size": writer.size,
            "sha256": writer.digest.hexdigest(),
            "records": writer.records,
        }
        for split, writer in writers.items()
    }
    template_rows = [{"version": version, "examples": n} for version, n in sorted(by_template.items())]
    built = _Built(
        counts=counts,
        files=files,
        templates=template_rows,
        changes=diff.counts if diff else {},
        base_version=base.version if base else None,
        warnings=dict(sorted(warned.items())),
    )
    card = dataset_card(
        export=export,
        counts=built.counts,
        files=built.files,
        templates=built.templates,
        changes=built.changes,
        base_version=built.base_version,
        specs={version: spec for version, spec, _ in templates.values()},
    )
    files["README.md"] = _write_small(folder / "README.md", card.encode())
    files["manifest.json"] = _write_manifest(export, folder, built)
    for name in (".train.index", ".validation.index"):
        (folder / name).unlink()
    return built


def _sum_by(tally: Counter, split: str) -> dict[str, int]:
    """Records per kind in one split, by kind name."""
    kinds: Counter = Counter()
    for (side, kind, _), n in tally.items():
        if side == split:
            kinds[kind] += n
    return dict(sorted(kinds.items()))


def _renderer(spec: TemplateSpec, export_format: str, version: int) -> Callable[..., dict]:
    """record_renderer, or for a template over MAX_TEMPLATE_CHARS or MAX_TEMPLATE_PLACEHOLDERS (saved before the limits
    existed) a function that refuses each of its examples: a record is never rendered through it."""
    refusal = spec_limits_error(spec, export_format)
    if refusal is None:
        return record_renderer(spec, export_format)

    def refuse(*args) -> dict:
        raise TemplateError(f"template version {version} cannot be used: {refusal}")

    return refuse


def _foreign_template(template_id: int) -> tuple[int, TemplateSpec]:
    template = PromptTemplate.objects.select_related("task").get(pk=template_id)
    return template.version, TemplateSpec.of(template)


def _write_small(path: Path, data: bytes) -> dict:
    with _writing(path.name), open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return {"size": len(data), "sha256": sha256(data).hexdigest()}


def _manifest_head(export: Export, built: _Built) -> dict:
    task = export.task
    who = export.created_by.get_username() if export.created_by_id else None
    return {
        "version": export.version,
        "task": {"slug": task.slug, "name": task.name, "output_format": task.output_format},
        "format": export.format,
        "templates": built.templates,
        "filters": export.filters,
        "split": {
            "validation_ratio": export.validation_ratio,
            "seed": export.split_seed,
            "rule": 'validation when the first 8 bytes of sha256("<seed>:<uuid>"), as a big-endian integer, '
            "are below validation_ratio * 2**64",
        },
        "counts": built.counts,
        "files": {name: built.files[name] for name in ("train.jsonl", "validation.jsonl", "README.md")},
        "compared_with": built.base_version,
        "changes": built.changes,
        "created_by": who,
        "created_at": (export.created_at or timezone.now()).isoformat(),
        "warnings": built.warnings,
        "content_hash": f"first {CONTENT_HASH_DIGITS} hex digits of sha256 of the record's JSON line, without newline",
        "example_columns": ["id", "uuid", "content_hash", "warnings"],
        "example_optional_columns": ["metadata (kept from the imported file, on examples that have some)"],
    }


def _write_manifest(export: Export, folder: Path, built: _Built) -> dict:
    """manifest.json, with the (possibly millions of) example entries copied from the index files, not memory."""
    head = orjson.dumps(_manifest_head(export, built), option=orjson.OPT_INDENT_2)
    digest = sha256()
    size = 0
    with _writing("manifest.json"), open(folder / "manifest.json", "wb") as out:

        def write(data: bytes) -> None:
            nonlocal size
            out.write(data)
            digest.update(data)
            size += len(data)

        write(head[: head.rindex(b"}")].rstrip() + b',\n  "examples": {\n')
        for position, split in enumerate(SPLITS):
            name = SPLIT_FILES[split]
            separator = b",\n" if position < len(SPLITS) - 1 else b"\n"
            if not built.files[name]["records"]:
                write(b'    "%s": []%s' % (name.encode(), separator))
                continue
            write(b'    "%s": [\n' % name.encode())
            with open(folder / f".{split}.index", "rb") as index:
                while block := index.read(1 << 20):
                    write(block)
            write(b"\n    ]" + separator)
        write(b"  }\n}\n")
        out.flush()
        os.fsync(out.fileno())
    return {"size": size, "sha256": digest.hexdigest()}


def _publish(export: Export, partial: Path, built: _Built) -> None:
    """Store the changes, rename the partial folder into place and mark the row succeeded: one transaction, under
    the row's lock."""
    final = export_dir(export)
    with transaction.atomic():
        # The lock makes a concurrent cancel wait for this step; the attempt number fences off a worker whose lease
        # ran out and whose export another worker took over.
        still_ours = Export.objects.select_for_update().filter(
            pk=export.pk, state=JobState.RUNNING, attempts=export.attempts
        )
        if not still_ours.exists():
            raise ExportCancelled
        _insert_changes(export, partial / ".changes")
        (partial / ".changes").unlink()
        fsync_dir(partial)
        if final.exists():  # published by an attempt that died before its row was marked: never seen by a reader
            stale = final.with_name(f".partial-v{export.version}-stale-{secrets.token_hex(4)}")
            final.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        partial.rename(final)
        fsync_dir(final.parent)
        marked = job_finish(
            export,
            counts=built.counts,
            files=built.files,
            changes=built.changes,
            base_version=built.base_version,
            progress=built.counts["total"],
            total=built.counts["total"],
            error="",
        )
        if not marked:  # cannot happen under the lock; never leave files of an unfinished row in place
            shutil.rmtree(final, ignore_errors=True)
            raise ExportCancelled


# --- comparing with the previous version ---------------------------------------------------------------------------


def _base_export(export: Export) -> Export | None:
    """The latest succeeded version before this one of the same format and filters, whose manifest is still on disk.
    (Against a version in another format every record would read "changed", which says nothing.)"""
    earlier = (
        Export.objects.available()
        .filter(task=export.task, version__lt=export.version, format=export.format)
        .select_related("task")
    )
    for base in earlier.order_by("-version")[:50]:
        if (base.filters or {}) == (export.filters or {}):
            return base if (export_dir(base) / "manifest.json").exists() else None
    return None


_ENTRY_FILE = re.compile(rb'^\s*"(train|validation)\.jsonl": \[(\])?,?\s*$')


def _manifest_entries(path: Path) -> Iterator[tuple[int, str, str, str]]:
    """(id, uuid, content hash, split) of every example of a manifest, in id order, streamed from the file."""

    def entries(split: str, lines: Iterator[bytes]) -> Iterator[tuple[int, str, str, str]]:
        for line in lines:
            stripped = line.strip()
            if not stripped.startswith(b"["):
                return
            pk, uuid, content, *_ = orjson.loads(stripped.rstrip(b","))  # versions before warnings had 3 columns
            yield pk, uuid, content, split

    def read(split: str) -> Iterator[tuple[int, str, str, str]]:
        with open(path, "rb") as handle:
            in_examples = False
            for line in handle:
                if line.startswith(b'  "examples": {'):
                    in_examples = True
                    continue
                match = _ENTRY_FILE.match(line) if in_examples else None
                if match and match.group(1).decode() == split:
                    if match.group(2) is None:  # "[]" is an empty list on one line
                        yield from entries(split, handle)
                    return

    return heapq.merge(read("train"), read("validation"))


class _Diff:
    """Compare the records being written (in id order) with the previous manifest's entries (in id order), streaming:
    a merge join on the example id, so memory stays flat however many examples there are. Each change goes to `out`
    as a JSON line `[change, id, uuid, split]`; they reach the database when the export is published."""

    def __init__(self, previous: Iterator[tuple[int, str, str, str]], out: BinaryIO) -> None:
        self.previous = previous
        self.pending = next(previous, None)
        self.out = out
        self.counts = dict.fromkeys(ExportChange.Change.values, 0) | {"unchanged": 0}

    def _write(self, change: str, pk: int, uuid: str, split: str) -> None:
        self.counts[change] += 1
        self.out.write(b'["%s", %d, "%s", "%s"]\n' % (change.encode(), pk, uuid.encode(), split.encode()))

    def feed(self, pk: int, uuid: str, content: str, split: str) -> None:
        while self.pending is not None and self.pending[0] < pk:
            self._write("removed", self.pending[0], self.pending[1], self.pending[3])
            self.pending = next(self.previous, None)
        if self.pending is not None and self.pending[0] == pk:
            _, _, old_content, old_split = self.pending
            self.pending = next(self.previous, None)
            if old_content != content:
                self._write("changed", pk, uuid, split)
            elif old_split != split:
                self._write("moved", pk, uuid, split)
            else:
                self.counts["unchanged"] += 1
        else:
            self._write("added", pk, uuid, split)

    def finish(self) -> None:
        while self.pending is not None:
            self._write("removed", self.pending[0], self.pending[1], self.pending[3])
            self.pending = next(self.previous, None)


def _insert_changes(export: Export, path: Path) -> None:
    """The changes a build wrote to `path`, into the database in batches."""
    batch: list[ExportChange] = []
    with open(path, "rb") as lines:
        for line in lines:
            change, pk, uuid, split = orjson.loads(line)
            batch.append(ExportChange(export=export, change=change, example_id=pk, example_uuid=uuid, split=split))
            if len(batch) == CHUNK:
                ExportChange.objects.bulk_create(batch)
                batch.clear()
    ExportChange.objects.bulk_create(batch)


# --- reading, for views and the command ------------------------------------------------------------------------------


def export_summary(*, export: Export) -> dict:
    """The command's --json object: version, state, paths of the four files, their sha256, counts."""
    folder = export_dir(export)
    files = export.files or {}
    return {
        "version": export.version,
        "state": export.state,
        "files": {key: str(folder / name) for key, name in FILE_KEYS.items()},
        "sha256": {key: files[name]["sha256"] for key, name in FILE_KEYS.items() if name in files},
        "counts": export.counts or {},
    }


# --- API tokens -------------------------------------------------------------------------------------------------


@transaction.atomic
def token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the token itself, which is shown once and never stored (the audit
    event holds its prefix only). Raise ValidationError for an empty or too long name."""
    name = (name or "").strip()
    token = "".join((TOKEN_PREFIX, secrets.token_urlsafe(32)))
    row = ApiToken(user=user, name=name, prefix=token[: len(TOKEN_PREFIX) + 6], digest=token_digest(token))
    row.full_clean()
    row.save()
    audit_record(
        task=None, actor=user, action=Action.TOKEN_CREATED, target=row.prefix, detail={"token": row.pk, "name": name}
    )
    return row, token


@transaction.atomic
def token_revoke(*, token: ApiToken, actor=None) -> bool:
    """Revoke the token; a revoked token never works again (ApiToken refuses to clear revoked_at). `actor` revoked it
    (None: a command). Idempotent: False, and no second audit event, when it was revoked already. Raises nothing."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        audit_record(
            task=None,
            actor=actor,
            action=Action.TOKEN_REVOKED,
            target=token.prefix,
            detail={"token": token.pk, "name": token.name, "owner": token.user.username},
        )
    return bool(revoked)


def token_user(*, authorization: str):
    """The active user behind an `Authorization: Bearer <token>` header value, or None for a missing, malformed,
    unknown or revoked token."""
    scheme, _, raw = (authorization or "").partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.active().select_related("user").filter(digest=token_digest(raw)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:  # one write a minute at most
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def token_tasks(*, user):
    """The tasks a token of `user` reaches: those they lead or review (staff: all), by name."""
    if user.is_staff:
        return Task.objects.all()
    task_ids = Membership.objects.filter(user=user, role__in=[Role.LEAD, Role.REVIEWER]).values("task_id")
    return Task.objects.filter(pk__in=task_ids)
