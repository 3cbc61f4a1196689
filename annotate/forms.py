import json

from django import forms
from django.core.exceptions import ValidationError

from . import schemas
from .limits import check_text, text_problem
from .models import EXPORT_KEEP_MAX, Kind, PromptTemplate, Role, Skip, Task
from .rendering import PRESETS, PROMPT_FIELDS, template_limits_error
from .services import task_slug_check
from .template_versions import labels_following


class NoColonMixin:
    """Labels without Django's trailing colon: cleaner, and what screen readers and tests look for."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


PRESET_CHOICES = [("", "— none —")] + [(key, value["title"]) for key, value in PRESETS.items()]
FIELD_NAMES = (*PROMPT_FIELDS, "output")


class LabelsField(forms.CharField):
    """Labels typed as a comma-separated list."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        return [label.strip() for label in text.split(",") if label.strip()]


class JSONTextField(forms.CharField):
    """A JSON Schema typed as JSON text; Task.clean checks it as a schema (annotate.schemas)."""

    widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"})

    def prepare_value(self, value):
        if value is None or isinstance(value, str):
            return value or ""
        return json.dumps(value, indent=2)

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if not text:
            return None
        try:
            # NaN or a number too large for a double would not survive the jsonb column; too deep a text is named
            # with the schema's own depth limit, not the parser's (a RecursionError in Python's json).
            return schemas.parse_json(text, max_depth=schemas.limit("JSON_SCHEMA_MAX_DEPTH"))
        except schemas.JSONProblem as problem:
            if problem.kind == "deep":
                raise ValidationError(f"The JSON Schema is {problem.reason}.") from None
            raise ValidationError(f"Not valid JSON: {problem.reason}.") from None


def _check_choices():
    from .quality import check_choices

    return check_choices()


class TaskForm(NoColonMixin, forms.ModelForm):
    labels = LabelsField(required=False, help_text="Comma-separated, for a label task.")
    blocking_checks = forms.MultipleChoiceField(
        choices=_check_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Ticked checks block a submission; the others only warn.",
    )
    json_schema = JSONTextField(required=False, label="JSON Schema", help_text="Optional, for a json task.")
    approvals_required = forms.TypedChoiceField(choices=[(1, "1 reviewer"), (2, "2 distinct reviewers")], coerce=int)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["export_keep_versions"].required = False  # left empty: unchanged (a new task: the default)
        self.fields["test_ratio"].required = False  # likewise
        targets = (self.instance.coverage_targets if self.instance and self.instance.pk else None) or {}
        for kind, label in Kind.choices:
            self.fields[f"target_{kind}"] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=99,
                label=f"Target share of “{label}” (%)",
                initial=round(targets[kind] * 100) if kind in targets else None,
            )

    def clean_export_keep_versions(self) -> int:
        value = self.cleaned_data.get("export_keep_versions")
        return self.instance.export_keep_versions if value is None else value

    def clean_test_ratio(self) -> float:
        value = self.cleaned_data.get("test_ratio")
        return self.instance.test_ratio if value is None else value

    def clean(self):
        data = super().clean()
        data["coverage_targets"] = {
            kind: data[f"target_{kind}"] / 100 for kind in Kind.values if data.get(f"target_{kind}")
        }
        return data

    def save(self, commit: bool = True):
        self.instance.coverage_targets = self.cleaned_data["coverage_targets"]
        return super().save(commit)

    class Meta:
        model = Task
        fields = [
            "name",
            "slug",
            "guidelines",
            "output_format",
            "labels",
            "json_schema",
            "system_prompt",
            "approvals_required",
            "self_review_allowed",
            "allow_new_examples",
            "chat_turns_editable",
            "asks_reasoning",
            "validation_ratio",
            "test_ratio",
            "split_seed",
            "blocking_checks",
            "input_reuse",
            "contamination_blocks",
            "export_keep_versions",
        ]
        widgets = {
            "guidelines": forms.Textarea(attrs={"rows": 10}),
            "system_prompt": forms.Textarea(attrs={"rows": 3}),
            "validation_ratio": forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "0.99"}),
            "test_ratio": forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "0.99"}),
            "export_keep_versions": forms.NumberInput(attrs={"min": "1", "max": str(EXPORT_KEEP_MAX)}),
        }
        help_texts = {  # the model's text names chat tasks only; tools tasks' earlier turns are editable too
            "chat_turns_editable": "In a chat or tools task, annotators may edit the earlier turns (a tools task's "
            "calls and tool results too), not only the final reply."
        }


class TaskCreateForm(TaskForm):
    preset = forms.ChoiceField(choices=PRESET_CHOICES, required=False, help_text="Starting point for the template.")

    class Meta(TaskForm.Meta):
        fields = [*TaskForm.Meta.fields, "preset"]

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        task_slug_check(slug=slug)  # ignoring case: the error names the slug taken, next to the field
        return slug


class TaskEditForm(TaskForm):
    class Meta(TaskForm.Meta):
        fields = [name for name in TaskForm.Meta.fields if name != "slug"]


class TemplateForm(NoColonMixin, forms.ModelForm):
    """The template, with each field's label and help as separate inputs, and sample values for the preview."""

    preset = forms.ChoiceField(choices=PRESET_CHOICES, required=False)

    class Meta:
        model = PromptTemplate
        fields = [
            "preset",
            "instruction_text",
            "prompt_format",
            "chat_user_format",
            "alpaca_input_format",
            "system_message",
        ]
        widgets = {
            "instruction_text": forms.Textarea(attrs={"rows": 2}),
            "prompt_format": forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
            "chat_user_format": forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
            "alpaca_input_format": forms.Textarea(attrs={"rows": 2, "class": "mono", "spellcheck": "false"}),
            "system_message": forms.Textarea(attrs={"rows": 2}),
        }

    # Exact text: a prompt format's trailing newline matters, and browsers send textareas with CRLF line ends.
    EXACT_TEXT = ("instruction_text", "prompt_format", "chat_user_format", "alpaca_input_format", "system_message")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in self.EXACT_TEXT:
            self.fields[name].strip = False
        current = (self.instance.fields if self.instance else None) or {}
        for name in FIELD_NAMES:
            self.fields[f"{name}_label"] = forms.CharField(
                max_length=60, initial=current.get(name, {}).get("label", name.title()), label=f"Label of “{name}”"
            )
            self.fields[f"{name}_help"] = forms.CharField(
                max_length=300,
                required=False,
                initial=current.get(name, {}).get("help", ""),
                label=f"Help for “{name}”",
            )

    def clean(self):
        data = super().clean()
        for name in self.EXACT_TEXT:
            if isinstance(data.get(name), str):
                data[name] = data[name].replace("\r\n", "\n")
                # Length and placeholders are limited: each placeholder copies a field into every record.
                error = template_limits_error(name, data[name])
                if error:
                    self.add_error(name, error)
        posted = {
            name: {"label": data.get(f"{name}_label", name.title()), "help": data.get(f"{name}_help", "")}
            for name in FIELD_NAMES
        }
        instance = self.instance if self.instance and self.instance.pk else None
        data["fields"] = labels_following(
            old_format=instance.prompt_format if instance else "",
            new_format=data.get("prompt_format") or "",
            old_fields=(instance.fields if instance else None) or {},
            posted_fields=posted,
        )
        return data

    def template_values(self) -> dict:
        keys = (
            "preset",
            "instruction_text",
            "prompt_format",
            "chat_user_format",
            "alpaca_input_format",
            "system_message",
        )
        return {**{k: self.cleaned_data[k] for k in keys}, "fields": self.cleaned_data["fields"]}


class PreviewSampleForm(NoColonMixin, forms.Form):
    def clean(self):
        data = super().clean()
        return {name: value.replace("\r\n", "\n") for name, value in data.items()}

    sample_instruction = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Instruction")
    sample_context = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Context")
    sample_input = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Input")
    sample_completion = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Completion")


class MemberAddForm(NoColonMixin, forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)
    create = forms.BooleanField(
        required=False,
        label="Create the account if there is none",
        help_text="You get a one-time link to send them: they choose their own password with it.",
    )


class MemberPickForm(forms.Form):
    user_id = forms.IntegerField(min_value=1, max_value=2**31 - 1)


class MemberRemoveForm(forms.Form):
    user_id = forms.IntegerField()
    role = forms.ChoiceField(choices=Role.choices)


CHAT_ROLES = ("system", "user", "assistant")


class CompletionForm(NoColonMixin, forms.Form):
    completion = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 12, "data-autosave": ""})
    )
    # Shown, and read, only in tasks that ask for the reasoning (Task.asks_reasoning); autosaved like the completion.
    reasoning = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 8, "data-autosave": ""}), label="Reasoning"
    )
    kind = forms.ChoiceField(choices=Kind.choices, widget=forms.RadioSelect)
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    # The editor's id (one per browser tab) and save number, set by editor.js (see annotate.revisions). A form sent
    # without script has neither and is judged by its version alone.
    client = forms.RegexField(
        regex=r"^[A-Za-z0-9_-]{1,40}$",
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "Not an editor id: 1 to 40 letters, digits, '-' or '_'."},
    )
    seq = forms.IntegerField(required=False, min_value=0, max_value=2**53, widget=forms.HiddenInput)

    def clean_completion(self) -> str:
        completion = self.cleaned_data["completion"].replace("\r\n", "\n")
        check_text(completion, label="the completion")  # as stored: browsers send CRLF line ends
        return completion

    def clean_reasoning(self) -> str:
        reasoning = self.cleaned_data["reasoning"].replace("\r\n", "\n")
        check_text(reasoning, label="the reasoning")
        return reasoning

    def turns(self) -> list[dict] | None:
        """The prior chat turns posted as turn-N-role / turn-N-content, or None when none were posted.

        Raise ValidationError naming the turn when a role is unknown or a content is empty. How many turns an example
        may hold, and how long each may be, the save checks (limits.check_prompt): every posted turn is read here,
        so none is dropped silently; the loop is bounded by the number of posted fields (Django's
        DATA_UPLOAD_MAX_NUMBER_FIELDS).
        """
        if "turn-0-role" not in self.data:
            return None
        turns = []
        for i in range(len(self.data)):
            role = self.data.get(f"turn-{i}-role")
            if role is None:
                break
            content = (self.data.get(f"turn-{i}-content") or "").replace("\r\n", "\n")
            if role not in CHAT_ROLES:
                raise ValidationError(f"Turn {i + 1}: unknown role {role!r}; use system, user or assistant.")
            if not content.strip():
                raise ValidationError(f"Turn {i + 1} ({role}) is empty.")
            turns.append({"role": role, "content": content})
        return turns


class SkipForm(NoColonMixin, forms.Form):
    reason = forms.ChoiceField(choices=Skip.Reason.choices, label="Why skip?")
    comment = forms.CharField(required=False, max_length=500)


class NewExampleForm(NoColonMixin, forms.Form):
    """A new example. Each text is held to the limits of any example (limits.py), as the service checks again."""

    instruction = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 3}))
    context = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3}))
    input = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3}))
    completion = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 8}))
    kind = forms.ChoiceField(choices=Kind.choices, widget=forms.RadioSelect)

    def __init__(self, *args, task, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        template = task.current_template
        for name in ("instruction", "context", "input"):
            self.fields[name].label = template.field_label(name)
            self.fields[name].help_text = (template.fields or {}).get(name, {}).get("help", "")
        self.fields["completion"].label = template.field_label("output")

    def clean(self):
        data = super().clean()
        data = {k: v.replace("\r\n", "\n") if isinstance(v, str) else v for k, v in data.items()}
        for name in ("instruction", "context", "input", "completion"):
            if isinstance(data.get(name), str) and (problem := text_problem(data[name])):
                self.add_error(name, f"The {name} {problem}.")  # counted as stored: browsers send CRLF line ends
        return data
