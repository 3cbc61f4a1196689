from django import forms
from django.contrib.auth import get_user_model

from annotate.models import Role, Task

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
