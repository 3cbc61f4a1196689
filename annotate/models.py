import json
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.urls import reverse

from pairsmith.jobs import Job

from .rendering import PROMPT_FIELDS, template_fields_error
from .schemas import schema_problems
from .tools import parse_toolset


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    LEAD = "lead", "Lead"


class OutputFormat(models.TextChoices):
    TEXT = "text", "Free text"
    JSON = "json", "JSON"
    LABEL = "label", "Label"
    CHAT = "chat", "Chat"
    TOOLS = "tools", "Tool calling"


class InputReuse(models.TextChoices):
    """How a task's completion relates to its prompt: what the answer-leak check treats as the task, not a leak."""

    AUTO = "", "Automatic (from the output format and preset)"
    NEW = "new", "Writes new text (answers, translates, summarises, generates)"
    QUOTES = "quotes", "Quotes or extracts parts of the prompt (answers from a context, replies quoting a message)"
    TRANSFORMS = "transforms", "Transforms the input (rewrites, fills in, completes, anonymises, extracts to JSON)"


class Kind(models.TextChoices):
    HAPPY = "happy", "Happy path"
    EDGE = "edge", "Edge case"
    NEGATIVE = "negative", "Negative / out of scope"
    AMBIGUOUS = "ambiguous", "Ambiguous"


EXPORT_KEEP_DEFAULT = 20  # succeeded export versions a task keeps unless its lead chooses otherwise
EXPORT_KEEP_MAX = 200


class TaskQuerySet(models.QuerySet):
    def for_user(self, user) -> "TaskQuerySet":
        """Tasks the user may see: staff see all, others those they are a member of."""
        if user.is_staff:
            return self.all()
        return self.filter(memberships__user=user).distinct()


class Task(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    guidelines = models.TextField(blank=True, help_text="Markdown. Raw HTML is shown as text.")
    output_format = models.CharField(max_length=5, choices=OutputFormat, default=OutputFormat.TEXT)
    labels = models.JSONField(default=list, blank=True, help_text="The label set of a label task.")
    json_schema = models.JSONField(null=True, blank=True, help_text="Optional JSON Schema for a json task.")
    system_prompt = models.TextField(blank=True)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    self_review_allowed = models.BooleanField(default=False)
    allow_new_examples = models.BooleanField(
        default=True, help_text="Annotators may write new examples from scratch (edge cases, negatives)."
    )
    chat_turns_editable = models.BooleanField(
        default=False, help_text="In a chat task, annotators may edit the prior turns, not only the final reply."
    )
    asks_reasoning = models.BooleanField(
        "Ask for the reasoning",
        default=False,
        db_default=False,
        help_text="Annotators write the reasoning (chain of thought) apart from the final answer; exports carry it the "
        "way each trainer reads it.",
    )
    validation_ratio = models.FloatField(default=0.1)
    test_ratio = models.FloatField(
        default=0,
        help_text="Share of approved examples held out as the test split of exports (never trained on); with the "
        "validation ratio, below 1.",
    )
    split_seed = models.CharField(max_length=64, default="pairsmith")
    blocking_checks = models.JSONField(default=list, blank=True, help_text="Quality checks that block a submission.")
    contamination_blocks = models.BooleanField(
        "Contamination blocks exports",
        default=False,
        help_text="Fail an export whose train split holds an exact or near duplicate of a validation or test prompt "
        "(otherwise the export only reports them).",
    )
    coverage_targets = models.JSONField(
        default=dict, blank=True, help_text='Minimum share per kind, e.g. {"negative": 0.1}'
    )
    # Read by the answer-leak check (annotate/quality/leaks.py): a completion that copies its input is a leak in one
    # task and the very job in another, and only the lead knows which.
    input_reuse = models.CharField(
        "The completion",
        max_length=10,
        choices=InputReuse,
        default=InputReuse.AUTO,
        blank=True,
        help_text="What the answer-leak check expects. New text: a prompt that holds (nearly) the whole answer is a "
        "leak. Quotes: quoting parts of the context or message is the task; only an answer written into the prompt "
        "(after 'Answer:', 'TL;DR:', ...) or the whole context handed back is a leak. Transforms: the completion is "
        "the input changed (even unchanged when nothing needed fixing); only an answer written into the prompt is a "
        "leak. Automatic: transforms for JSON tasks, new text otherwise (a preset sets its own).",
    )
    # Bounded both ways: every version kept is a full copy of the data on disk, and "keep all" would let the disk fill.
    export_keep_versions = models.PositiveSmallIntegerField(
        "Export versions kept",
        default=EXPORT_KEEP_DEFAULT,
        validators=[
            MinValueValidator(1, f"Keep at least 1 export version (at most {EXPORT_KEEP_MAX})."),
            MaxValueValidator(EXPORT_KEEP_MAX, f"Keep at most {EXPORT_KEEP_MAX} export versions (at least 1)."),
        ],
        help_text=f"How many succeeded export versions to keep, 1 to {EXPORT_KEEP_MAX}. When a new export succeeds, "
        "the older ones beyond this are deleted (their version numbers are never reused).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(approvals_required__in=[1, 2]), name="annotate_task_approvals_1_or_2"),
            models.CheckConstraint(
                condition=Q(validation_ratio__gte=0, validation_ratio__lt=1), name="annotate_task_validation_ratio"
            ),
            models.CheckConstraint(
                condition=Q(test_ratio__gte=0, test_ratio__lt=1 - F("validation_ratio")),
                name="annotate_task_test_ratio",
                violation_error_message="The test ratio must be at least 0, and with the validation ratio below 1: "
                "something must be left to train on.",
            ),
            models.CheckConstraint(
                condition=Q(export_keep_versions__gte=1, export_keep_versions__lte=EXPORT_KEEP_MAX),
                name="annotate_task_export_keep_versions",
            ),
            # A slug names the task's export folder: "Support" and "support" would share one on a case-insensitive
            # filesystem (macOS, Windows, many S3 tools). The exact-match unique index stays for URL lookups.
            models.UniqueConstraint(
                Lower("slug"),
                name="annotate_task_slug_ci",
                violation_error_message="A task with this slug, ignoring case, already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("annotate:task_detail", args=[self.slug])

    def clean(self) -> None:
        errors = {}
        if self.output_format == OutputFormat.LABEL:
            labels = self.labels or []
            if not labels:
                errors["labels"] = "A label task needs at least one label."
            elif len(set(labels)) != len(labels):
                errors["labels"] = "Labels must be distinct."
        if self.json_schema is not None and self.output_format != OutputFormat.JSON:
            errors["json_schema"] = "Only a json task has a JSON Schema."
        if self.json_schema is not None and (problems := schema_problems(self.json_schema)):
            errors["json_schema"] = problems
        if errors:
            raise ValidationError(errors)

    @property
    def current_template(self) -> "PromptTemplate | None":
        return self.templates.order_by("-version").first()


class Membership(models.Model):
    """A user's role on one task; a user may hold several roles, one row each."""

    task = models.ForeignKey(Task, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "user", "role"], name="annotate_membership_unique")]
        indexes = [models.Index(fields=["user", "task"], name="annotate_membership_user")]

    def __str__(self) -> str:
        return f"{self.user} · {self.role} · {self.task}"


def default_field_help() -> dict:
    return {
        "instruction": {"label": "Instruction", "help": "What the model is asked to do."},
        "context": {"label": "Context", "help": "Background the model may use (optional)."},
        "input": {"label": "Input", "help": "The input to act on (optional)."},
        "output": {"label": "Completion", "help": "The ideal answer."},
    }


class PromptTemplate(models.Model):
    """How an example's fields become a training record. Versioned; a version used by examples is frozen."""

    task = models.ForeignKey(Task, models.CASCADE, related_name="templates")
    version = models.PositiveIntegerField()
    preset = models.CharField(max_length=30, blank=True)
    instruction_text = models.TextField(blank=True, help_text="Default instruction for new examples.")
    fields = models.JSONField(default=default_field_help, help_text="Label and help of each field.")
    prompt_format = models.TextField(
        default=(
            "### Instruction:\n{instruction}\n\n[[### Context:\n{context}\n\n]][[### Input:\n{input}\n\n]]"
            "### Response:\n"
        )
    )
    chat_user_format = models.TextField(default="[[{context}\n\n]]{instruction}[[\n\n{input}]]")
    alpaca_input_format = models.TextField(default="[[{context}\n\n]]{input}", blank=True)
    system_message = models.TextField(blank=True, help_text="Chat system message; empty uses the task's system prompt.")
    # A tools task's functions (annotate/tools.py): versioned and frozen with the template, like its texts.
    # Stored as JSON text, not jsonb: PostgreSQL would reorder the definitions' keys, and exports write them as given.
    # Null (not "") marks a template of another kind of task: a tools task may have an empty tool set "[]".
    tools = models.TextField(  # noqa: DJ001
        null=True, blank=True, help_text="Tool tasks: OpenAI function definitions, a JSON array. Other tasks: none."
    )
    parallel_tool_calls = models.BooleanField(
        default=True, help_text="Tool tasks: one assistant turn may call several functions at once."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "-version"]
        constraints = [models.UniqueConstraint(fields=["task", "version"], name="annotate_template_task_version")]

    def __str__(self) -> str:
        return f"{self.task.slug} template v{self.version}"

    def clean(self) -> None:
        errors = {}
        for name in ("prompt_format", "chat_user_format", "alpaca_input_format"):
            message = template_fields_error(getattr(self, name))
            if message:
                errors[name] = message
        if self.tools is not None:
            try:
                parse_toolset(self.tools or "[]")
            except ValueError as exc:
                errors["tools"] = str(exc)
        if errors:
            raise ValidationError(errors)

    @property
    def is_frozen(self) -> bool:
        return self.pk is not None and self.examples.exists()

    def effective_system_message(self) -> str:
        return self.system_message or self.task.system_prompt

    def field_label(self, name: str) -> str:
        return (self.fields or {}).get(name, {}).get("label") or name.title()


class ExampleQuerySet(models.QuerySet):
    def for_user(self, user) -> "ExampleQuerySet":
        return self.filter(task__in=Task.objects.for_user(user))


class Example(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        FLAGGED = "flagged", "Flagged"
        REJECTED = "rejected", "Rejected"

    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported"
        WRITTEN = "written", "Written"

    # Every index slows each insert (an import of a million rows spends most of its time in index upkeep), so the
    # foreign keys that a composite index below starts with get no single-column index of their own.
    task = models.ForeignKey(Task, models.CASCADE, related_name="examples", db_index=False)
    template = models.ForeignKey(PromptTemplate, models.PROTECT, related_name="examples")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    instruction = models.TextField(blank=True)
    context = models.TextField(blank=True)
    input = models.TextField(blank=True)
    messages = models.JSONField(default=list, blank=True, help_text="Prior chat turns: [{role, content}, ...].")
    completion = models.TextField(blank=True)
    # The reasoning (chain of thought) before the completion, in tasks that ask for it; a database default too, so
    # that bulk loads (COPY) that do not name it store "".
    reasoning = models.TextField(blank=True, default="", db_default="")
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.HAPPY)
    source = models.CharField(max_length=8, choices=Source, default=Source.IMPORTED)
    external_id = models.CharField(max_length=200, blank=True)
    prompt_hash = models.CharField(max_length=64, blank=True)  # read by the task-wide scan, never looked up alone
    # The prompt's MinHash signature (annotate.quality.prompt_signature), written with the prompt hash: 64 bytes, or
    # empty for a prompt too short to sign; NULL for rows stored before it existed (the export signs those itself).
    prompt_signature = models.BinaryField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status, default=Status.NEW)
    version = models.PositiveIntegerField(default=1, help_text="Optimistic lock: bumped by every save.")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="authored_examples",
        db_index=False,
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="claimed_examples",
        db_index=False,
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When it last entered review.")
    triage = models.BooleanField(
        default=False, db_default=False, help_text="Reviewers disagreed: a lead or reviewer decides."
    )
    # Quality checks, stored per example so queues filter and sort by them. warning_codes is ",leak,format,"
    # (a plain string, so `contains` filters work on SQLite and PostgreSQL alike); risk orders "riskiest first".
    # Database defaults too, so bulk loads (COPY) that name only the prompt columns get sane values.
    warnings = models.JSONField(default=list, blank=True, db_default=models.Value("[]"))
    warning_codes = models.CharField(max_length=300, blank=True, default="", db_default="")
    risk = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Values of the imported record that no field takes, kept where the lead asked for it: {key: value}, JSON of at
    # most 100,000 characters (annotate/importing/records.py); shown on the example's page and in export manifests.
    metadata = models.JSONField(default=dict, blank=True, db_default=models.Value("{}"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ExampleQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task", "external_id"], condition=~Q(external_id=""), name="annotate_example_external_id"
            ),
        ]
        indexes = [
            # Counts per status on the home and task pages; the claim query's filter.
            models.Index(fields=["task", "status", "id"], name="annotate_example_task_status"),
            # Partial: imported and unclaimed examples (most rows) have no author and no claimant, and the queries
            # always name one user; an import of a million rows then writes neither index.
            models.Index(
                fields=["author", "status"], condition=Q(author__isnull=False), name="annotate_example_author"
            ),
            # The claim query: the oldest unclaimed `new` example of a task. Partial, so it stays small as the
            # pool is worked through, whatever the table's size.
            models.Index(fields=["task", "id"], condition=Q(status="new"), name="annotate_example_pool"),
            models.Index(
                fields=["claimed_by", "claim_expires_at"],
                condition=Q(claimed_by__isnull=False),
                name="annotate_example_claims",
            ),
            # The review queue: submitted examples oldest first, or riskiest first. Partial, like the pool above.
            models.Index(
                fields=["task", "submitted_at", "id"], condition=Q(status="submitted"), name="annotate_example_review"
            ),
            models.Index(
                fields=["task", "-risk", "submitted_at"], condition=Q(status="submitted"), name="annotate_example_risky"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task.slug}:{self.uuid}"

    def prompt_fields(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in PROMPT_FIELDS}

    def metadata_shown(self) -> list[tuple[str, str]]:
        """The metadata kept from the import as (key, text): a text as it is, any other value as its JSON."""
        return [
            (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
            for key, value in (self.metadata or {}).items()
        ]


class Skip(models.Model):
    """An annotator passed on an example, with a reason; it is not handed to them again."""

    class Reason(models.TextChoices):
        UNCLEAR = "unclear", "The prompt is unclear"
        EXPERTISE = "expertise", "Outside my expertise"
        BROKEN = "broken", "The prompt is broken or empty"
        DUPLICATE = "duplicate", "Duplicate of another example"
        OTHER = "other", "Other"

    example = models.ForeignKey(Example, models.CASCADE, related_name="skips")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    reason = models.CharField(max_length=10, choices=Reason)
    comment = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["example", "user"], name="annotate_skip_once")]
        indexes = [models.Index(fields=["user", "example"], name="annotate_skip_user")]

    def __str__(self) -> str:
        return f"{self.user} skipped {self.example_id} ({self.reason})"


class RevisionQuerySet(models.QuerySet):
    def current_line(self) -> "RevisionQuerySet":
        """The texts that were the example's current text in their time (its latest one is the current text), without
        the copies kept aside (a conflict's other text, a late save)."""
        return self.exclude(reason__in=Revision.ASIDE)


class Revision(models.Model):
    """Every saved text of a completion. Never deleted (an autosave may be updated in place by the next autosave of
    the same editor: see annotate.revisions)."""

    class Reason(models.TextChoices):
        AUTOSAVE = "autosave", "Autosave"
        SAVE = "save", "Save"
        SUBMIT = "submit", "Submit"
        REVIEWER_EDIT = "reviewer_edit", "Reviewer edit"
        IMPORT = "import", "Import"
        CONFLICT = "conflict", "Conflict copy (not current)"
        LATE = "late", "Late save (not current)"
        RESTORE = "restore", "Restored by a lead"  # a discarded draft: the text it went back to
        MODEL_DRAFT = "model_draft", "Model draft"

    # Kept aside: stored so that nothing typed is lost, never the example's current text.
    ASIDE = (Reason.CONFLICT, Reason.LATE)

    example = models.ForeignKey(Example, models.CASCADE, related_name="revisions", db_index=False)  # see the index
    text = models.TextField(blank=True)
    # The example's reasoning with this text (tasks that ask for it), so that no saved reasoning is lost either.
    reasoning = models.TextField(blank=True, default="", db_default="")
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.HAPPY)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=16, choices=Reason)
    example_version = models.PositiveIntegerField(help_text="The version it made; for a copy kept aside, its base.")
    # The editor that sent it (one id per browser tab, kept across reloads of the tab) and its place among that
    # editor's saves: they tell a tab's own earlier saves (no conflict) from another's (a conflict).
    client = models.CharField(max_length=40, blank=True, default="", db_default="")
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    replaceable = models.BooleanField(
        default=False, db_default=False, help_text="An autosave the next autosave of the same editor may update."
    )
    # A database default too: bulk loads (COPY) name only the columns they fill.
    model_name = models.CharField(max_length=200, blank=True, default="", db_default="", help_text="A draft's model.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RevisionQuerySet.as_manager()

    class Meta:
        ordering = ["example", "created_at", "id"]
        indexes = [models.Index(fields=["example", "-id"], name="annotate_revision_latest")]

    def __str__(self) -> str:
        return f"{self.example_id} rev {self.pk} ({self.reason})"


class Transition(models.Model):
    """One move of an example through the state machine: who, when, from, to."""

    example = models.ForeignKey(Example, models.CASCADE, related_name="transitions", db_index=False)  # see the index
    from_status = models.CharField(max_length=10, choices=Example.Status)
    to_status = models.CharField(max_length=10, choices=Example.Status)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["example", "created_at", "id"]
        indexes = [models.Index(fields=["example", "id"], name="annotate_transition_example")]

    def __str__(self) -> str:
        return f"{self.example_id}: {self.from_status} -> {self.to_status}"


class QualityOverride(models.Model):
    """A reviewer's (or lead's) "not a problem" on one check's warning about one text of an example.

    It applies to the text it was given on (`text_hash`: the prompt fields, the prior turns and the completion): while
    the example holds that text, the warning is shown as overruled, counts as no open warning and blocks nothing, and a
    rescan keeps it so; once the text changes, the warning is open again. Undoing sets `undone_at`; a row is never
    deleted, so the dashboard and the audit log can say which checks a team overrules (annotate.overrides).
    """

    # No single-column index on the foreign keys that start a composite index below.
    task = models.ForeignKey(Task, models.CASCADE, related_name="quality_overrides", db_index=False)
    example = models.ForeignKey(Example, models.CASCADE, related_name="quality_overrides", db_index=False)
    code = models.CharField(max_length=30, help_text="The check overruled (a key of quality.CHECKS).")
    text_hash = models.CharField(max_length=64, help_text="The example's text it applies to (overrides.text_hash).")
    example_version = models.PositiveIntegerField(help_text="The example's version when it was given.")
    message = models.CharField(max_length=500, blank=True, help_text="The warning as it read then.")
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One standing override per check and text: a double click finds the first one.
            models.UniqueConstraint(
                fields=["example", "code", "text_hash"],
                condition=Q(undone_at__isnull=True),
                name="annotate_override_once",
            ),
        ]
        indexes = [
            # An example's overrides (every save of an example looks its standing ones up), newest first.
            models.Index(fields=["example", "-id"], name="annotate_override_example"),
            # The dashboard and the scan: a task's standing overrides.
            models.Index(fields=["task", "code"], condition=Q(undone_at__isnull=True), name="annotate_override_task"),
        ]

    def __str__(self) -> str:
        return f"{self.code} on {self.example_id} overruled by {self.created_by_id}"


class ImportJob(Job):
    """One import of a file into a task: all or nothing. Large files run as a Celery job and stream."""

    class FileFormat(models.TextChoices):
        JSONL = "jsonl", "JSON Lines"
        JSON = "json", "JSON array"
        CSV = "csv", "CSV"

    task = models.ForeignKey(Task, models.CASCADE, related_name="imports")
    filename = models.CharField(max_length=255, help_text="The name the file was uploaded with (shown, never used).")
    path = models.CharField(max_length=500, help_text="Where the upload is kept until the import ends.")
    file_format = models.CharField(max_length=5, choices=FileFormat)
    size = models.PositiveBigIntegerField(default=0)
    status_on_import = models.CharField(max_length=10, choices=Example.Status, default=Example.Status.NEW)
    mapping = models.JSONField(default=dict, blank=True, help_text="Column name in the file -> Pairsmith field.")
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["task", "-created_at"]
        indexes = [
            models.Index(fields=["task"], condition=Q(state__in=["queued", "running"]), name="annotate_import_live")
        ]

    def __str__(self) -> str:
        return f"import {self.filename} into {self.task.slug} ({self.state})"


class QualityScan(Job):
    """The task-wide quality checks over every example of a task, and the dashboard's figures, as a job."""

    task = models.ForeignKey(Task, models.CASCADE, related_name="scans")
    report = models.JSONField(default=dict, blank=True, help_text="Totals, task findings, counts and plot data.")

    class Meta:
        ordering = ["task", "-created_at"]
        indexes = [
            models.Index(fields=["task"], condition=Q(state__in=["queued", "running"]), name="annotate_scan_live"),
            models.Index(fields=["task", "-finished_at"], condition=Q(state="succeeded"), name="annotate_scan_done"),
        ]

    def __str__(self) -> str:
        return f"quality scan of {self.task.slug} ({self.state})"


class TemplateMove(Job):
    """Moving a task's examples from older template versions to `to_template`, as a job (a task may have a million)."""

    task = models.ForeignKey(Task, models.CASCADE, related_name="template_moves")
    to_template = models.ForeignKey(PromptTemplate, models.PROTECT, related_name="+")

    class Meta:
        ordering = ["task", "-created_at"]
        indexes = [
            models.Index(fields=["task"], condition=Q(state__in=["queued", "running"]), name="annotate_tmove_live"),
        ]

    def __str__(self) -> str:
        return f"move of {self.task.slug} examples to v{self.to_template.version} ({self.state})"


class AuditEvent(models.Model):
    """One recorded action: who did what, on which task (none for account events such as tokens), when.

    Written by `annotate.audit.audit_record` in the transaction of the action itself, so an event exists exactly when
    its action was committed. Never changed.
    """

    class Action(models.TextChoices):
        VERDICT = "verdict", "Verdict"
        TRIAGE_SEND_BACK = "triage_send_back", "Triage: sent back"
        TRIAGE_REJECT = "triage_reject", "Triage: rejected"
        TRIAGE_APPROVE = "triage_approve", "Triage: approved"
        TRIAGE_REASSIGN = "triage_reassign", "Triage: reassigned"
        EXPORT_REQUESTED = "export_requested", "Export requested"
        EXPORT_CANCELLED = "export_cancelled", "Export cancelled"
        EXPORT_DELETED = "export_deleted", "Export deleted"
        EXPORT_PRUNED = "export_pruned", "Exports pruned"
        IMPORT = "import", "Import"
        ROLE_ADDED = "role_added", "Role added"
        ROLE_REMOVED = "role_removed", "Role removed"
        TASK_CREATED = "task_created", "Task created"
        SETTINGS_CHANGED = "settings_changed", "Settings changed"
        TEMPLATE_SAVED = "template_saved", "Template saved"
        TOKEN_CREATED = "token_created", "API token created"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        TEMPLATE_MOVED = "template_moved", "Examples moved to a template version"
        ACCOUNT_CREATED = "account_created", "Account created"
        INVITATION_RENEWED = "invitation_renewed", "Set-password link renewed"
        EXAMPLE_DISCARDED = "example_discarded", "Draft discarded"
        MODEL_SETTINGS = "model_settings", "Model settings changed"
        MODEL_RUN_REQUESTED = "model_run_requested", "Model run requested"
        MODEL_RUN_FINISHED = "model_run_finished", "Model run finished"
        MODEL_RUN_FAILED = "model_run_failed", "Model run failed"
        API_REQUEST = "api_request", "API request"
        MODEL_RUN_CANCELLED = "model_run_cancelled", "Model run cancelled"
        EVALUATION_STARTED = "evaluation_started", "Evaluation run started"
        EVALUATION_ENDED = "evaluation_ended", "Evaluation run ended"
        EVALUATION_VERDICT = "evaluation_verdict", "Evaluation answer judged"
        EVALUATION_EXAMPLE = "evaluation_example", "Example made from an evaluation"
        WARNING_OVERRULED = "warning_overruled", "Warning marked not a problem"
        OVERRULE_UNDONE = "overrule_undone", "“Not a problem” undone"

    # No single-column indexes on the foreign keys: the composite indexes below start with them.
    task = models.ForeignKey(Task, models.CASCADE, null=True, blank=True, related_name="audit_events", db_index=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    action = models.CharField(max_length=20, choices=Action)
    target = models.CharField(
        max_length=200, blank=True, help_text="What it was done to: an example UUID, v3, a username, a token prefix."
    )
    detail = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The task's audit page: newest first (by id, the insert order), all actions or one, keyset-paginated.
            models.Index(fields=["task", "-id"], name="annotate_audit_task"),
            models.Index(fields=["task", "action", "-id"], name="annotate_audit_task_action"),
            # A user's own events (their tokens, which belong to no task), and the actor foreign key.
            models.Index(fields=["actor", "-id"], name="annotate_audit_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target} by {self.actor_id} ({self.created_at:%Y-%m-%d %H:%M})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError("An audit event is never changed; record a new one instead.")
        super().save(*args, **kwargs)

    def detail_items(self, limit: int = 5) -> list[tuple[str, str]]:
        """The detail as (key, text) pairs for the page; long lists show their first `limit` items and a count."""
        items = []
        for key, value in (self.detail or {}).items():
            if isinstance(value, list):
                shown = ", ".join(map(str, value[:limit]))
                text = f"{shown}, … ({len(value)} in all)" if len(value) > limit else shown
            else:
                text = str(value)
            items.append((str(key), text))
        return items
