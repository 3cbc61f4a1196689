from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class ReasonCode(models.TextChoices):
    INACCURATE = "inaccurate", "Inaccurate"
    UNCLEAR = "unclear", "Unclear"
    FORMAT = "format", "Format"
    INCONSISTENT = "inconsistent", "Inconsistent"
    LEAK = "leak", "Answer leaked into prompt"
    OFF_TASK = "off_task", "Off task"
    UNSAFE = "unsafe", "Unsafe"
    DUPLICATE = "duplicate", "Duplicate"
    OTHER = "other", "Other"
    # Tools tasks (offered only there, first)
    WRONG_TOOL = "wrong_tool", "Wrong tool"
    WRONG_ARGUMENTS = "wrong_arguments", "Wrong arguments"
    SHOULD_NOT_CALL = "should_not_call", "Should not call a tool"
    MISSING_CALL = "missing_call", "Missing a tool call"


TOOL_REASONS = ("wrong_tool", "wrong_arguments", "should_not_call", "missing_call")


def reason_choices(output_format: str) -> list[tuple[str, str]]:
    """The reason codes a reviewer picks from on a task: a tools task's own first, others' without them."""
    choices = [(code, label) for code, label in ReasonCode.choices if code not in TOOL_REASONS]
    if output_format == "tools":
        return [(code, label) for code, label in ReasonCode.choices if code in TOOL_REASONS] + choices
    return choices


class Verdict(models.Model):
    """A reviewer's decision on one revision of an example. Immutable once written."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        FLAG = "flag", "Flag"
        REJECT = "reject", "Reject"

    example = models.ForeignKey("annotate.Example", models.CASCADE, related_name="verdicts")
    revision = models.ForeignKey("annotate.Revision", models.PROTECT, related_name="verdicts")
    example_version = models.PositiveIntegerField(help_text="The example's version the reviewer judged.")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="verdicts")
    decision = models.CharField(max_length=7, choices=Decision)
    reasons = models.JSONField(default=list, blank=True, help_text="Reason codes.")
    comment = models.TextField(blank=True)
    in_triage = models.BooleanField(
        default=False, db_default=False, help_text="Decided in triage (settles a split or a flag): not a review."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["example", "created_at", "id"]
        indexes = [
            models.Index(fields=["example", "id"], name="reviews_verdict_example"),
            models.Index(fields=["reviewer", "created_at"], name="reviews_verdict_reviewer"),
            models.Index(fields=["example", "example_version", "reviewer"], name="reviews_verdict_version"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.reviewer} on {self.example_id}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError("A verdict is immutable; record a new one instead.")
        super().save(*args, **kwargs)

    def clean(self) -> None:
        unknown = [r for r in self.reasons or [] if r not in ReasonCode.values]
        if unknown:
            raise ValidationError({"reasons": f"Unknown reason code(s): {', '.join(map(str, unknown))}"})
        if self.decision in (self.Decision.FLAG, self.Decision.REJECT) and not self.reasons:
            raise ValidationError({"reasons": "A flag or a rejection needs at least one reason."})

    def delete(self, *args, **kwargs):
        raise ValidationError("A verdict is immutable and is never deleted.")
