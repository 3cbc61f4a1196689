from django import forms

from annotate.forms import NoColonMixin
from annotate.models import Kind

from .models import EXPORT_FORMATS, ExportChange


class ExportForm(NoColonMixin, forms.Form):
    export_format = forms.ChoiceField(label="Format", choices=EXPORT_FORMATS, initial="openai-chat")
    validation_ratio = forms.FloatField(
        label="Validation share",
        min_value=0,
        max_value=0.99,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    test_ratio = forms.FloatField(
        label="Test share",
        min_value=0,
        max_value=0.99,
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    max_length = forms.IntegerField(
        label="Maximum length",
        min_value=1,
        max_value=10_000_000,
        required=False,
        help_text="Tokens; the trainer truncates longer examples (TRL's default: 1024).",
    )
    kinds = forms.MultipleChoiceField(
        label="Kinds",
        choices=Kind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Leave all unticked to export every kind.",
    )

    pairs_from_edits = forms.BooleanField(
        label="Pairs from reviewers' edits",
        required=False,
        help_text="Preference formats: each example approved after a reviewer's edit gives a pair (the submitted "
        "text rejected, the approved text chosen).",
    )
    min_change = forms.FloatField(
        label="Least change of an edit",
        min_value=0,
        max_value=1,
        required=False,
        initial=0.1,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text="Share of the submitted text's word pairs the edit changed (0 to 1): leaves typo fixes out.",
    )

    def clean(self) -> dict:
        data = super().clean()
        validation, test = data.get("validation_ratio"), data.get("test_ratio")
        if validation is not None and test is not None and not test < 1 - validation:
            self.add_error(
                "test_ratio", "The validation and test shares add up to 1 or more: nothing would be left to train on."
            )
        return data


class TokenizerForm(NoColonMixin, forms.Form):
    tokenizer = forms.FileField(label="tokenizer.json", widget=forms.ClearableFileInput(attrs={"accept": ".json"}))
    config = forms.FileField(label="tokenizer_config.json", widget=forms.ClearableFileInput(attrs={"accept": ".json"}))


class TokenForm(NoColonMixin, forms.Form):
    name = forms.CharField(
        label="Token name", max_length=100, help_text="What it is for, e.g. “nightly training pipeline”."
    )


class ChangeFilterForm(forms.Form):
    """The version page's change list: which kind of change (an allow-list), which page."""

    change = forms.ChoiceField(choices=[("", "All")] + ExportChange.Change.choices, required=False)
    page = forms.IntegerField(min_value=1, required=False)
