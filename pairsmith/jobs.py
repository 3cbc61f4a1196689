"""Background jobs (imports, exports, task-wide checks) whose state lives in their PostgreSQL row.

A Celery message only wakes a worker; it is sent after commit. A worker takes a job by a conditional update
(exactly one winner, even when a message is delivered twice), reports progress on the row and extends its lease.
A periodic sweep re-sends jobs whose message was lost (Redis down at the time) or whose worker died (lease expired),
up to MAX_ATTEMPTS. So a job survives a lost message, a killed worker and a Redis restart.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 3
QUEUE_UNREACHABLE = "The job queue (Redis) could not be reached; the job stays queued and starts once it is back."

# (model, celery task) of every job type, registered by each app's tasks module; the sweep walks them.
JOB_TYPES: list[tuple[type["Job"], object]] = []


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


LIVE_STATES = [JobState.QUEUED, JobState.RUNNING]


class Job(models.Model):
    """The shared columns of a job row. Concrete jobs add what they work on and what they produce."""

    state = models.CharField(max_length=10, choices=JobState, default=JobState.QUEUED)
    progress = models.PositiveBigIntegerField(default=0, help_text="Units done so far (records, bytes).")
    total = models.PositiveBigIntegerField(default=0, help_text="Units to do; 0 while unknown.")
    error = models.TextField(blank=True)
    notice = models.CharField(
        max_length=300, blank=True, help_text="For the UI: why a queued job waits, or what a running one is doing."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def percent(self) -> int:
        if self.state == JobState.SUCCEEDED:
            return 100
        return min(99, int(100 * self.progress / self.total)) if self.total else 0


def job_send(task, job: Job) -> None:
    """Wake a worker for `job` once the transaction commits. Redis down: the row stays queued with a notice."""

    def send() -> None:
        try:
            task.apply_async(kwargs={"job_id": job.pk}, retry=False)
        except Exception as exc:  # kombu OperationalError, redis ConnectionError, socket errors: all "not sent"
            if settings.CELERY_TASK_ALWAYS_EAGER and not _is_connection_error(exc):
                raise  # inline mode: a bug in the task itself must surface
            logger.warning("Could not send %s %s: %s", type(job).__name__, job.pk, exc)
            type(job).objects.filter(pk=job.pk, state=JobState.QUEUED).update(notice=QUEUE_UNREACHABLE)

    transaction.on_commit(send)


def _is_connection_error(exc: Exception) -> bool:
    from kombu.exceptions import OperationalError

    return isinstance(exc, OperationalError | ConnectionError | OSError)


def job_claim(model: type[Job], job_id: int) -> Job | None:
    """Move the job to running for this worker; None when another worker has it, or it is finished or cancelled."""
    now = timezone.now()
    claimable = Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, lease_expires_at__lt=now)
    won = model.objects.filter(claimable, pk=job_id, attempts__lt=MAX_ATTEMPTS).update(
        state=JobState.RUNNING, attempts=F("attempts") + 1, started_at=now, lease_expires_at=now + LEASE, notice=""
    )
    return model.objects.get(pk=job_id) if won else None


def _ours(job: Job) -> Q:
    """The row while it is still `job`'s claim. A worker whose lease ran out and whose job another worker then
    claimed (attempts moved on) must not report progress, finish or fail that other worker's run: the attempt
    number of the claim is its fencing token. A job object that was never claimed (still queued in memory)
    is not fenced."""
    if job.state == JobState.RUNNING:
        return Q(pk=job.pk, attempts=job.attempts)
    return Q(pk=job.pk)


def job_heartbeat(job: Job, *, progress: int, total: int | None = None, notice: str | None = None) -> bool:
    """Report progress (and what the job is doing, `notice`, when given) and extend the lease. False when the job is
    no longer ours to run (cancelled, or claimed again by another worker after our lease ran out): stop."""
    values = {"progress": progress, "lease_expires_at": timezone.now() + LEASE}
    if total is not None:
        values["total"] = total
    if notice is not None:
        values["notice"] = notice
    return bool(type(job).objects.filter(_ours(job), state=JobState.RUNNING).update(**values))


def job_finish(job: Job, **fields) -> bool:
    """Mark the job succeeded with `fields`, unless it was cancelled or taken over meanwhile. Returns whether it was
    marked."""
    values = {"state": JobState.SUCCEEDED, "finished_at": timezone.now(), "lease_expires_at": None, **fields}
    return bool(type(job).objects.filter(_ours(job), state=JobState.RUNNING).update(**values))


def job_fail(job: Job, error: str) -> None:
    type(job).objects.filter(_ours(job), state__in=LIVE_STATES).update(
        state=JobState.FAILED, error=error[:10_000], finished_at=timezone.now(), lease_expires_at=None
    )


def job_cancel(job: Job) -> bool:
    """Cancel a queued or running job; a running worker sees it at its next heartbeat and stops."""
    return bool(
        type(job)
        .objects.filter(pk=job.pk, state__in=LIVE_STATES)
        .update(state=JobState.CANCELLED, finished_at=timezone.now(), lease_expires_at=None)
    )


def jobs_sweep(*, queued_grace: timedelta = timedelta(seconds=30)) -> int:
    """Re-send lost or orphaned jobs of every registered type; fail those out of attempts. Returns how many."""
    now = timezone.now()
    touched = 0
    for model, task in JOB_TYPES:
        stale = model.objects.filter(
            Q(state=JobState.QUEUED, created_at__lt=now - queued_grace)
            | Q(state=JobState.RUNNING, lease_expires_at__lt=now)
        )
        for job in stale.order_by("pk")[:500]:
            touched += 1
            if job.attempts >= MAX_ATTEMPTS:
                job_fail(job, f"Gave up after {job.attempts} attempts: the worker stopped each time before finishing.")
            else:
                try:
                    task.apply_async(kwargs={"job_id": job.pk}, retry=False)
                except Exception as exc:
                    logger.warning("Sweep could not send %s %s: %s", model.__name__, job.pk, exc)
                    return touched
    return touched
