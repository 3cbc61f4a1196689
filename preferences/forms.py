from django import forms

from .checks import CHECKS
from .models import Choice, Reason, Source


class PairFilterForm(forms.Form):
    """The pairs list's filters: allow-lists only (never user strings into lookups)."""

    check = forms.ChoiceField(label="Check", choices=[("", "Any")] + list(CHECKS.items()), required=False)
    source = forms.ChoiceField(label="Source", choices=[("", "Any")] + Source.choices, required=False)
    reviewed = forms.ChoiceField(
        label="Reviewed", choices=[("", "Any"), ("yes", "Reviewed"), ("no", "Waiting for review")], required=False
    )
    # One pair, by its UUID: where an export's changes link a pair (pairs have no page of their own).
    pair = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def values(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v} if self.is_valid() else {}


class JudgementForm(forms.Form):
    comparison = forms.UUIDField(widget=forms.HiddenInput)
    left = forms.ChoiceField(choices=[("a", "a"), ("b", "b")], widget=forms.HiddenInput)
    pick = forms.ChoiceField(
        choices=[("left", "A is better"), ("right", "B is better"), ("both_bad", "Both bad")],
        widget=forms.RadioSelect,
        error_messages={"required": "Pick A, B or both bad."},
    )
    reasons = forms.MultipleChoiceField(choices=Reason.choices, widget=forms.CheckboxSelectMultiple, required=False)
    comment = forms.CharField(max_length=1000, required=False, widget=forms.TextInput)
    better = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 6}))


class TriageDecideForm(forms.Form):
    comparison = forms.UUIDField(widget=forms.HiddenInput)
    choice = forms.ChoiceField(choices=Choice.choices)
    better = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 4}))
