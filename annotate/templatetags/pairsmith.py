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
