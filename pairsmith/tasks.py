from celery import shared_task


@shared_task(name="pairsmith.ping")
def ping() -> dict:
    """Prove a worker reaches both the broker and the database: answer with what it sees there."""
    from annotate.models import Example, Task

    return {"tasks": Task.objects.count(), "examples": Example.objects.count()}
