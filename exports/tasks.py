from celery import shared_task

from pairsmith.jobs import JOB_TYPES, job_claim

from .models import Export


@shared_task(name="exports.export_build", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def export_build_task(job_id: int) -> None:
    """Claim the export (one worker wins; a duplicate message finds it taken) and build it."""
    from . import services  # services queue this task: import at call time

    export = job_claim(Export, job_id)
    if export is None:
        return
    services.export_build(export=export)


# The sweep re-sends exports whose message was lost (Redis down) or whose worker died (lease expired).
if (Export, export_build_task) not in JOB_TYPES:
    JOB_TYPES.append((Export, export_build_task))
