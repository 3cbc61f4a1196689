"""A lead's discard of a broken draft, posted from the example's timeline (the service: reviews/discard.py)."""

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest

from annotate.access import task_role
from annotate.models import Role, Task
from pairsmith.ratelimit import rate_limited

from .discard import discard_outcome, example_discard, last_good_revision
from .forms import DiscardForm
from .views import _example


@task_role(Role.LEAD)
@require_POST
@rate_limited("write")
def discard(request: HtmxHttpRequest, uuid: UUID, *, task: Task) -> HttpResponse:
    """Set aside the draft of a draft or flagged example; back to its timeline with what happened (or why not)."""
    example = _example(task, uuid)
    form = DiscardForm(request.POST)
    if not form.is_valid():
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
        messages.error(request, "Nothing was discarded: " + " ".join(errors))
        return redirect("reviews:example", task.slug, example.uuid)
    good = last_good_revision(example)
    try:
        example_discard(
            example=example, actor=request.user, expected_version=form.cleaned_data["version"],
            note=form.cleaned_data["note"],
        )  # fmt: skip
    except ValidationError as exc:
        messages.error(request, "Nothing was discarded: " + " ".join(exc.messages))
    else:
        messages.success(request, f"Draft discarded. {discard_outcome(example, good)}")
    return redirect("reviews:example", task.slug, example.uuid)
