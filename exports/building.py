"""Building an export version's files: the approved examples (or preference pairs) streamed in id order, each rendered
through its own template version and checked against its format's rules, split, written to the split files with
their manifest entries and hashed; compared with the previous version, checked for contamination, counted through
the trainer's tokenizer (preflight); then the card and the manifest. exports.services runs it for a claimed job and
publishes what it built (exports.publishing).
"""

import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from hashlib import sha256
from itertools import chain
from pathlib import Path

import orjson
from django.utils import timezone

from annotate.models import Example, PromptTemplate
from annotate.rendering import TemplateError, TemplateSpec, limit, record_renderer, spec_limits_error
from pairsmith import filestore
from pairsmith.jobs import job_heartbeat

from . import matching
from .card import dataset_card
from .changes import Diff, base_export, manifest_entries
from .contamination import Contamination, contamination_summary
from .formats import FORMATS, PAIR_FORMATS
from .models import Export, TaskTokenizer
from .preflight import Preflight
from .publishing import Built, ExportCancelled
from .reading import approved_rows
from .splits import RULE, SIDES, SPLIT_FILES, SPLITS
from .storage import export_dir, export_key
from .writing import SplitWriter, write_small, writing

CHUNK = 2_000  # lines per write
HEARTBEAT_SECONDS = 1.0  # progress on the row (the page polls every 2 s) and a lease far from running out
MAX_PROBLEMS = 100  # problems kept on the row; the error counts them all
CONTENT_HASH_DIGITS = 16
# Test-only: seconds to sleep per record, so that tests can watch, cancel or kill an export in flight.
THROTTLE_ENV = "PAIRSMITH_EXPORT_THROTTLE"


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


def _throttle() -> float:
    try:
        return max(0.0, float(os.environ.get(THROTTLE_ENV) or 0))
    except ValueError:
        return 0.0


def write_files(export: Export, folder: Path) -> Built:
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
    contamination = None
    tokenizer = TaskTokenizer.objects.filter(task=task).first()
    preflight = Preflight(tokenizer, max_length=export.max_length) if tokenizer else None
    with ExitStack() as stack:
        total, batches = stack.enter_context(approved_rows(export))
        if held_out:  # matched in a process of its own on a large export (exports/matching.py)
            contamination = Contamination(folder / ".signatures", process=total >= matching.PROCESS_MIN_ROWS)
            stack.callback(contamination.close)
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
        if contamination is not None:  # each batch handed to the check whole (it reads what it needs)
            batches = map(_feeding(contamination), batches)
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
            _stored_hash,
            reasoning,
            _signature,
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
                # A plain record's line straight from its texts (plainly valid, the same bytes: the format's
                # line_renderer), else the record rendered and checked the full way; only chat formats carry prior
                # turns.
                prior, thought = messages if chat else None, reasoning if asks_reasoning else None
                line = fast(fields, completion, prior, thought) if fast is not None else None
                if line is None:
                    record = render(fields, completion, prior, thought)
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


def _feeding(contamination: Contamination) -> Callable[[list], list]:
    """batch -> batch, handed to the contamination check on its way (exports.reading's batches, unchanged)."""

    def feed(batch: list) -> list:
        contamination.add_rows(batch)
        return batch

    return feed


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
    """_renderer, and the format's line renderer (the JSON line of a plain record from its texts) when it has one and
    the template is usable."""
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
