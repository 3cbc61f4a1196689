"""The lead's page for a tools task's tool set: edit the JSON (or read it from a file), checked before it is saved;
saved as the template's next version once examples use the current one (annotate/template_versions.py)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpRequest as HtmxHttpRequest

from . import services
from .access import task_role
from .forms_tools import ToolSetForm
from .models import OutputFormat, Role, Task


@task_role(Role.LEAD)
@require_http_methods(["GET", "POST"])
def tools_edit(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    if task.output_format != OutputFormat.TOOLS:
        raise Http404("Only a tool-calling task has a tool set.")
    template = task.current_template
    initial = {"tools": template.tools or "[]", "parallel_tool_calls": template.parallel_tool_calls}
    form = ToolSetForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        values = {"tools": form.cleaned_data["tools"], "parallel_tool_calls": form.cleaned_data["parallel_tool_calls"]}
        try:
            saved = services.template_save(task=task, values=values, user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if saved.version != template.version:
                messages.success(request, f"Tool set saved as template version {saved.version}: version "
                                          f"{template.version} is used by examples and keeps its tools.")  # fmt: skip
            else:
                messages.success(request, f"Tool set saved (template version {saved.version}).")
            return redirect("annotate:tools_edit", task.slug)
    return render(request, "annotate/tools_edit.html", {"task": task, "template": template, "form": form})
