"""What an annotator sees of a model draft: whether the text in the box is still the model's, and hiding drafts from
the annotators a task keeps as a comparison group."""

from annotate.models import Example, Revision

from .models import TaskModelSettings


def drafts_hidden_for(example: Example, user) -> bool:
    """Whether `user` is one of the annotators the task hides drafts from."""
    return TaskModelSettings.objects.filter(task_id=example.task_id, drafts_hidden_from=user.pk).exists()


def unedited_draft(example: Example) -> Revision | None:
    """The model draft that the example's current text still is, word for word; None when a person changed it (or
    the example is past drafting)."""
    if not example.completion or example.status not in (Example.Status.NEW, Example.Status.DRAFT):
        return None
    draft = (
        Revision.objects.filter(example_id=example.pk, reason=Revision.Reason.MODEL_DRAFT)
        .order_by("-id")
        .only("id", "text", "model_name", "created_at")
        .first()
    )
    return draft if draft is not None and draft.text == example.completion else None


def shown_completion(example: Example, user) -> str:
    """The text the editor opens with: the completion, or an empty box for an annotator the task hides drafts from
    while the completion is still the model's draft."""
    if example.completion and unedited_draft(example) is not None and drafts_hidden_for(example, user):
        return ""
    return example.completion
