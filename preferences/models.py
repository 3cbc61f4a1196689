"""Preference pairs: for one prompt, a chosen and a rejected completion, from an import, from people's comparison of
two candidates (shown blind, in random order), or from a reviewer's edit (the submitted text rejected, the edited
text chosen). Only reviewed pairs are exported (formats trl-preference and openai-preference)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Source(models.TextChoices):
    IMPORT = "import", "Imported"
    COMPARISON = "comparison", "Comparison"
    EDIT = "edit", "Reviewer's edit"


class PromptFields(models.Model):
    """The prompt of a pair or a comparison, as an example holds it: the fields its template renders, and the prior
    chat turns (the user's last message is the instruction)."""

    task = models.ForeignKey("annotate.Task", models.CASCADE, related_name="+")
    template = models.ForeignKey("annotate.PromptTemplate", models.PROTECT, related_name="+")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(max_length=200, blank=True)
    instruction = models.TextField(blank=True)
    context = models.TextField(blank=True)
    input = models.TextField(blank=True)
    messages = models.JSONField(default=list, blank=True, help_text="Prior chat turns: [{role, content}, ...].")
    prompt_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @property
    def fields(self) -> dict[str, str]:
        return {"instruction": self.instruction, "context": self.context, "input": self.input}


class PairQuerySet(models.QuerySet):
    def reviewed(self) -> "PairQuerySet":
        return self.filter(reviewed=True)


class PreferencePair(PromptFields):
    task = models.ForeignKey("annotate.Task", models.CASCADE, related_name="preference_pairs")
    chosen = models.TextField()
    rejected = models.TextField()
    source = models.CharField(max_length=10, choices=Source)
    reviewed = models.BooleanField(default=False, help_text="Only reviewed pairs are exported.")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    example = models.ForeignKey(
        "annotate.Example", models.CASCADE, null=True, blank=True, related_name="preference_pairs",
        help_text="The example whose reviewer edit made this pair (source edit).",
    )  # fmt: skip
    comparison = models.ForeignKey(
        "preferences.Comparison", models.SET_NULL, null=True, blank=True, related_name="pairs"
    )
    change = models.FloatField(
        null=True, blank=True, help_text="Source edit: the share of the submitted text's word pairs the edit changed."
    )
    checks = models.CharField(
        max_length=100, blank=True, default="", help_text="The checks it fails, as ,identical,short, (checks.py)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = PairQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task", "external_id"], condition=~Q(external_id=""), name="preferences_pair_external_id"
            ),
            models.UniqueConstraint(fields=["example"], condition=Q(source="edit"), name="preferences_one_edit_pair"),
            models.CheckConstraint(
                condition=~Q(source="edit") | Q(example__isnull=False), name="preferences_edit_has_example"
            ),
        ]
        # The export reads a task's reviewed pairs in id order.
        indexes = [models.Index(fields=["task", "id"], condition=Q(reviewed=True), name="preferences_reviewed")]

    def __str__(self) -> str:
        return self.external_id or str(self.uuid)


class Comparison(PromptFields):
    """Two candidate completions for one prompt, for people to compare. Each judgement shows them in its own random
    order (recorded on the judgement); the task's approvals required say how many judgements decide it. Agreeing
    judgements make it decided (and make its pairs); a split goes to triage, where a lead decides."""

    class State(models.TextChoices):
        OPEN = "open", "Waiting for judgements"
        DECIDED = "decided", "Decided"
        SPLIT = "split", "Split: in triage"

    task = models.ForeignKey("annotate.Task", models.CASCADE, related_name="comparisons")
    candidate_a = models.TextField()
    candidate_b = models.TextField()
    state = models.CharField(max_length=8, choices=State, default=State.OPEN)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The lead who decided a split in triage (empty when the judgements agreed).",
    )  # fmt: skip
    outcome = models.CharField(max_length=8, blank=True, help_text="a, b or both_bad, once decided.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task", "external_id"], condition=~Q(external_id=""), name="preferences_comparison_external_id"
            ),
        ]
        indexes = [models.Index(fields=["task", "state", "id"], name="preferences_comparison_state")]

    def __str__(self) -> str:
        return self.external_id or str(self.uuid)

    def candidate(self, side: str) -> str:
        return self.candidate_a if side == "a" else self.candidate_b


class Choice(models.TextChoices):
    A = "a", "Candidate A"
    B = "b", "Candidate B"
    BOTH_BAD = "both_bad", "Both bad"


class Reason(models.TextChoices):
    ACCURATE = "accurate", "More accurate"
    FOLLOWS = "follows", "Follows the instruction better"
    CLEARER = "clearer", "Clearer"
    CONCISE = "concise", "More concise"
    SAFER = "safer", "Safer"
    FORMAT = "format", "Better format"
    OTHER = "other", "Other"


class Judgement(models.Model):
    """One person's judgement of a comparison: immutable. `left` records the blind order it was shown in (which
    candidate was on the left); `choice` is in candidates' terms (a, b), not sides."""

    comparison = models.ForeignKey(Comparison, models.CASCADE, related_name="judgements")
    judge = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    left = models.CharField(max_length=1, choices=[("a", "A on the left"), ("b", "B on the left")])
    choice = models.CharField(max_length=8, choices=Choice)
    reasons = models.JSONField(default=list, blank=True)
    comment = models.CharField(max_length=1000, blank=True)
    better = models.TextField(blank=True, help_text="Both bad: the better completion the judge wrote.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "judge"], name="preferences_one_judgement_each"),
            models.CheckConstraint(
                condition=~Q(choice="both_bad") | ~Q(better=""), name="preferences_both_bad_has_better"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge_id} on {self.comparison_id}: {self.choice}"
