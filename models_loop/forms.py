from django import forms
from django.contrib.auth import get_user_model

from annotate.models import Role, Task

from .evaluation import CHOICES, REASONS
from .models import TaskModelSettings
from .prompts import MAX_PROMPT_CHARS


class ModelSettingsForm(forms.ModelForm):
    class Meta:
        model = TaskModelSettings
        fields = ["drafts_enabled", "judge_enabled", "model_name", "draft_prompt", "judge_prompt", "drafts_hidden_from"]
        labels = {
            "drafts_enabled": "Drafts on",
            "judge_enabled": "Judge on",
            "drafts_hidden_from": "Hide drafts from",
        }
        widgets = {
            "draft_prompt": forms.Textarea(attrs={"rows": 8, "maxlength": MAX_PROMPT_CHARS}),
            "judge_prompt": forms.Textarea(attrs={"rows": 8, "maxlength": MAX_PROMPT_CHARS}),
            "drafts_hidden_from": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, task: Task, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        annotators = get_user_model().objects.filter(memberships__task=task, memberships__role=Role.ANNOTATOR)
        self.fields["drafts_hidden_from"].queryset = annotators.distinct().order_by("username")
        # The limits are the service's (it names them); the form only trims what the browser sent.
        self.fields["draft_prompt"].strip = False
        self.fields["judge_prompt"].strip = False

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields if name != "drafts_hidden_from"}


class EvaluationStartForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="The model or checkpoint evaluated, e.g. llama-3-8b-ft-v2.")
    export = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Test split of",
        help_text="The export whose held-out test split the model answers.",
    )  # fmt: skip
    model = forms.CharField(
        max_length=200, required=False, label="Model at the endpoint",
        help_text="Empty: the task's model. Ignored when a file of outputs is given.",
    )  # fmt: skip
    outputs = forms.FileField(
        required=False, label="Outputs file (JSONL)",
        help_text='Instead of the endpoint: one {"id" or "uuid", "output"} a line, for every test example.',
    )  # fmt: skip

    def __init__(self, *args, exports, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = [
            (e.version, f"v{e.version} ({e.files.get('test.jsonl', {}).get('records', 0)} test)") for e in exports
        ]
        self.fields["export"].choices = [("", "The latest with a test split"), *choices]

    def clean_outputs(self):
        upload = self.cleaned_data.get("outputs")
        if upload and upload.size > WEB_MAX_OUTPUTS_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; the limit here is {WEB_MAX_OUTPUTS_BYTES:,} (the evaluate "
                "command takes larger files)."
            )
        return upload


WEB_MAX_OUTPUTS_BYTES = 20 * 1024**2


class ItemVerdictForm(forms.Form):
    choice = forms.ChoiceField(choices=list(CHOICES.items()), error_messages={"required": "Choose A, B or same."})
    reasons = forms.MultipleChoiceField(choices=REASONS, required=False)
    comment = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}))
