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
import secrets
import shutil
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Max

from annotate.audit import Action, audit_record
from annotate.models import Example, Kind, Task
from pairsmith import filestore
from pairsmith.jobs import JobState, job_cancel, job_fail, job_send

from . import building, retention
from .building import ExportContaminated, ExportRecordsInvalid
from .changes import manifest_entries
from .formats import EXTRA_FILE_NAMES, FORMATS, PAIR_FORMATS
from .models import FILE_KEYS, Export
from .preflight import DEFAULT_MAX_LENGTH, MAX_MAX_LENGTH, PreflightFailed
from .publishing import ExportCancelled, forget_remote, publish, publish_remote, remove_partials, send
from .reading import approved
from .reading import read_ahead as _read_ahead  # noqa: F401 (tests reach it here)
from .splits import RULE, SIDES, SPLIT_FILES, SPLITS, split_of  # noqa: F401 (split_of: read here by tests)
from .storage import export_dir as export_dir  # tests read it here
from .storage import export_file_path as export_file_path  # views, commands and tests read both from here
from .storage import export_location, remote_partials_remove
from .tokens import TOKEN_PREFIX, token_create, token_revoke, token_tasks, token_user  # noqa: F401 (views read here)
from .writing import DISK_FULL, ExportDiskFull, writing

_manifest_entries = manifest_entries  # tests read the manifest through this name

logger = logging.getLogger(__name__)

# The fields each format's record holds, exactly; order as written.
RECORD_KEYS = {name: module.RECORD_KEYS for name, module in FORMATS.items()}


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
        built = building.write_files(export, partial)
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
