from django import template

from annotate.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str):
    return render_markdown(text)


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def field_label(template, name: str) -> str:
    """The label a template gives one of its fields: {{ template|field_label:"output" }}."""
    return template.field_label(name) if template is not None else name.title()


@register.filter
def example_name(example) -> str:
    """How people name an example: its external id when it has one (seed_task_31), else the start of its UUID."""
    external = getattr(example, "external_id", "")
    return external or f"{str(example.uuid)[:8]}…"


@register.filter
def check_title(code: str) -> str:
    """A quality check's name for people ("Unusual sign-off"), never its code: {{ warning.code|check_title }}."""
    from annotate.overrides import check_title as title

    return title(str(code))
