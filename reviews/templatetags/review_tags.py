from django import template

from annotate.models import Role
from reviews.models import ReasonCode
from reviews.services import review_stats as compute_review_stats

register = template.Library()


@register.inclusion_tag("reviews/_stats.html", takes_context=True)
def review_stats(context, task) -> dict:
    """The task page's review statistics, for its reviewers and leads: `{% review_stats task %}`.

    Computed here because the task page's view belongs to annotate; a fixed number of grouped queries.
    """
    roles = context.get("roles") or set()
    if not roles.intersection({Role.REVIEWER, Role.LEAD}):
        return {"show": False}
    return {"show": True, "task": task, "stats": compute_review_stats(task=task)}


@register.filter
def percent(value) -> str:
    """0.873 -> "87%"; None -> "–"."""
    return "–" if value is None else f"{round(value * 100)}%"


@register.filter
def reason_label(code: str) -> str:
    """The label of a reason code ("leak" -> "Answer leaked into prompt"); an unknown code as it is."""
    return ReasonCode(code).label if code in ReasonCode.values else code
