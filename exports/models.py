from django.db import models
from django.db.models import Q

from pairsmith.jobs import Job

EXPORT_FORMATS = [("openai-chat", "OpenAI chat"), ("prompt-completion", "Prompt / completion"), ("alpaca", "Alpaca")]


class Export(Job):
    """A numbered, immutable export version of a task's approved examples."""

    task = models.ForeignKey("annotate.Task", models.PROTECT, related_name="exports")
    version = models.PositiveIntegerField()
    format = models.CharField(max_length=20, choices=EXPORT_FORMATS)
    filters = models.JSONField(default=dict, blank=True)
    validation_ratio = models.FloatField(default=0.1)
    split_seed = models.CharField(max_length=64)
    counts = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=dict, blank=True, help_text="name -> {size, sha256}")

    class Meta:
        ordering = ["task", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["task", "version"], name="exports_task_version"),
            models.CheckConstraint(condition=Q(validation_ratio__gte=0, validation_ratio__lt=1), name="exports_ratio"),
        ]
        # Partial index: the status poller and the sweep only look at unfinished exports.
        indexes = [models.Index(fields=["task"], condition=Q(state__in=["queued", "running"]), name="exports_live")]

    def __str__(self) -> str:
        return f"{self.task.slug} v{self.version} ({self.state})"
