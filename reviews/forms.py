from uuid import UUID

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from annotate.forms import NoColonMixin
from annotate.models import Kind

from .discard import NOTE_MAX
from .models import ReasonCode
from .services import ORDERINGS, QueueFilters

KIND_CHOICES = [("", "Any kind"), *Kind.choices]
DATE = forms.DateInput(attrs={"type": "date"})


def warning_choices() -> list[tuple[str, str]]:
    """The quality checks stored per example (not the task-wide summaries), for the warning filter."""
    from annotate.quality import CHECKS

    return [("", "Any or none")] + [(c.code, c.title) for c in CHECKS.values() if c.scope != "summary"]


class QueueFilterForm(NoColonMixin, forms.Form):
    """The queue's filters, from the query string. Invalid values are dropped, never passed to a query."""

    annotator = forms.IntegerField(required=False, min_value=1, widget=forms.Select)
    kind = forms.ChoiceField(choices=KIND_CHOICES, required=False)
    warning = forms.ChoiceField(label="Quality warning", required=False)
    submitted_from = forms.DateField(label="Submitted from", required=False, widget=DATE)
    submitted_to = forms.DateField(label="to", required=False, widget=DATE)
    order = forms.ChoiceField(choices=list(ORDERINGS.items()), required=False)

    def __init__(self, *args, annotators=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["warning"].choices = warning_choices()
        self.fields["annotator"].widget.choices = [("", "Anyone")] + [(u.pk, u.username) for u in annotators]

    @classmethod
    def from_querystring(cls, text: str) -> "QueueFilterForm":
        return cls(QueryDict(text[:1000]))

    def filters(self) -> QueueFilters:
        self.is_valid()
        data = self.cleaned_data  # only the fields that validated
        return QueueFilters(
            author_id=data.get("annotator") or None,
            kind=data.get("kind") or "",
            warning=data.get("warning") or "",
            submitted_from=data.get("submitted_from"),
            submitted_to=data.get("submitted_to"),
            order=data.get("order") or "oldest",
        )


class VerdictForm(forms.Form):
    """A reviewer's decision. "edit" is an approval carrying the reviewer's corrected completion."""

    DECISIONS = [("approve", "Approve"), ("flag", "Flag"), ("reject", "Reject"), ("edit", "Edit and approve")]

    decision = forms.ChoiceField(choices=DECISIONS)
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    reasons = forms.MultipleChoiceField(choices=ReasonCode.choices, required=False)
    comment = forms.CharField(required=False, max_length=2000)
    completion = forms.CharField(required=False, strip=False)
    # Posted only where the edit panel shows the reasoning (tasks that ask for it, or an example that has one).
    reasoning = forms.CharField(required=False, strip=False)
    kind = forms.ChoiceField(choices=Kind.choices, required=False)
    queue = forms.CharField(required=False, max_length=1000)

    def clean(self) -> dict:
        data = super().clean()
        decision = data.get("decision")
        if decision in ("flag", "reject") and not data.get("reasons"):
            self.add_error("reasons", "Choose at least one reason (number keys 1–9).")
        if decision == "edit" and not (data.get("completion") or "").strip():
            self.add_error("completion", "The edited completion is empty.")
        return data

    def service_arguments(self) -> dict:
        """The keyword arguments of services.verdict_record."""
        data = self.cleaned_data
        edit = data["decision"] == "edit"
        return {
            "decision": "approve" if edit else data["decision"],
            "version": data["version"],
            "reasons": data["reasons"] if data["decision"] in ("flag", "reject") else [],
            "comment": data["comment"],
            "completion": data["completion"] if edit else None,
            "kind": (data["kind"] or None) if edit else None,
            # Absent (not shown): None keeps the example's reasoning; posted empty: "", refused where it is asked for.
            "reasoning": data["reasoning"] if edit and "reasoning" in self.data else None,
        }


class DiscardForm(forms.Form):
    """A lead's discard of a draft: the version they saw, and why (shown in the timeline)."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    note = forms.CharField(required=False, max_length=NOTE_MAX)


class UUIDListField(forms.Field):
    """Example ids posted by the triage checkboxes."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[UUID]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        try:
            return [UUID(str(v)) for v in values[:1000]]
        except ValueError as exc:
            raise ValidationError("Not an example id.") from exc


class TriageFilterForm(NoColonMixin, forms.Form):
    STATES = [("", "All"), ("flagged", "Flagged"), ("rejected", "Rejected"), ("split", "Reviewers disagree")]

    state = forms.ChoiceField(choices=STATES, required=False)
    annotator = forms.IntegerField(required=False, min_value=1, widget=forms.Select)
    reason = forms.ChoiceField(choices=[("", "Any reason"), *ReasonCode.choices], required=False)
    kind = forms.ChoiceField(choices=KIND_CHOICES, required=False)

    def __init__(self, *args, annotators=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["annotator"].widget.choices = [("", "Anyone")] + [(u.pk, u.username) for u in annotators]

    def values(self) -> dict:
        self.is_valid()
        return {name: self.cleaned_data.get(name) for name in self.fields if self.cleaned_data.get(name)}


class TriageActionForm(NoColonMixin, forms.Form):
    ACTIONS = [
        ("send_back", "Send back to the annotator"),
        ("reject", "Reject"),
        ("reassign", "Reassign to another annotator"),
        ("approve", "Approve (split decisions only)"),
    ]

    action = forms.ChoiceField(choices=ACTIONS)
    uuids = UUIDListField(required=False)
    reasons = forms.MultipleChoiceField(choices=ReasonCode.choices, required=False, widget=forms.CheckboxSelectMultiple)
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    annotator = forms.ModelChoiceField(queryset=None, required=False, empty_label="— choose —")

    def __init__(self, *args, annotators, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["annotator"].queryset = annotators

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("uuids") and "uuids" not in self.errors:
            self.add_error("uuids", "Select at least one example.")
        if data.get("action") in ("send_back", "reject") and not data.get("reasons"):
            self.add_error("reasons", "Choose at least one reason.")
        if data.get("action") == "reassign" and not data.get("annotator"):
            self.add_error("annotator", "Choose the annotator to give the examples to.")
        return data
