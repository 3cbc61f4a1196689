"""The lead's tool set form: the JSON of the function definitions (typed, pasted or read from a file in the browser)
and whether one turn may call several functions."""

from django import forms

from .forms import NoColonMixin
from .tools import MAX_TOOLS, parse_toolset, tools_text

MAX_TOOLS_TEXT = MAX_TOOLS * 64 * 1024  # each function's parameters are a JSON Schema of at most 64 KiB


class ToolSetForm(NoColonMixin, forms.Form):
    tools = forms.CharField(
        label="Tool set (JSON)",
        max_length=MAX_TOOLS_TEXT,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18, "class": "mono", "spellcheck": "false", "data-tools-json": ""}),
        help_text="A JSON array of OpenAI function definitions: "
        '[{"type": "function", "function": {"name", "description", "parameters": <JSON Schema>}}].',
    )
    parallel_tool_calls = forms.BooleanField(
        label="One turn may call several functions at once (parallel calls)", required=False
    )

    def clean_tools(self) -> str:
        try:
            return tools_text(parse_toolset(self.cleaned_data["tools"]))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
