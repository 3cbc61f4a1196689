from django.conf import settings
from django.db import models
from django.db.models import Q

EXPORT_FORMATS = [("openai-chat", "OpenAI chat"), ("prompt-completion", "Prompt / completion"), ("alpaca", "Alpaca")]


class Export(models.Model):
    """A numbered, immutable export version of a task's approved examples."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    task = models.ForeignKey("annotate.Task", models.PROTECT, related_name="exports")
    version = models.PositiveIntegerField()
    format = models.CharField(max_length=20, choices=EXPORT_FORMATS)
    filters = models.JSONField(default=dict, blank=True)
    validation_ratio = models.FloatField(default=0.1)
    split_seed = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State, default=State.QUEUED)
    progress = models.PositiveIntegerField(default=0, help_text="Records written so far.")
    total = models.PositiveIntegerField(default=0, help_text="Records to write.")
    counts = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=dict, blank=True, help_text="name -> {size, sha256}")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

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
