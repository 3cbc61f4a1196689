import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from annotate.models import Kind
from pairsmith.jobs import Job

from .formats import CHOICES as EXPORT_FORMATS
from .formats import EXTRA_FILE_NAMES

# The files of a version: the key the command's --json output uses -> the file name on disk. test.jsonl is there when
# the version has a test ratio above 0, and a format's extra files (sharegpt's dataset_info.json) when it writes them.
FILE_KEYS = {
    "train": "train.jsonl",
    "validation": "validation.jsonl",
    "test": "test.jsonl",
    "manifest": "manifest.json",
    "card": "README.md",
    **{name.split(".")[0]: name for name in EXTRA_FILE_NAMES},
}
FILE_NAMES = tuple(FILE_KEYS.values())


class ExportQuerySet(models.QuerySet):
    def available(self) -> "ExportQuerySet":
        """Versions whose files can be read: succeeded, and neither deleted by hand nor pruned."""
        return self.filter(state="succeeded", deleted_at__isnull=True)


class Export(Job):
    """A numbered, immutable export version of a task's approved examples. Deleting a version removes its files
    and keeps its row (marked deleted), so that its number is never given again and its history stays readable."""

    class Deletion(models.TextChoices):
        DELETED = "deleted", "Deleted by hand"
        PRUNED = "pruned", "Pruned: older than the versions the task keeps"

    task = models.ForeignKey("annotate.Task", models.PROTECT, related_name="exports")
    version = models.PositiveIntegerField()
    format = models.CharField(max_length=20, choices=EXPORT_FORMATS)
    filters = models.JSONField(default=dict, blank=True)
    validation_ratio = models.FloatField(default=0.1)
    test_ratio = models.FloatField(default=0)
    split_seed = models.CharField(max_length=64)
    counts = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=dict, blank=True, help_text="name -> {size, sha256}")
    problems = models.JSONField(
        default=list, blank=True, help_text="Records that failed their format's checks: [{example, uuid, reason}]."
    )
    base_version = models.PositiveIntegerField(null=True, blank=True, help_text="The version `changes` compares with.")
    changes = models.JSONField(default=dict, blank=True, help_text="Counts of added, removed, changed, moved examples.")
    contamination = models.JSONField(
        default=dict,
        blank=True,
        help_text="Held-out prompts found again in train: counts of exact and near duplicates and the first pairs.",
    )
    max_length = models.PositiveIntegerField(
        default=1024, help_text="The trainer's maximum sequence length the preflight measures examples against."
    )
    preflight = models.JSONField(
        default=dict,
        blank=True,
        help_text="Tokens per split, examples over max_length, trained share: counted with the task's tokenizer.",
    )
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="When its files were deleted.")
    deleted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    deletion = models.CharField(max_length=7, choices=Deletion, blank=True)

    objects = ExportQuerySet.as_manager()

    class Meta:
        ordering = ["task", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["task", "version"], name="exports_task_version"),
            models.CheckConstraint(condition=Q(validation_ratio__gte=0, validation_ratio__lt=1), name="exports_ratio"),
            # Validation and test together leave something to train on.
            models.CheckConstraint(
                condition=Q(test_ratio__gte=0, test_ratio__lt=1 - F("validation_ratio")), name="exports_test_ratio"
            ),
            # Only a succeeded version has files to delete; a deleted one says how.
            models.CheckConstraint(
                condition=Q(deleted_at__isnull=True, deletion="")
                | Q(deleted_at__isnull=False, state="succeeded", deletion__in=["deleted", "pruned"]),
                name="exports_deletion",
            ),
        ]
        # Partial index: the status poller and the sweep only look at unfinished exports.
        indexes = [models.Index(fields=["task"], condition=Q(state__in=["queued", "running"]), name="exports_live")]

    def __str__(self) -> str:
        return f"{self.task.slug} v{self.version} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("exports:detail", args=[self.task.slug, self.version])

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def state_class(self) -> str:
        """The CSS class that colours the state."""
        return {"succeeded": "st-text-approved", "failed": "st-text-rejected", "running": "st-text-submitted"}.get(
            self.state, "muted"
        )

    @property
    def kinds_label(self) -> str:
        """The kinds filter in words: "all kinds", or the kinds chosen."""
        kinds = (self.filters or {}).get("kinds") or []
        return "all kinds" if not kinds or set(kinds) >= set(Kind.values) else ", ".join(kinds)

    @property
    def total_size(self) -> int:
        return sum(meta.get("size", 0) for meta in (self.files or {}).values())

    @property
    def preflight_rows(self) -> list[dict]:
        """The preflight's figures per split in split order (PostgreSQL's jsonb keeps keys in its own order)."""
        splits = (self.preflight or {}).get("splits") or {}
        return [{"split": name, **splits[name]} for name in ("train", "validation", "test") if name in splits]

    @property
    def file_rows(self) -> list[dict]:
        """The files in their fixed order, for the templates: [{name, size, sha256, records}]."""
        return [{"name": name, **self.files[name]} for name in FILE_NAMES if name in (self.files or {})]


class TaskTokenizer(models.Model):
    """The tokenizer of the model a task's data will train: tokenizer.json and tokenizer_config.json (with the chat
    template), as uploaded and checked (exports/preflight.py). Exports then count exact tokens with it."""

    task = models.OneToOneField("annotate.Task", models.CASCADE, related_name="tokenizer")
    name = models.CharField(max_length=200, help_text="The model's name from tokenizer_config.json, or the file's.")
    tokenizer_json = models.TextField()
    config_json = models.TextField()
    sha256 = models.CharField(max_length=64, help_text="Of tokenizer.json, then tokenizer_config.json.")
    vocab_size = models.PositiveIntegerField()
    has_generation = models.BooleanField(help_text="Whether the chat template marks the trained part.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    uploaded_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.task.slug}: {self.name}"


class ExportChange(models.Model):
    """How one example differs from the version an export was compared with (by the manifests' content hashes)."""

    class Change(models.TextChoices):
        ADDED = "added", "Added"
        REMOVED = "removed", "Removed"
        CHANGED = "changed", "Changed"
        MOVED = "moved", "Moved between splits"

    export = models.ForeignKey(Export, models.CASCADE, related_name="change_rows")
    change = models.CharField(max_length=7, choices=Change)
    # No foreign key: a removed example may be gone from the database; the UUID is what the manifests hold.
    example_id = models.BigIntegerField()
    example_uuid = models.UUIDField()
    split = models.CharField(max_length=10, help_text="train or validation (for a removed example: where it was).")

    class Meta:
        ordering = ["export", "example_id"]
        # The version page lists one export's changes of one kind, in example order.
        indexes = [models.Index(fields=["export", "change", "example_id"], name="exports_change_browse")]

    def __str__(self) -> str:
        return f"{self.example_uuid} {self.change}"


def token_digest(raw: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is enough to store them (no slow hash needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


REVOCATION_IS_FINAL = "A revoked token stays revoked; make a new token instead."


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True)

    def update(self, **kwargs) -> int:
        """Refuse to clear revoked_at: a leaked token, once revoked, must never work again (services.token_revoke
        sets it, with its audit event)."""
        if "revoked_at" in kwargs and kwargs["revoked_at"] is None:
            raise ValidationError(REVOCATION_IS_FINAL)
        return super().update(**kwargs)


class ApiToken(models.Model):
    """A personal bearer token for pipelines; it acts for its user on the tasks they lead or review."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. “training pipeline”.")
    prefix = models.CharField(max_length=12, help_text="The token's first characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token; the token is not stored.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["user", "-created_at"]

    def __str__(self) -> str:
        return f"{self.user} · {self.name} ({self.prefix}…)"

    def save(self, *args, **kwargs) -> None:
        """Refuse to save a revoked token as active again (the admin, a shell); raise ValidationError."""
        revoked = ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=False)
        if self.pk is not None and self.revoked_at is None and revoked.exists():
            raise ValidationError(REVOCATION_IS_FINAL)
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
