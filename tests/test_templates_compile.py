"""Every template of the project compiles: a tag left open (a merge that kept one `{% if %}` of two) fails here, at
once, rather than as a server error on the one page that includes it."""

from pathlib import Path

import pytest
from django.conf import settings
from django.template import TemplateSyntaxError
from django.template.loader import get_template

ROOT = Path(settings.BASE_DIR) / "templates"
TEMPLATES = sorted(str(path.relative_to(ROOT)) for path in ROOT.rglob("*.html"))


def test_the_project_has_templates():
    assert len(TEMPLATES) > 20


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_compiles(name):
    try:
        get_template(name)
    except TemplateSyntaxError as exc:
        pytest.fail(f"templates/{name} does not compile: {exc}")
