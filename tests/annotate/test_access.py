"""Every view checks the user's role on that task: anonymous -> login, outsider -> 404, wrong role -> 403."""

import pytest
from django.urls import reverse

from annotate.models import Role

pytestmark = pytest.mark.django_db

TASK_VIEWS = {
    # name: (methods, roles allowed)
    "annotate:task_detail": (["get"], {Role.ANNOTATOR, Role.REVIEWER, Role.LEAD}),
    "annotate:task_edit": (["get", "post"], {Role.LEAD}),
    "annotate:template_edit": (["get", "post"], {Role.LEAD}),
    "annotate:template_preview": (["post"], {Role.LEAD}),
    "annotate:members": (["get", "post"], {Role.LEAD}),
}
PERSONAS = ["annotator", "reviewer", "lead"]


def _call(client, method: str, url: str):
    return client.get(url) if method == "get" else client.post(url, {})


@pytest.mark.parametrize("name", TASK_VIEWS)
def test_anonymous_is_sent_to_login(client, task, name):
    for method in TASK_VIEWS[name][0]:
        response = _call(client, method, reverse(name, args=[task.slug]))
        assert response.status_code == 302, (name, method)
        assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", TASK_VIEWS)
def test_outsider_gets_404(client, task, outsider, name):
    client.force_login(outsider)  # lead, reviewer and annotator of another task
    for method in TASK_VIEWS[name][0]:
        assert _call(client, method, reverse(name, args=[task.slug])).status_code == 404, (name, method)


@pytest.mark.parametrize("name", TASK_VIEWS)
@pytest.mark.parametrize("persona", PERSONAS)
def test_role_decides_between_page_and_403(client, request, task, name, persona):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    methods, allowed = TASK_VIEWS[name]
    for method in methods:
        response = _call(client, method, reverse(name, args=[task.slug]))
        if persona in allowed:
            assert response.status_code in (200, 302), (name, method, persona, response.status_code)
        else:
            assert response.status_code == 403, (name, method, persona, response.status_code)
            assert "Not allowed" in response.content.decode()


def test_unknown_task_is_404_even_for_staff(client, staff):
    client.force_login(staff)
    assert client.get(reverse("annotate:task_detail", args=["no-such-task"])).status_code == 404


def test_staff_may_open_every_lead_page(client, task, staff):
    client.force_login(staff)
    for name in ("annotate:task_detail", "annotate:task_edit", "annotate:template_edit", "annotate:members"):
        assert client.get(reverse(name, args=[task.slug])).status_code == 200, name


def test_annotator_cannot_create_tasks(client, annotator):
    client.force_login(annotator)
    assert client.get(reverse("annotate:task_create")).status_code == 403
    response = client.post(reverse("annotate:task_create"), {"name": "Mine", "slug": "mine", "output_format": "text"})
    assert response.status_code == 403
    from annotate.models import Task

    assert not Task.objects.filter(slug="mine").exists()


def test_lead_may_create_tasks(client, lead):
    client.force_login(lead)
    assert client.get(reverse("annotate:task_create")).status_code == 200


def test_home_lists_only_my_tasks_with_role_and_counts(client, task, other_task, annotator, django_assert_num_queries):
    from tests.factories import ExampleFactory

    ExampleFactory.create_batch(3, task=task, status="new")
    ExampleFactory.create_batch(2, task=task, status="approved")
    ExampleFactory.create_batch(4, task=other_task)
    client.force_login(annotator)
    response = client.get(reverse("home"))
    html = response.content.decode()
    assert task.name in html
    assert other_task.name not in html
    assert "annotator" in html
    row = html[html.index(task.name) :]
    assert ">3<" in row and ">2<" in row and ">5<" in row  # new, approved, total


def test_home_queries_do_not_grow_with_tasks_or_examples(client, annotator, task, django_assert_num_queries):
    from tests.factories import ExampleFactory, MembershipFactory, TaskFactory

    client.force_login(annotator)
    client.get(reverse("home"))  # warm the session
    # session, user, tasks, my memberships, counts per status, may-create-tasks
    with django_assert_num_queries(6) as small:
        client.get(reverse("home"))
    for _ in range(5):
        MembershipFactory(task=TaskFactory(), user=annotator)
    ExampleFactory.create_batch(20, task=task)
    with django_assert_num_queries(len(small.captured_queries)):
        client.get(reverse("home"))


def test_empty_home_explains_what_to_do(client, db):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="newbie"))
    html = client.get(reverse("home")).content.decode()
    assert "No tasks yet" in html
    assert "Ask a lead to add you" in html
