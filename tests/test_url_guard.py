"""Every URL of the project, taken from the resolver (so a new view cannot escape): anonymous users are sent to log
in (or refused), and a member of another task never gets anything of this task."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
PUBLIC = {"login", "logout", "healthz"}


def _patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith("admin/"):
                continue  # Django's admin has its own staff checks
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), f"{namespace}{entry.name}" if entry.name else None


def _url(route: str, task, example) -> str:
    values = {"slug": task.slug, "uuid": str(example.uuid), "pk": "1", "version": "1", "name": "status",
              "file": "train.jsonl", "filename": "train.jsonl"}  # fmt: skip
    out = route
    for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", route):
        value = values.get(name, "1" if converter == "int" else "x")
        out = re.sub(rf"<(?:\w+:)?{name}>", value, out, count=1)
    return "/" + out.replace("^", "").replace("$", "")


ROUTES = [(route, name) for route, name in _patterns() if (name or "").split(":")[-1] not in PUBLIC]


@pytest.mark.parametrize(("route", "name"), ROUTES, ids=[name or route for route, name in ROUTES])
def test_anonymous_users_get_nothing(client, task, route, name):
    url = _url(route, task, ExampleFactory(task=task))
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code in (302, 401, 403, 404, 405), (url, method, response.status_code)
        if response.status_code == 302:
            assert response.url.startswith("/login/"), (url, response.url)


@pytest.mark.parametrize(("route", "name"), [r for r in ROUTES if "<slug:slug>" in r[0] or "<slug>" in r[0]])
def test_a_member_of_another_task_gets_404_for_everything_of_this_task(client, task, outsider, route, name):
    url = _url(route, task, ExampleFactory(task=task))
    client.force_login(outsider)
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code in (401, 403, 404, 405), (url, response.status_code)
        assert response.status_code != 403 or "/api/" in url, f"{url}: 403 tells an outsider the task exists"


def test_every_route_is_checked():
    names = {name for _, name in ROUTES}
    assert "annotate:edit" in names and "annotate:dashboard" in names
    assert len(ROUTES) >= 15
