"""The import itself: check and insert in one transaction, COPY on PostgreSQL (a pipeline), bulk_create
elsewhere."""

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .. import quality
from ..audit import audit_record
from ..models import AuditEvent, Example, PromptTemplate, Revision, Task, Transition
from ..quality import prompt_signature
from ..quality.text import fold, prompt_key
from ..rendering import required_fields
from ..scans import findings_of, warning_fields
from ..tools import ToolSet
from . import limits
from .checking import Progress, Reporter, _check_file, _check_status, _Tally, import_check
from .common import IMPORTED, NEW, REASON_IMPORT, ImportFailed, _forget_queries, _shown, locked_task, max_import_rows
from .mapping import Mapping
from .reading import _Fatal, _Reader, _reader
from .records import Mapper, Record, _records


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


def _preference_file(path: Path, file_format: str) -> bool:
    """Whether the file holds preference pairs or candidates to compare (the preferences app imports those)."""
    from preferences.importing import is_preference_file  # imported late: that app builds on this package

    return is_preference_file(path, file_format)


def examples_import(
    *,
    task: Task,
    path: Path,
    file_format: str,
    mapping: Mapping | dict[str, str] | None = None,
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
    if _preference_file(path, file_format):
        from preferences.importing import pairs_import

        return pairs_import(task=task, path=path, file_format=file_format, mapping=mapping, status=status,
                            actor=actor, reporter=reporter, filename=filename, job_id=job_id)  # fmt: skip
    reporter = reporter or Reporter()
    reader = _reader(path, file_format)
    mapper = Mapper(mapping, tools=ToolSet.of(task.current_template))
    tally = _Tally(status)
    last = -limits.PROGRESS_SECONDS  # the first batch is reported at once: the bar moves as soon as rows go in

    def report(inserted: int, position: int) -> None:
        nonlocal last
        if time.monotonic() - last >= limits.PROGRESS_SECONDS:
            reporter.progress(Progress("insert", inserted, position, size))
            last = time.monotonic()

    try:
        with transaction.atomic():
            task, template = locked_task(task)
            mapper.tools = ToolSet.of(template)  # as locked: the tool set the records were checked against
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


def _batches(records: Iterator[Record]) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= limits.BATCH_SIZE:
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
        template = PromptTemplate.objects.get(pk=template_id)
        self.rules = quality.TaskRules.of(task, template=template)  # the version the rows are written with
        self.required = required_fields(template.prompt_format)

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
        signatures = prompt_signature.stored([((r.instruction, r.context, r.input), r.messages) for r in batch])
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
                    reasoning=r.reasoning,
                    kind=r.kind,
                    source=IMPORTED,
                    metadata=orjson.loads(r.metadata) if r.metadata else {},
                    external_id=r.external_id,
                    prompt_hash=key,
                    prompt_signature=signature,
                    status=self.status,
                    **self.entered_review,
                    **warned,
                )
                for r, (key, warned), signature in zip(batch, derived, signatures, strict=True)
            ]
        )
        Revision.objects.bulk_create(
            Revision(
                example=e,
                text=e.completion,
                reasoning=e.reasoning,
                kind=e.kind,
                reason=REASON_IMPORT,
                example_version=1,
            )
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
               "kind", "source", "external_id", "prompt_hash", "prompt_signature", "warnings", "warning_codes", "risk",
               "status", "version", "author_id", "claimed_by_id", "claim_expires_at", "created_at", "updated_at",
               "metadata", "reasoning")  # fmt: skip
    REVISION = ("example_id", "text", "kind", "author_id", "reason", "example_version", "created_at", "reasoning")
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
        # The metadata and the reasoning, last of the named columns, are "{}" and "" in the common tail; a record that
        # has either writes the tail in two parts around them (so that a record without costs nothing more).
        self.example_mid = f"\t{self.status}\t1\t\\N\t\\N\t\\N\t{now}\t{now}\t"
        self.example_rest = f"{self.extra[Example]}\n"
        self.example_tail = f"{self.example_mid}{{}}\t{self.example_rest}"
        self.revision_head = f"\t\\N\t{REASON_IMPORT}\t1\t{now}\t"
        self.revision_rest = f"{self.extra[Revision]}\n"
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
        # A third thread signs each batch's prompts while the formatting thread checks them: the signing is numpy,
        # which runs without the GIL (about a fifth of the formatting thread's work when done there).
        with _short_switch_interval(self.SWITCH_INTERVAL), ThreadPoolExecutor(1, "import-sign") as self.signer:
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
        # The prompts' signatures, a batch at a time (numpy), as bytea in COPY text: \\x and hex, or empty.
        prompts = [((r.instruction, r.context, r.input), r.messages) for r in batch]
        signing = self.signer.submit(prompt_signature.stored, prompts)
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
        derived = [self.derived(r) for r in batch]  # meanwhile, the signatures
        signatures = signing.result()
        for pk, uid, r, (key, found), signature in zip(
            ids, _uuid4s(len(batch)), batch, derived, signatures, strict=True
        ):
            completion = _escaped(r.completion)
            messages = _escaped(orjson.dumps(r.messages).decode()) if r.messages else "[]"
            warned = (
                f"{_escaped(orjson.dumps(found['warnings']).decode())}\t{found['warning_codes']}\t{found['risk']}"
                if found["risk"]
                else "[]\t\t0"
            )
            reasoning = _escaped(r.reasoning)
            tail = (
                f"{self.example_mid}{_escaped(r.metadata) if r.metadata else '{}'}\t{reasoning}{self.example_rest}"
                if r.metadata or reasoning
                else self.example_tail
            )
            examples.append(
                f"{pk}{head}{uid}\t{_escaped(r.instruction)}\t{_escaped(r.context)}\t"
                f"{_escaped(r.input)}\t{messages}\t{completion}\t{r.kind}\t{IMPORTED}\t"
                f"{_escaped(r.external_id)}\t{key}\t\\\\x{signature.hex()}\t{warned}{tail}"
            )
            if completion:
                revisions.append(f"{pk}\t{completion}\t{r.kind}{self.revision_head}{reasoning}{self.revision_rest}")
            if moved:
                transitions.append(f"{pk}{self.transition_tail}")
        return "".join(examples), "".join(revisions), "".join(transitions)
