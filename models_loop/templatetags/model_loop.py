"""What the pages of other apps show about the model, through small included partials (templates/models_loop/_*.html):
the draft marker in the editor, the judge's advice on the review page, the task page's panel, the dashboard's figures.
"""

from django import template

from annotate.access import roles_on
from annotate.models import Example, Revision, Role

from .. import conf, stats
from ..drafts import drafts_hidden_for, unedited_draft
from ..models import DraftEdit, Judgement, ModelRun, TaskModelSettings

register = template.Library()


@register.simple_tag
def draft_marker(example: Example, user) -> Revision | None:
    """`{% draft_marker example user as draft %}`: the unedited model draft in the editor's box, if it is one."""
    draft = unedited_draft(example)
    if draft is None or drafts_hidden_for(example, user):
        return None
    return draft


@register.simple_tag
def model_advice(example: Example) -> dict:
    """`{% model_advice example as advice %}`: the judge's latest judgement of the example (and whether it is about
    the text shown), and how the annotator changed a model draft, for the review page."""
    judgement = Judgement.objects.filter(example_id=example.pk).select_related("revision").order_by("-id").first()
    edit = DraftEdit.objects.filter(example_id=example.pk).order_by("-id").first()
    return {
        "judgement": judgement,
        "current": judgement is not None and judgement.revision.text == example.completion,
        "edit": edit,
    }


@register.simple_tag(takes_context=True)
def model_panel(context, task) -> dict:
    """`{% model_panel task as panel %}`: the task page's model section, for leads and reviewers."""
    request = context["request"]
    roles = context.get("roles") or roles_on(request.user, task)
    lead = Role.LEAD in roles
    if not (lead or Role.REVIEWER in roles):
        return {"show": False}
    row = TaskModelSettings.objects.filter(task=task).first()
    run = judge_run = None
    if lead and row is not None and row.drafts_enabled:
        run = task.model_runs.filter(kind=ModelRun.Kind.DRAFT, example__isnull=True).order_by("-id").first()
    if lead and row is not None and row.judge_enabled:
        judge_run = task.model_runs.filter(kind=ModelRun.Kind.JUDGE, example__isnull=True).order_by("-id").first()
    judging = (row is not None and row.judge_enabled) or _judged(task)
    agreement = stats.judge_agreement(task) if judging else None
    return {
        "show": True, "lead": lead, "on": conf.is_on(), "off_message": conf.OFF_MESSAGE, "row": row, "run": run,
        "judge_run": judge_run, "agreement": agreement,
    }  # fmt: skip


def _judged(task) -> bool:
    return Judgement.objects.filter(example__task=task).exists()


@register.simple_tag
def model_dashboard(task) -> dict:
    """`{% model_dashboard task as figures %}`: spend, drafts accepted unchanged / lightly edited / rewritten per
    kind, and the judge's agreement with reviewers."""
    return {
        "on": conf.is_on(),
        "spend": stats.spend(task),
        "edits": stats.draft_edits(task),
        "agreement": stats.judge_agreement(task),
        "off_message": conf.OFF_MESSAGE,
    }


@register.filter
def share(value) -> str:
    """0.4567 -> "46%"; None -> "—"."""
    return "—" if value is None else f"{round(100 * value)}%"


@register.filter
def interval(ci) -> str:
    """(0.31, 0.52) -> "31–52%"."""
    return "—" if not ci else f"{round(100 * ci[0])}–{round(100 * ci[1])}%"


@register.filter
def add_overall(kinds: list, overall: dict) -> list:
    """The per-kind rows then the overall one, for _eval_table.html."""
    return [*kinds, overall]


@register.filter
def compare_rows(compare: dict) -> list:
    return [compare["first"], compare["second"]]
