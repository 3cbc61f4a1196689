"""Reading the approved examples of an export: one snapshot, streamed in id order, the next batch fetched while this
one is processed."""

import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, nullcontext, suppress
from itertools import islice
from queue import Empty, Queue

import psycopg
from django.db import connection

from annotate.models import Example, Kind, Task

from .formats import PAIR_FORMATS
from .models import Export
from .splits import side_sql, splitter

CHUNK = 2_000  # rows per fetch from the server-side cursor


def approved(task: Task, kinds: list[str]):
    """The task's approved examples of `kinds` (all kinds: no filter on kind)."""
    examples = Example.objects.filter(task=task, status=Example.Status.APPROVED)
    if len(kinds) != len(Kind.values):
        examples = examples.filter(kind__in=kinds)
    return examples


@contextmanager
def approved_rows(export: Export) -> Iterator[tuple[int, Iterator[list[tuple]]]]:
    """How many approved examples there are, and their rows in id order, in batches, streamed through a server-side
    cursor: (id, uuid as text, template id, instruction, context, input, completion, kind, prior messages, the
    stored warning codes (",leak,short,"), the metadata, the stored prompt hash, the reasoning, the stored prompt
    signature (bytes, or None), and its side of the split (0 train, 1 validation, 2 test: splits.SIDES).

    On PostgreSQL through snapshot_rows: the count and the rows from one snapshot, on a connection of the worker's
    own, so that the progress the job writes on the default connection is seen at once."""
    if export.format in PAIR_FORMATS:  # preference pairs, in the same layout (preferences.exporting)
        from preferences.exporting import pair_rows

        with pair_rows(export) as found:
            yield found
        return
    columns = [
        "id", "uuid", "template_id", "instruction", "context", "input", "completion", "kind", "messages",
        "warning_codes", "metadata", "prompt_hash", "reasoning", "prompt_signature",
    ]  # fmt: skip
    examples = approved(export.task, export.filters.get("kinds") or list(Kind.values)).order_by("id")
    if connection.vendor != "postgresql":
        side = splitter(export.split_seed, export.validation_ratio, export.test_ratio)
        rows = examples.values_list(*columns).iterator(chunk_size=CHUNK)
        batches = iter(
            lambda: [(row[0], uuid, *row[2:], side(uuid)) for row in islice(rows, CHUNK) for uuid in (str(row[1]),)],
            [],
        )
        yield examples.count(), batches
        return
    side = side_sql(export.split_seed, export.validation_ratio, export.test_ratio)
    sql, params = examples.annotate(split_side=side).values_list(*columns, "split_side").query.sql_with_params()
    count_sql, count_params = examples.order_by().values("id").query.sql_with_params()
    with snapshot_rows(sql, params, count_sql, count_params, name=f"export_{export.pk}") as found:
        yield found


@contextmanager
def snapshot_rows(
    sql: str, params, count_sql: str, count_params, *, name: str, convert: Callable[[tuple], tuple] | None = None
) -> Iterator[tuple[int, Iterator[list[tuple]]]]:
    """On PostgreSQL: how many rows `count_sql` counts, and the rows of `sql` in batches (each row through `convert`,
    if given), both from one snapshot; examples (approved_rows) and preference pairs (preferences.exporting) alike.

    A worker reads on a connection of its own, in one REPEATABLE READ, read-only transaction, with a named
    (server-side) cursor that streams (Django's `.iterator()` outside a transaction declares its cursor WITH HOLD,
    which copies the whole result on the server before the first row). UUIDs and JSON arrive as text, which is what
    the export writes: decoding them into objects would be wasted work (on 100k rows, measured: 139k rows/s against
    51k for values_list().iterator()). A thread fetches the next batch while this one is processed (read_ahead).
    Inside a transaction (the tests) the rows are read in it, on this thread and connection, since another connection
    would not see them."""
    from psycopg.types.string import TextLoader

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
            total = reader.execute(f"SELECT count(*) FROM ({count_sql}) AS counted", count_params).fetchone()[0]
            with reader.cursor(name=name) as cursor:
                cursor.adapters.register_loader("uuid", TextLoader)
                cursor.adapters.register_loader("jsonb", TextLoader)
                cursor.execute(sql, params)
                if convert is None:
                    fetch = lambda: cursor.fetchmany(CHUNK)  # noqa: E731
                else:
                    fetch = lambda: [convert(row) for row in cursor.fetchmany(CHUNK)]  # noqa: E731
                if not own:  # the caller's connection: stay on this thread
                    yield total, iter(fetch, [])
                    return
                batches = read_ahead(fetch)
                try:
                    yield total, batches
                finally:
                    batches.close()  # stop the fetching thread before the cursor closes
    finally:
        if own:
            reader.close()


def read_ahead(fetch: Callable[[], list]) -> Generator[list, None, None]:
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
