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


class EvaluationRun(Job):
    """The answers of a (fine-tuned) model to the test split of one export, from the endpoint or from a file, to be
    judged blind against the approved completions. From the endpoint it is a job (the answers, then the judge's
    comparisons when the task's judge is on); from a file without a judge it is complete when made."""

    class Source(models.TextChoices):
        ENDPOINT = "endpoint", "The model endpoint"
        FILE = "file", "A file of outputs"

    task = models.ForeignKey(Task, models.CASCADE, related_name="evaluation_runs")
    name = models.CharField(max_length=100)
    export = models.ForeignKey("exports.Export", models.PROTECT, related_name="evaluation_runs")
    source = models.CharField(max_length=8, choices=Source)
    model = models.CharField(max_length=200, blank=True, help_text="The model that answered (endpoint runs).")
    judge_model = models.CharField(max_length=200, blank=True, help_text="Empty: no model judge for this run.")
    size = models.PositiveIntegerField(default=0, help_text="Its items: the test examples it holds.")
    counts = models.JSONField(default=dict, blank=True)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["task", "-id"]
        constraints = [models.UniqueConstraint(fields=["task", "name"], name="models_loop_evaluation_name")]

    def __str__(self) -> str:
        return f"evaluation {self.name} of {self.task.slug}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("models_loop:evaluation", args=[self.task.slug, self.pk])


class EvaluationItem(models.Model):
    """One held-out prompt of a run: the model's answer, the approved completion it is compared with, the order the
    two are shown in (drawn at random per item, kept so a page shows them the same way every time), a person's
    verdict and the model judge's."""

    class Result(models.TextChoices):
        BETTER = "better", "Model better"
        SAME = "same", "As good"
        WORSE = "worse", "Model worse"

    run = models.ForeignKey(EvaluationRun, models.CASCADE, related_name="items")
    example = models.ForeignKey(Example, models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind, help_text="The example's kind when the run was made.")
    reference = models.TextField(help_text="The approved completion when the run was made.")
    output = models.TextField(blank=True)
    answered = models.BooleanField(default=False, help_text="The model's answer is in (empty answers count).")
    model_first = models.BooleanField(help_text="The model's answer is shown as A (left), the approved one as B.")
    result = models.CharField(max_length=6, choices=Result, blank=True)
    reasons = models.JSONField(default=list, blank=True, help_text="What is wrong with the worse answer.")
    comment = models.TextField(blank=True)
    judged_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    judged_at = models.DateTimeField(null=True, blank=True)
    judge_result = models.CharField(max_length=6, choices=Result, blank=True)
    judge_reason = models.CharField(max_length=300, blank=True)
    new_example = models.ForeignKey(
        Example, models.SET_NULL, null=True, blank=True, related_name="evaluation_sources",
        help_text="The example made from this failure for annotators.",
    )  # fmt: skip

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "example"], name="models_loop_evaluation_item_once")]
        # The judging screen's "next unjudged item" and the figures' grouped counts read by run and result.
        indexes = [models.Index(fields=["run", "result", "id"], name="loop_eval_item_result")]

    def __str__(self) -> str:
        return f"item {self.pk} of run {self.run_id}"

    @property
    def sides(self) -> tuple[str, str]:
        """(text shown as A, text shown as B)."""
        return (self.output, self.reference) if self.model_first else (self.reference, self.output)
