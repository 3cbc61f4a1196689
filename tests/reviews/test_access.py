"""Every reviews URL: anonymous -> login, outsider -> 404, annotator only -> 403, reviewer and lead allowed;
an example of another task -> 404."""

import pytest
from django.urls import reverse

from annotate.models import Example
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db

# name: (methods, takes an example uuid). "next" and "review" also take POST: it leases the pair.
URLS = {
    "reviews:queue": (("get",), False),
    "reviews:next": (("get", "post"), False),
    "reviews:previous": (("get",), False),
    "reviews:review": (("get", "post"), True),
    "reviews:decide": (("post",), True),
    "reviews:triage": (("get",), False),
    "reviews:triage_act": (("post",), False),
    "reviews:example": (("get",), True),
}


def url_for(name, task, example):
    return reverse(name, args=[task.slug, example.uuid] if URLS[name][1] else [task.slug])


class Answers(list):
    """The responses to each of the URL's methods; `status_code` is their one status (a mix fails the test)."""

    @property
    def status_code(self) -> int:
        codes = {response.status_code for response in self}
        assert len(codes) == 1, codes
        return codes.pop()

    @property
    def url(self) -> str:
        urls = {response.url for response in self}
        assert len(urls) == 1, urls
        return urls.pop()


def call(client, name, url) -> Answers:
    data = {"decision": "approve", "version": 1}
    return Answers(client.get(url) if method == "get" else client.post(url, data) for method in URLS[name][0])


@pytest.mark.parametrize("name", URLS)
def test_anonymous_is_sent_to_login(client, task, example, name):
    response = call(client, name, url_for(name, task, example))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert Example.objects.get(pk=example.pk).claimed_by is None


@pytest.mark.parametrize("name", URLS)
def test_outsider_gets_404(client, task, example, outsider, name):
    client.force_login(outsider)  # lead, reviewer and annotator of another task
    assert call(client, name, url_for(name, task, example)).status_code == 404
    assert Example.objects.get(pk=example.pk).claimed_by is None


@pytest.mark.parametrize("name", [n for n in URLS if n != "reviews:example"])
def test_an_annotator_without_the_reviewer_role_gets_403(client, task, example, annotator, name):
    client.force_login(annotator)
    response = call(client, name, url_for(name, task, example))
    assert response.status_code == 403
    assert example.verdicts.count() == 0
    assert Example.objects.get(pk=example.pk).claimed_by is None


@pytest.mark.parametrize("persona", ["reviewer", "lead", "staff"])
@pytest.mark.parametrize("name", URLS)
def test_reviewers_leads_and_staff_are_allowed(client, request, task, example, name, persona):
    client.force_login(request.getfixturevalue(persona))
    assert {r.status_code for r in call(client, name, url_for(name, task, example))} <= {200, 302}


@pytest.mark.parametrize("name", [n for n in URLS if URLS[n][1]])
def test_an_example_of_another_task_is_404(client, task, other_task, reviewer, name):
    elsewhere = ExampleFactory(task=other_task, status="submitted", completion="x")
    client.force_login(reviewer)
    assert call(client, name, reverse(name, args=[task.slug, elsewhere.uuid])).status_code == 404
    assert elsewhere.verdicts.count() == 0
    assert Example.objects.get(pk=elsewhere.pk).claimed_by is None


def test_the_timeline_is_the_authors_and_no_other_annotators(client, task, example, annotator, other_annotator):
    url = reverse("reviews:example", args=[task.slug, example.uuid])
    client.force_login(annotator)
    assert client.get(url).status_code == 200
    client.force_login(other_annotator)
    assert client.get(url).status_code == 404
