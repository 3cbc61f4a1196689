from celery import shared_task

from annotate.models import Task


@shared_task(name="preferences.pair_checks", ignore_result=True)
def pair_checks_task(task_id: int) -> None:
    """Check every preference pair of the task and store what each fails (preferences.checks)."""
    from .checks import pair_checks_run  # the checks module reads the models: import at call time

    task = Task.objects.filter(pk=task_id).first()
    if task is not None:
        pair_checks_run(task=task)
