"""How long export versions stay: a task keeps its newest `export_keep_versions` succeeded versions (1 to 200, 20
unless its lead chooses), and a lead may delete a version by hand.

Deleting marks the row (when, by whom, deleted or pruned) and records it in the audit log in one transaction; the
version's folder is removed once that commits, so a version the database still offers never lacks its files. The row
stays: version numbers come from the highest row, so a number is never given twice, and the version's history (its
changes, who made it) stays readable. A removal that did not happen (a worker killed right after the commit) is done
by the next one, which removes the folder of every deleted version it finds.
"""

import logging
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotate.audit import Action, audit_record
from annotate.models import Task
from pairsmith import filestore

from .models import Export
from .storage import remote_versions, remote_versions_remove, version_dirs, version_dirs_remove

logger = logging.getLogger(__name__)


def export_prune(*, task: Task) -> list[int]:
    """Delete the succeeded versions of `task` beyond its newest `export_keep_versions` (called when an export has
    succeeded), record one audit event naming them, and remove their folders after commit. Return the versions
    pruned, oldest first."""
    with transaction.atomic():
        # The task's lock serialises this with export requests, deletions by hand and other prunes.
        task = Task.objects.select_for_update().get(pk=task.pk)
        available = Export.objects.available().filter(task=task).order_by("-version")
        doomed = sorted(available.values_list("version", flat=True)[task.export_keep_versions :])
        if doomed:
            Export.objects.filter(task=task, version__in=doomed).update(
                deleted_at=timezone.now(), deletion=Export.Deletion.PRUNED
            )
            audit_record(
                task=task,
                actor=None,
                action=Action.EXPORT_PRUNED,
                target=", ".join(f"v{version}" for version in doomed),
                detail={"versions": doomed, "keep": task.export_keep_versions},
            )
        transaction.on_commit(lambda: remove_deleted_files(task=task))
    return doomed


def export_delete(*, export: Export, actor) -> None:
    """Delete a succeeded version by hand (`actor` did it; None: a command): its files go after commit, its row stays,
    marked. Raise ValidationError when the version did not succeed or was deleted already."""
    with transaction.atomic():
        Task.objects.select_for_update().get(pk=export.task_id)
        now = timezone.now()
        marked = (
            Export.objects.available()
            .filter(pk=export.pk)
            .update(deleted_at=now, deleted_by=actor, deletion=Export.Deletion.DELETED)
        )
        if not marked:
            export.refresh_from_db(fields=["state", "deleted_at"])
            if export.deleted_at is not None:
                raise ValidationError(f"Export v{export.version} was deleted already.")
            raise ValidationError(
                f"Export v{export.version} has {export.state}: only a succeeded version has files to delete."
            )
        export.deleted_at, export.deleted_by, export.deletion = now, actor, Export.Deletion.DELETED
        audit_record(
            task=export.task,
            actor=actor,
            action=Action.EXPORT_DELETED,
            target=f"v{export.version}",
            detail={"version": export.version, "format": export.format, "files": sorted(export.files or {})},
        )
        task = export.task
        transaction.on_commit(lambda: remove_deleted_files(task=task))


def remove_deleted_files(*, task: Task) -> list[int]:
    """Remove the folders of the task's deleted versions that are still on disk; return their versions. Reads the
    task's folder (a few dozen entries: the versions kept) and one query, whatever the number of versions ever made."""
    if filestore.object_storage():
        try:
            present = remote_versions(task.slug)
            deleted = Export.objects.filter(task=task, version__in=present, deleted_at__isnull=False)
            return remote_versions_remove(task.slug, deleted.values_list("version", flat=True))
        except filestore.StoreUnavailable:  # the rows are marked: nothing offers these files; the next prune retries
            logger.warning("Could not remove deleted versions of %s from the object store.", task.slug, exc_info=True)
            return []
    task_dir = Path(settings.EXPORT_ROOT) / task.slug
    present = version_dirs(task_dir)
    deleted = Export.objects.filter(task=task, version__in=present, deleted_at__isnull=False)
    return version_dirs_remove(task_dir, deleted.values_list("version", flat=True))
