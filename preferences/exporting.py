"""The pairs an export of a preference format writes, and pairs made from reviewers' edits.

An export of `trl-preference` or `openai-preference` reads the task's reviewed pairs (imported as approved, or
reviewed since; decided comparisons) in id order, and, when its lead turns it on, the pairs of examples approved
after a reviewer's edit (the submitted text rejected, the approved text chosen) whose edit changed at least
`min_change` of the submitted text's word pairs, so that typo fixes stay out. Rows come in the layout
exports.reading.approved_rows gives examples, so the export's one loop renders, checks, splits (by the pair's
UUID, the same rule), compares and hashes them; the kind column carries the pair's source, and the manifest's
metadata column says where each pair came from (source, and the example of an edit pair).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice

import orjson
from django.db import connection, transaction
from django.db.models import Case, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Cast, Concat

from annotate.models import Example, Revision, Task
from exports.reading import snapshot_rows
from exports.splits import side_sql, splitter
from models_loop.change import similarity

from .models import PreferencePair, Source

CHUNK = 2_000
DEFAULT_MIN_CHANGE = 0.1  # an edit must change at least a tenth of the submitted text's word pairs
# The texts that went to review before a reviewer's edit, and the edit itself.
_REVIEW_REASONS = (Revision.Reason.SUBMIT, Revision.Reason.IMPORT, Revision.Reason.REVIEWER_EDIT)


def change_of(submitted: str, approved: str) -> float:
    """The share of the submitted text's word pairs an edit changed (1 − the Dice overlap of their word pairs), 0 to
    1, in time linear in the texts (models_loop.change.similarity; a completion is at most MAX_FIELD_CHARS)."""
    return round(1.0 - similarity(submitted, approved), 4)


def exported_pairs(task: Task, filters: dict) -> QuerySet:
    """The pairs an export with `filters` writes: reviewed pairs, edit pairs only when turned on, of approved
    examples, over the minimum change."""
    pairs = PreferencePair.objects.filter(task=task, reviewed=True)
    if not filters.get("pairs_from_edits"):
        return pairs.exclude(source=Source.EDIT)
    edits = Q(
        source=Source.EDIT,
        example__status=Example.Status.APPROVED,
        change__gte=float(filters.get("min_change", DEFAULT_MIN_CHANGE)),
    )
    return pairs.filter(~Q(source=Source.EDIT) | edits)


def edit_pairs_sync(*, task: Task) -> int:
    """Make or update the edit pair of every approved example of `task` that a reviewer edited: rejected, the last text
    that went to review before the latest reviewer edit; chosen, the approved text. Streams the revisions in example
    order (one query), writes in batches. Return the pairs made or changed."""
    revisions = (
        Revision.objects.filter(example__task=task, example__status=Example.Status.APPROVED, reason__in=_REVIEW_REASONS)
        .order_by("example_id", "id")
        .values_list("example_id", "reason", "text", "author_id")
        .iterator(chunk_size=CHUNK)
    )
    existing = dict(
        PreferencePair.objects.filter(task=task, source=Source.EDIT).values_list("example_id", "id").iterator()
    )
    changed = 0

    def groups() -> Iterator[tuple[int, list]]:
        current, rows = None, []
        for row in revisions:
            if row[0] != current:
                if rows:
                    yield current, rows
                current, rows = row[0], []
            rows.append(row)
        if rows:
            yield current, rows

    def edits() -> Iterator[tuple[int, str, int | None]]:
        """(example id, the text that went to review, the editing reviewer) of each edited example."""
        for example_id, rows in groups():
            last_edit = max((i for i, r in enumerate(rows) if r[1] == Revision.Reason.REVIEWER_EDIT), default=None)
            if last_edit is None:
                continue
            before = [r for r in rows[:last_edit] if r[1] != Revision.Reason.REVIEWER_EDIT]
            if before:
                yield example_id, before[-1][2], rows[last_edit][3]

    found = edits()
    while batch := list(islice(found, CHUNK)):
        examples = Example.objects.in_bulk([example_id for example_id, _, _ in batch])
        creates, updates = [], []
        for example_id, submitted, reviewer_id in batch:
            example = examples.get(example_id)
            if example is None or submitted == example.completion or not submitted.strip():
                continue
            pair = PreferencePair(
                task=task,
                template_id=example.template_id,
                instruction=example.instruction,
                context=example.context,
                input=example.input,
                messages=example.messages,
                prompt_hash=example.prompt_hash,
                chosen=example.completion,
                rejected=submitted,
                source=Source.EDIT,
                reviewed=True,
                reviewed_by_id=reviewer_id,
                reviewed_at=example.updated_at,
                example=example,
                change=change_of(submitted, example.completion),
            )
            if example_id in existing:
                pair.pk = existing[example_id]
                updates.append(pair)
            else:
                creates.append(pair)
        with transaction.atomic():
            PreferencePair.objects.bulk_create(creates)
            fields = ["template_id", "instruction", "context", "input", "messages", "prompt_hash", "chosen", "rejected",
                      "change"]  # fmt: skip
            current = {
                pk: (chosen, rejected)
                for pk, chosen, rejected in PreferencePair.objects.filter(pk__in=[p.pk for p in updates]).values_list(
                    "pk", "chosen", "rejected"
                )
            }
            updates = [p for p in updates if current.get(p.pk) != (p.chosen, p.rejected)]
            PreferencePair.objects.bulk_update(updates, fields)
        changed += len(creates) + len(updates)
    return changed


COLUMNS = ("id", "uuid", "template_id", "instruction", "context", "input", "chosen", "rejected", "source", "messages",
           "prompt_hash", "origin", "split_side")  # fmt: skip


def _origin() -> Case:
    """The manifest's metadata column of a pair, as JSON text made by the database (the bytes orjson.dumps gives
    {"source": …, "example": <uuid>}): the source is one of Source's values and the example a UUID, so nothing needs
    escaping, and the worker neither builds nor encodes a dict per pair."""
    return Case(
        When(example__isnull=True, then=Concat(Value('{"source":"'), "source", Value('"}'), output_field=TextField())),
        default=Concat(
            Value('{"source":"'),
            "source",
            Value('","example":"'),
            Cast("example__uuid", TextField()),
            Value('"}'),
            output_field=TextField(),
        ),
        output_field=TextField(),
    )


def _layout(row: tuple) -> tuple:
    """A row of COLUMNS -> approved_rows' layout; the only work left per pair in Python (one tuple)."""
    return (row[0], row[1], row[2], row[3], row[4], row[5], (row[6], row[7]), row[8], row[9], "", row[11], row[10],
            None, None, row[12])  # fmt: skip  # "": no warning codes; None: no reasoning, no stored prompt signature


@contextmanager
def pair_rows(export) -> Iterator[tuple[int, Iterator[list[tuple]]]]:
    """How many pairs the export writes, and their rows in id order, in batches, in approved_rows' layout: (id, uuid,
    template id, instruction, context, input, (chosen, rejected), source, prior turns, warning codes, metadata JSON,
    prompt hash, reasoning (None), prompt signature (None: the check signs it), side of the split). On PostgreSQL the
    side of the split and the metadata are computed by the database, and the rows read as approved_rows reads
    examples (exports.reading.snapshot_rows)."""
    filters = export.filters or {}
    if filters.get("pairs_from_edits") and edit_pairs_sync(task=export.task):
        from .checks import pair_checks_run

        pair_checks_run(task=export.task)  # on the worker already: the new pairs' checks before the list shows them
    pairs = exported_pairs(export.task, filters).order_by("id")
    if connection.vendor != "postgresql":
        side = splitter(export.split_seed, export.validation_ratio, export.test_ratio)
        # The metadata made here, not by the database: SQLite keeps a UUID as 32 hex digits, PostgreSQL's text of it
        # (and the manifest) has the dashes.
        rows = pairs.values_list(*COLUMNS[:-2], "example__uuid").iterator(chunk_size=CHUNK)

        def origin(source: str, example) -> str:
            return orjson.dumps({"source": source, "example": str(example)} if example else {"source": source}).decode()

        yield (
            pairs.count(),
            iter(
                lambda: [
                    _layout((*row[:1], str(row[1]), *row[2:-1], origin(row[8], row[-1]), side(str(row[1]))))
                    for row in islice(rows, CHUNK)
                ],
                [],
            ),
        )
        return

    side = side_sql(export.split_seed, export.validation_ratio, export.test_ratio, table=PreferencePair._meta.db_table)
    sql, params = pairs.annotate(origin=_origin(), split_side=side).values_list(*COLUMNS).query.sql_with_params()
    count_sql, count_params = pairs.order_by().values("id").query.sql_with_params()
    with snapshot_rows(sql, params, count_sql, count_params, name=f"pairs_{export.pk}", convert=_layout) as found:
        yield found
