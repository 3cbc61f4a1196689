from celery import shared_task
from celery.signals import worker_ready

from .jobs import jobs_sweep


@shared_task(name="pairsmith.ping")
def ping() -> dict:
    """Prove a worker reaches both the broker and the database: answer with what it sees there."""
    from annotate.models import Example, Task

    return {"tasks": Task.objects.count(), "examples": Example.objects.count()}


@shared_task(name="pairsmith.jobs_sweep", ignore_result=True)
def jobs_sweep_task() -> int:
    return jobs_sweep()


@worker_ready.connect
def _sweep_when_a_worker_starts(**kwargs) -> None:
    # A restarted worker picks up what its predecessor left: jobs whose message was lost or whose lease ran out.
    jobs_sweep_task.delay()
