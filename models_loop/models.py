"""Model in the loop: a task's model settings and spend, model runs (jobs), judgements, and how drafts were edited."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.models import Example, Kind, Revision, Task
from pairsmith.jobs import Job


class TaskModelSettings(models.Model):
    """What a task's lead chose about the model (never the endpoint: that comes from the environment), and what the
    task has spent on it."""

    task = models.OneToOneField(Task, models.CASCADE, related_name="model_settings")
    drafts_enabled = models.BooleanField(default=False, help_text="The model drafts a completion of each new example.")
    judge_enabled = models.BooleanField(
        default=False, help_text="The model scores every submitted example (advice for reviewers, never a verdict)."
    )
    model_name = models.CharField(max_length=200, blank=True, help_text="Empty: the deployment's LLM_MODEL.")
    draft_prompt = models.TextField(blank=True, help_text="The system message of a draft request. Empty: the default.")
    judge_prompt = models.TextField(blank=True, help_text="The system message of a judge request. Empty: the default.")
    drafts_hidden_from = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="+",
        help_text="Annotators who get an empty box instead of the draft (to measure what drafts are worth).",
    )
    requests = models.PositiveBigIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "task model settings"

    def __str__(self) -> str:
        return f"model settings of {self.task.slug}"

    def effective_model(self) -> str:
        return self.model_name or settings.LLM_MODEL


class ModelRun(Job):
    """One batch of requests to the model: drafts of new examples, or judgements of submitted ones (a whole task,
    or one example just submitted)."""

    class Kind(models.TextChoices):
        DRAFT = "draft", "Drafts"
        JUDGE = "judge", "Judgements"

    task = models.ForeignKey(Task, models.CASCADE, related_name="model_runs")
    kind = models.CharField(max_length=5, choices=Kind)
    model = models.CharField(max_length=200)
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="At most this many examples; none: all.")
    example = models.ForeignKey(
        Example, models.CASCADE, null=True, blank=True, related_name="+", help_text="Only this one (judge on submit)."
    )
    counts = models.JSONField(default=dict, blank=True)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["task", "-created_at"]
        indexes = [
            # The task page's progress bar and "one live run per task and kind" read the unfinished runs only.
            models.Index(fields=["task", "kind"], condition=Q(state__in=["queued", "running"]), name="loop_run_live"),
            models.Index(fields=["task", "kind", "-id"], name="loop_run_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run of {self.task.slug} ({self.state})"


class Judgement(models.Model):
    """The model's score (1-5) and one-line reason for one submitted text. Advice, never a verdict."""

    example = models.ForeignKey(Example, models.CASCADE, related_name="judgements", db_index=False)  # see the index
    revision = models.ForeignKey(Revision, models.CASCADE, related_name="judgements")
    score = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=300)
    model = models.CharField(max_length=200)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["example", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["revision"], name="models_loop_judgement_once"),
            models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="models_loop_judgement_score"),
        ]
        indexes = [models.Index(fields=["example", "-id"], name="loop_judgement_example")]

    def __str__(self) -> str:
        return f"{self.score}/5 for {self.example_id} by {self.model}"


class DraftEdit(models.Model):
    """How much the annotator changed a model draft, measured at their first submit after it."""

    class Change(models.TextChoices):
        UNCHANGED = "unchanged", "Accepted unchanged"
        LIGHT = "light", "Lightly edited"
        REWRITTEN = "rewritten", "Rewritten"

    draft = models.OneToOneField(Revision, models.CASCADE, related_name="draft_edit")
    submitted = models.ForeignKey(Revision, models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, models.CASCADE, related_name="+")  # the dashboard counts per task
    example = models.ForeignKey(Example, models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind, help_text="The example's kind at submit.")
    shown = models.BooleanField(help_text="False: the draft was hidden from this annotator (the comparison group).")
    similarity = models.FloatField(help_text="Word-pair overlap of the draft and the submitted text, 0 to 1.")
    change = models.CharField(max_length=9, choices=Change)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(similarity__gte=0, similarity__lte=1), name="models_loop_similarity"),
        ]

    def __str__(self) -> str:
        return f"{self.change} draft of {self.example_id}"
