from django import template

from annotate.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str):
    return render_markdown(text)


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)
