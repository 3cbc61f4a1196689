"""Celery tasks of annotate: thin wrappers over the services. A job's state lives in its row, not in Celery."""

from celery import shared_task

from pairsmith.jobs import JOB_TYPES

from . import importing
from .models import ImportJob


@shared_task(name="annotate.import_run", ignore_result=True)
def import_run_task(*, job_id: int) -> None:
    """Run an import job. A transient database error propagates: the sweep sends the job again once its lease ends."""
    importing.import_run(job_id=job_id)


JOB_TYPES.append((ImportJob, import_run_task))
