"""Exports: numbered, immutable versions of a task's approved examples, written by a Celery job.

`export_request` queues the next version; the worker claims it and calls `export_build`, which streams the approved
examples in id order, renders each through its own template version, checks it against its format's rules, splits
it deterministically, and writes train.jsonl, validation.jsonl, manifest.json and README.md into a hidden partial
folder. The folder is fsynced and renamed to EXPORT_ROOT/<slug>/v<N> in the same transaction that marks the row
succeeded, so a reader never sees half an export, and a worker killed mid-way leaves only a partial folder that the
next attempt removes (exports.publishing: both ways of publishing, local and object storage).
"""

import logging
import math
import os
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from hashlib import sha256
from itertools import chain
from pathlib import Path

import orjson
import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone

from annotate.audit import Action, audit_record
from annotate.models import Example, Kind, PromptTemplate, Task
from annotate.rendering import TemplateError, TemplateSpec, limit, record_renderer, spec_limits_error
from pairsmith import filestore
from pairsmith.jobs import JobState, job_cancel, job_fail, job_heartbeat, job_send

from . import retention
from .card import dataset_card
from .changes import Diff, base_export, manifest_entries
from .contamination import Contamination, contamination_summary
from .formats import EXTRA_FILE_NAMES, FORMATS, PAIR_FORMATS
from .models import FILE_KEYS, Export, TaskTokenizer
from .preflight import DEFAULT_MAX_LENGTH, MAX_MAX_LENGTH, Preflight, PreflightFailed
from .publishing import Built, ExportCancelled, forget_remote, publish, publish_remote, remove_partials, send
from .reading import approved, approved_rows
from .reading import read_ahead as _read_ahead  # noqa: F401 (tests reach it here)
from .splits import RULE, SIDES, SPLIT_FILES, SPLITS, split_of  # noqa: F401 (split_of: read here by tests)
from .storage import export_dir, export_key, export_location, remote_partials_remove
from .storage import export_file_path as export_file_path  # views, commands and tests read both from here
from .tokens import TOKEN_PREFIX, token_create, token_revoke, token_tasks, token_user  # noqa: F401 (views read here)
from .writing import DISK_FULL, ExportDiskFull, SplitWriter, write_small, writing

_manifest_entries = manifest_entries  # tests read the manifest through this name

logger = logging.getLogger(__name__)

CHUNK = 2_000  # lines per write
HEARTBEAT_SECONDS = 1.0  # progress on the row (the page polls every 2 s) and a lease far from running out
MAX_PROBLEMS = 100  # problems kept on the row; the error counts them all
CONTENT_HASH_DIGITS = 16
# Test-only: seconds to sleep per record, so that tests can watch, cancel or kill an export in flight.
THROTTLE_ENV = "PAIRSMITH_EXPORT_THROTTLE"

# The fields each format's record holds, exactly; order as written.
RECORD_KEYS = {name: module.RECORD_KEYS for name, module in FORMATS.items()}


class ExportContaminated(Exception):
    """The train split repeats held-out prompts and the task says that blocks an export; `report` names them."""

    def __init__(self, report: dict) -> None:
        self.report = report
        lines = [
            f"train example {p['train']['id']} ({p['train']['uuid']}) repeats {p['split']} example "
            f"{p['held_out']['id']} ({p['held_out']['uuid']}): {p['kind']}, similarity {p['similarity']}"
            for p in report["pairs"]
        ]
        found = report["exact"] + report["near"]
        more = f"\n… and {found - len(lines)} more" if found > len(lines) else ""
        super().__init__(
            f"Contamination blocks this export (task setting): {contamination_summary(report)}; nothing was "
            "written. Remove or rewrite these examples, or turn the setting off:\n" + "\n".join(lines) + more
        )


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


# --- the record checks ----------------------------------------------------------------------------


def record_problem(export_format: str, record) -> str | None:
    """Why `record` breaks the rules of `export_format` (its module in exports/formats), or None when it is valid."""
    return FORMATS[export_format].problem(record)


# --- requesting, cancelling ---------------------------------------------------------------------------------------


@transaction.atomic
def export_request(
    *,
    task: Task,
    export_format: str,
    validation_ratio: float | None = None,
    test_ratio: float | None = None,
    kinds: list[str] | None = None,
    max_length: int | None = None,
    user=None,
    pairs_from_edits: bool = False,
    min_change: float | None = None,
) -> Export:
    """Queue the next export version of `task` and wake a worker after commit (ratios default to the task's). Raise
    ValidationError for an unknown format or kind, a ratio outside [0, 1), validation and test ratios that leave
    nothing to train on, or when nothing approved matches. Preference formats export reviewed pairs, and with
    `pairs_from_edits` the pairs of reviewers' edits that changed at least `min_change` of the text."""
    if export_format not in FORMATS:
        raise ValidationError({"export_format": f"Unknown format {export_format!r}; use one of {', '.join(FORMATS)}."})
    if task.output_format == "tools" and not getattr(FORMATS[export_format], "TOOLS", False):
        able = ", ".join(name for name, module in FORMATS.items() if getattr(module, "TOOLS", False))
        raise ValidationError(
            {"export_format": f"{export_format} cannot hold tool calls; a tool-calling task exports to {able}."}
        )
    ratio = task.validation_ratio if validation_ratio is None else validation_ratio
    if not isinstance(ratio, int | float) or not math.isfinite(ratio) or not 0 <= ratio < 1:
        raise ValidationError(
            {"validation_ratio": f"The validation ratio must be at least 0 and below 1, not {ratio!r}."}
        )
    test = task.test_ratio if test_ratio is None else test_ratio
    if not isinstance(test, int | float) or not math.isfinite(test) or not 0 <= test < 1:
        raise ValidationError({"test_ratio": f"The test ratio must be at least 0 and below 1, not {test!r}."})
    if not test < 1 - ratio:  # the same float arithmetic as the table's constraint
        raise ValidationError(
            {
                "test_ratio": f"The validation ratio ({ratio}) and the test ratio ({test}) add up to 1 or more: "
                "nothing would be left to train on."
            }
        )
    max_length = DEFAULT_MAX_LENGTH if max_length is None else max_length
    if not isinstance(max_length, int) or not 1 <= max_length <= MAX_MAX_LENGTH:
        raise ValidationError(
            {"max_length": f"The maximum length must be a whole number from 1 to {MAX_MAX_LENGTH:,} tokens."}
        )
    chosen = sorted(set(kinds)) if kinds else sorted(Kind.values)
    unknown = [kind for kind in chosen if kind not in Kind.values]
    if unknown:
        raise ValidationError({"kinds": f"Unknown kind {unknown[0]!r}; use {', '.join(Kind.values)}."})
    filters: dict = {"status": Example.Status.APPROVED, "kinds": chosen}
    if export_format in PAIR_FORMATS:
        filters = _pair_filters(task, pairs_from_edits, min_change)
    elif not approved(task, chosen).exists():
        what = "no approved examples yet" if len(chosen) == len(Kind.values) else "no approved examples of those kinds"
        raise ValidationError(f"Nothing to export: {what}.")
    Task.objects.select_for_update().get(pk=task.pk)  # serialise version numbering per task
    version = (Export.objects.filter(task=task).aggregate(v=Max("version"))["v"] or 0) + 1
    export = Export(
        task=task,
        version=version,
        format=export_format,
        filters=filters,
        validation_ratio=float(ratio),
        test_ratio=float(test),
        split_seed=task.split_seed,
        max_length=max_length,
        created_by=user,
    )
    export.full_clean()
    export.save()
    audit_record(
        task=task,
        actor=user,
        action=Action.EXPORT_REQUESTED,
        target=f"v{version}",
        detail={"format": export_format, "validation_ratio": float(ratio), "test_ratio": float(test), "kinds": chosen}
        | ({"filters": filters} if export_format in PAIR_FORMATS else {}),
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


def _pair_filters(task: Task, pairs_from_edits: bool, min_change: float | None) -> dict:
    """The filters of a preference export. Raise ValidationError for a bad minimum change or nothing to export."""
    from preferences.exporting import DEFAULT_MIN_CHANGE, exported_pairs

    change = DEFAULT_MIN_CHANGE if min_change is None else min_change
    if not isinstance(change, int | float) or not math.isfinite(change) or not 0 <= change <= 1:
        raise ValidationError({"min_change": f"The minimum change must be between 0 and 1, not {change!r}."})
    filters = {"status": "reviewed", "pairs_from_edits": bool(pairs_from_edits), "min_change": float(change)}
    edited = (
        pairs_from_edits
        and Example.objects.filter(
            task=task, status=Example.Status.APPROVED, revisions__reason="reviewer_edit"
        ).exists()
    )
    if not edited and not exported_pairs(task, filters).exists():
        what = "no reviewed preference pairs" + (" and no approved reviewer edits" if pairs_from_edits else "")
        raise ValidationError(f"Nothing to export: {what} yet.")
    return filters


# --- building -------------------------------------------------------------------------------------------------------


def export_build(*, export: Export) -> Export:
    """Write the files of a claimed (running) export, then publish them and mark the row succeeded in one step.
    Bad records mark it failed with their example ids and reasons; cancellation stops it and leaves nothing.
    Raise DatabaseError (or psycopg.OperationalError, from the reading connection) on database trouble: the row
    stays running and the sweep retries it once its lease ends. Once published, the task's older versions beyond
    the number it keeps are pruned."""
    remote = filestore.object_storage()
    name = f".partial-v{export.version}-{secrets.token_hex(4)}"
    # With object storage the files are written in this node's scratch folder, then sent to temporary keys.
    task_dir = filestore.scratch_dir("exports") if remote else Path(settings.EXPORT_ROOT) / export.task.slug
    published = False
    partial = task_dir / (f"{export.task.slug}{name}" if remote else name)
    try:
        with writing(f"the folder {partial.name}"):  # a disk out of space or inodes fails here too, not forever
            task_dir.mkdir(parents=True, exist_ok=True)
            if remote:
                remote_partials_remove(export)
            else:
                remove_partials(task_dir, export)
            partial.mkdir()
        built = _write_files(export, partial)
        if remote:
            temporary = f"{export.task.slug}/{name}"
            try:
                send(export, partial, temporary, built)
                publish_remote(export, partial, temporary, built)
            finally:
                forget_remote(temporary)
        else:
            publish(export, partial, built)
        published = True
    except ExportCancelled:
        logger.info("Export %s stopped: cancelled or taken over.", export.pk)
    except ExportRecordsInvalid as exc:
        job_fail(export, str(exc))
        Export.objects.filter(pk=export.pk, state=JobState.FAILED).update(problems=exc.problems)
    except PreflightFailed as exc:
        job_fail(export, str(exc))
    except ExportContaminated as exc:
        job_fail(export, str(exc))
        Export.objects.filter(pk=export.pk, state=JobState.FAILED).update(contamination=exc.report)
    except (ExportDiskFull, filestore.StoreUnavailable) as exc:
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


def _throttle() -> float:
    try:
        return max(0.0, float(os.environ.get(THROTTLE_ENV) or 0))
    except ValueError:
        return 0.0


def _write_files(export: Export, folder: Path) -> Built:
    """Write the files of the version into `folder`. Raise ExportCancelled, ExportRecordsInvalid or
    ExportContaminated."""
    task = export.task
    export_format = export.format
    # Every template version of the task, once: records join their template through this dict, not per-row queries.
    templates = {}
    for template in task.templates.all():
        template.task = task  # effective_system_message reads the task's system prompt without a query
        spec = TemplateSpec.of(template)
        templates[template.pk] = (template.version, spec, *_renderers(spec, export_format, template.version))
    max_record = limit("MAX_RENDERED_RECORD_BYTES")
    base = base_export(export)
    throttle = _throttle()
    problems: list[dict] = []
    problem_count = 0
    tally: Counter = Counter()  # (split, kind, template version) -> records
    warned: Counter = Counter()  # warning code -> exported examples that carry it
    dumps = orjson.dumps
    done = 0
    last_beat = time.monotonic()
    splits = _splits_of(export)
    held_out = export.validation_ratio > 0 or export.test_ratio > 0
    contamination = Contamination(folder / ".signatures") if held_out else None
    tokenizer = TaskTokenizer.objects.filter(task=task).first()
    preflight = Preflight(tokenizer, max_length=export.max_length) if tokenizer else None
    with ExitStack() as stack:
        total, batches = stack.enter_context(approved_rows(export))
        changes = stack.enter_context(open(folder / ".changes", "wb"))
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-write"))  # in order
        writers = {
            split: SplitWriter(
                stack.enter_context(open(folder / SPLIT_FILES[split], "wb")),
                stack.enter_context(open(folder / f".{split}.index", "wb")),
                pool,
            )
            for split in splits
        }
        if contamination is not None:
            stack.callback(contamination.close)
        # Compared with the previous version as the records go by; the first version has nothing to compare with.
        try:
            diff = Diff(manifest_entries(_base_manifest(base, folder)), changes) if base else None
        except FileNotFoundError:  # the base version was deleted since it was chosen (its files are open otherwise)
            base = diff = None
        if not job_heartbeat(export, progress=0, total=total):
            raise ExportCancelled
        target = FORMATS[export_format]
        chat, record_ok, record_explain = target.USES_TURNS, target.record_ok, target.problem
        asks_reasoning = task.asks_reasoning  # else records without reasoning, as before the setting
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
            stored_hash,
            reasoning,
            signature,
            side,
        ) in rows:
            if messages.__class__ is str:  # jsonb as text, from PostgreSQL
                messages = orjson.loads(messages) if messages != "[]" else None
            template = templates.get(template_id)
            if template is None:  # not one of the task's own templates: a data error, rare
                version, spec = _foreign_template(template_id)
                template = templates[template_id] = (version, spec, *_renderers(spec, export_format, version))
            version, spec, render, fast = template
            try:
                fields = {"instruction": instruction, "context": context, "input": input_}
                # A preference pair's line straight from its texts (plainly valid, the same bytes), else the record
                # rendered and checked the full way; only chat formats carry prior turns.
                line = fast(fields, completion, messages) if fast is not None else None
                if line is None:
                    record = render(
                        fields, completion, messages if chat else None, reasoning if asks_reasoning else None
                    )
                    problem = None if record_ok(record) else record_explain(record)
                    if problem is None:
                        line = dumps(record)
                else:
                    problem = None
            except TemplateError as exc:  # its template is over a limit
                problem = str(exc)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # malformed prior chat turns
                problem = f"cannot be rendered: {type(exc).__name__} {exc}"
            if problem is None and len(line) > max_record:  # the length of what is written: no cost to speak of
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
                split = SIDES[side]
                writer = writers[split]
                writer.lines.append(line)
                if codes:  # warnings, as the last check stored them
                    found = codes.strip(",").split(",")
                    warned.update(found)
                    found_json = orjson.dumps(found).decode()
                else:  # most records: nothing to count or encode
                    found_json = "[]"
                # An imported example's metadata (annotate.importing) as a fifth column, only when it has some.
                if metadata and metadata != "{}":
                    kept = metadata if metadata.__class__ is str else orjson.dumps(metadata).decode()
                    writer.entries.append(f'[{pk}, "{uuid}", "{content}", {found_json}, {kept}]')
                else:
                    writer.entries.append(f'[{pk}, "{uuid}", "{content}", {found_json}]')
                if len(writer.lines) >= CHUNK:
                    writer.flush()
                tally[split, kind, version] += 1
                if diff is not None:
                    diff.feed(pk, uuid, content, split)
                if contamination is not None:
                    contamination.add(pk, side, stored_hash, (instruction, context, input_), messages, signature)
                if preflight is not None:
                    preflight.add(pk, uuid, split, spec, fields, completion, messages)
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
            with writing(SPLIT_FILES[split]):
                writer.flush()
                writer.wait()
                writer.data.flush()
                os.fsync(writer.data.fileno())
                writer.index.flush()
        report = _contamination_report(contamination.finish(), export_format) if contamination is not None else {}
    if report and task.contamination_blocks and (report["exact"] or report["near"]):
        raise ExportContaminated(report)
    if not job_heartbeat(export, progress=done):
        raise ExportCancelled
    counts = {split: writers[split].records if split in writers else 0 for split in SPLITS}
    counts["total"] = sum(writer.records for writer in writers.values())
    counts["by_kind"] = {split: _sum_by(tally, split) for split in splits}
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
    # A format's own files (sharegpt's dataset_info.json) name the split files that hold records.
    written = {split: SPLIT_FILES[split] for split, writer in writers.items() if writer.records}
    dataset, tools = task.slug.replace("-", "_"), task.output_format == "tools"
    for name, data in target.extra_files(dataset=dataset, splits=written, tools=tools).items():
        files[name] = write_small(folder / name, data)
    template_rows = [{"version": version, "examples": n} for version, n in sorted(by_template.items())]
    built = Built(
        counts=counts,
        files=files,
        templates=template_rows,
        changes=diff.counts if diff else {},
        base_version=base.version if base else None,
        warnings=dict(sorted(warned.items())),
        contamination=report,
        preflight=preflight.finish() if preflight else {},
    )
    card = dataset_card(
        export=export,
        counts=built.counts,
        files=built.files,
        templates=built.templates,
        changes=built.changes,
        base_version=built.base_version,
        specs={version: spec for version, spec, *_ in templates.values()},
        contamination=report,
        preflight=built.preflight,
    )
    files["README.md"] = write_small(folder / "README.md", card.encode())
    files["manifest.json"] = _write_manifest(export, folder, built)
    for split in splits:
        (folder / f".{split}.index").unlink()
    return built


def _splits_of(export: Export) -> tuple[str, ...]:
    """The split files of a version: train and validation always, test when its ratio is above 0."""
    return SPLITS if export.test_ratio > 0 else SPLITS[:2]


def _contamination_report(report: dict, export_format: str = "") -> dict:
    """The check's report with the UUIDs of the examples (or preference pairs) it names (one query for at most
    MAX_REPORTED pairs)."""
    ids = {pair[key] for pair in report["pairs"] for key in ("train", "held_out")}
    if export_format in PAIR_FORMATS:
        from preferences.models import PreferencePair as model
    else:
        model = Example
    uuids = {pk: str(uuid) for pk, uuid in model.objects.filter(pk__in=ids).values_list("pk", "uuid")}
    for pair in report["pairs"]:
        pair["train"] = {"id": pair["train"], "uuid": uuids.get(pair["train"], "")}
        pair["held_out"] = {"id": pair["held_out"], "uuid": uuids.get(pair["held_out"], "")}
    return report


def _sum_by(tally: Counter, split: str) -> dict[str, int]:
    """Records per kind in one split, by kind name."""
    kinds: Counter = Counter()
    for (side, kind, _), n in tally.items():
        if side == split:
            kinds[kind] += n
    return dict(sorted(kinds.items()))


def _renderers(spec: TemplateSpec, export_format: str, version: int) -> tuple[Callable[..., dict], Callable | None]:
    """_renderer, and the format's line renderer when it has one (preference formats) and the template is usable."""
    lines = getattr(FORMATS[export_format], "line_renderer", None)
    fast = lines(spec) if lines is not None and spec_limits_error(spec, export_format) is None else None
    return _renderer(spec, export_format, version), fast


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


def _manifest_head(export: Export, built: Built) -> dict:
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
            "test_ratio": export.test_ratio,
            "seed": export.split_seed,
            "rule": RULE,
        },
        "counts": built.counts,
        "contamination": built.contamination,
        "preflight": built.preflight,
        "files": {name: meta for name, meta in built.files.items() if name != "manifest.json"},
        "compared_with": built.base_version,
        "changes": built.changes,
        "created_by": who,
        "created_at": (export.created_at or timezone.now()).isoformat(),
        "warnings": built.warnings,
        "content_hash": f"first {CONTENT_HASH_DIGITS} hex digits of sha256 of the record's JSON line, without newline",
        "example_columns": ["id", "uuid", "content_hash", "warnings"],
        "example_optional_columns": ["metadata (kept from the imported file, on examples that have some)"],
    }


def _write_manifest(export: Export, folder: Path, built: Built) -> dict:
    """manifest.json, with the (possibly millions of) example entries copied from the index files, not memory."""
    head = orjson.dumps(_manifest_head(export, built), option=orjson.OPT_INDENT_2)
    digest = sha256()
    size = 0
    with writing("manifest.json"), open(folder / "manifest.json", "wb") as out:

        def write(data: bytes) -> None:
            nonlocal size
            out.write(data)
            digest.update(data)
            size += len(data)

        write(head[: head.rindex(b"}")].rstrip() + b',\n  "examples": {\n')
        splits = _splits_of(export)
        for position, split in enumerate(splits):
            name = SPLIT_FILES[split]
            separator = b",\n" if position < len(splits) - 1 else b"\n"
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


def _base_manifest(base: Export, folder: Path) -> Path:
    """The previous version's manifest as a local file: its own path, or a copy fetched from the object store into
    the build's folder. Raise FileNotFoundError when it is gone."""
    if not filestore.object_storage():
        return export_dir(base) / "manifest.json"
    local = folder / ".base-manifest.json"
    if not filestore.download_file("exports", export_key(base, "manifest.json"), local):
        raise FileNotFoundError(export_key(base, "manifest.json"))
    return local


# --- reading, for views and the command ------------------------------------------------------------------------------


def export_summary(*, export: Export) -> dict:
    """The command's --json object: version, state, paths of its files (test when the version has a test split, a
    format's extra files when it writes them), their sha256, counts."""
    files = export.files or {}
    keys = {
        key: name
        for key, name in FILE_KEYS.items()
        if (key != "test" or export.test_ratio > 0)
        and (name not in EXTRA_FILE_NAMES or name in FORMATS[export.format].EXTRA_FILES)
    }
    return {
        "version": export.version,
        "state": export.state,
        "files": {key: export_location(export, name) for key, name in keys.items()},
        "sha256": {key: files[name]["sha256"] for key, name in keys.items() if name in files},
        "counts": export.counts or {},
    }
