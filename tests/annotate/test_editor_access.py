"""Who may open an example in the editor (annotate/access.py example_for_editor), on every editor endpoint.

Its author, whoever holds its claim, an annotator who may take it (new, nobody's hold, not skipped by them), and the
task's leads and staff. Anyone else gets 404, as the example's timeline answers them: another annotator's draft,
and the comment of its last flag, are not theirs to read, by UUID or otherwise, and nothing they post is stored.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains

from annotate import services
from annotate.models import Example, Revision, Role, Skip
from reviews import services as review_services
from tests.conftest import _member
from tests.factories import ExampleFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
SECRET_DRAFT = "Private draft of Bob about the boiler"
SECRET_FLAG = "Comment of Rita: the boiler model is wrong"
ENDPOINTS = ["annotate:edit", "annotate:save", "annotate:feedback", "annotate:submit", "annotate:skip"]


def _call(client, task, example, name, **headers):
    url = reverse(name, args=[task.slug, example.uuid])
    if name == "annotate:edit":
        return client.get(url, headers=headers)
    data = {"completion": "Overwritten by someone else", "kind": "edge", "version": example.version}
    return client.post(url, {**data, "reason": "unclear"}, headers=headers)


def _state(example):
    example.refresh_from_db()
    return (example.status, example.version, example.completion, example.author_id, example.claimed_by_id)


@pytest.fixture
def bob(task):
    return _member(task, "bob", Role.ANNOTATOR)


@pytest.fixture
def sent_back(task, bob, reviewer):
    """Bob's example, flagged back to him with a comment."""
    example = ExampleFactory(task=task)
    example.claimed_by, example.claim_expires_at = bob, timezone.now() + timedelta(minutes=30)
    example.save()
    example = services.example_submit(
        example=example, user=bob, completion=SECRET_DRAFT, kind="happy", expected_version=1
    )
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["inaccurate"],
        comment=SECRET_FLAG,
    )  # fmt: skip
    example.refresh_from_db()
    assert example.status == Example.Status.FLAGGED
    return example


@pytest.fixture
def flagged(task, bob, sent_back):
    """The flagged example, worked on again by Bob: a draft with a last flag."""
    return services.example_save(
        example=sent_back, user=bob, completion=SECRET_DRAFT + ", second try", kind="happy",
        expected_version=sent_back.version,
    )  # fmt: skip


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_another_annotators_draft_is_404_on_every_editor_endpoint_and_nothing_is_stored(
    client, task, annotator, flagged, name, htmx
):
    before = _state(flagged)
    revisions = Revision.objects.count()
    client.force_login(annotator)
    response = _call(client, task, flagged, name, **(HTMX if htmx else {}))
    assert response.status_code == 404
    body = response.content.decode()
    assert SECRET_DRAFT not in body and SECRET_FLAG not in body
    assert _state(flagged) == before
    assert Revision.objects.count() == revisions
    assert not Skip.objects.exists()


def test_the_author_still_reads_their_draft_and_the_last_flag(client, task, bob, flagged):
    client.force_login(bob)
    page = client.get(reverse("annotate:edit", args=[task.slug, flagged.uuid]))
    assertContains(page, SECRET_DRAFT)
    assertContains(page, SECRET_FLAG)
    assertContains(page, 'id="editor"')


def test_leads_and_staff_may_open_any_example_of_the_task(client, task, flagged, staff):
    lead_annotator = _member(task, "lena", Role.LEAD, Role.ANNOTATOR)
    for user in (lead_annotator, staff):
        client.force_login(user)
        page = client.get(reverse("annotate:edit", args=[task.slug, flagged.uuid]))
        assertContains(page, SECRET_DRAFT)
        # they read it; writing it stays its author's (the service says so)
        response = _call(client, task, flagged, "annotate:save", **HTMX)
        assertContains(response, "another annotator")
    flagged.refresh_from_db()
    assert flagged.completion == SECRET_DRAFT + ", second try"


@pytest.mark.parametrize("name", ENDPOINTS)
def test_an_example_another_annotator_holds_is_404(client, task, annotator, bob, name):
    held = ExampleFactory(task=task, completion="Imported answer to improve")
    services.example_claim_next(task=task, user=bob)
    client.force_login(annotator)
    assert _call(client, task, held, name).status_code == 404
    held.refresh_from_db()
    assert held.claimed_by == bob and held.status == Example.Status.NEW


def test_a_new_example_nobody_holds_opens_for_any_annotator(client, task, annotator, bob):
    example = ExampleFactory(task=task, instruction="Where is the reset button?")
    services.example_claim_next(task=task, user=bob)
    Example.objects.filter(pk=example.pk).update(claim_expires_at=timezone.now() - timedelta(minutes=1))  # expired
    client.force_login(annotator)
    assert client.get(reverse("annotate:edit", args=[task.slug, example.uuid])).status_code == 200


def test_an_example_the_annotator_skipped_is_404_for_them(client, task, annotator):
    example = ExampleFactory(task=task)
    client.force_login(annotator)
    services.example_claim_next(task=task, user=annotator)
    assert (
        client.post(reverse("annotate:skip", args=[task.slug, example.uuid]), {"reason": "unclear"}).status_code == 302
    )
    assert client.get(reverse("annotate:edit", args=[task.slug, example.uuid])).status_code == 404


def test_after_triage_reassigns_an_example_its_former_annotator_gets_404(client, task, annotator, bob, sent_back, lead):
    result = review_services.triage_reassign(task=task, uuids=[sent_back.uuid], actor=lead, annotator=annotator)
    assert len(result.done) == 1
    client.force_login(bob)
    for name in ENDPOINTS:
        assert _call(client, task, sent_back, name).status_code == 404, name
    client.force_login(annotator)
    page = client.get(reverse("annotate:edit", args=[task.slug, sent_back.uuid]))
    assertContains(page, SECRET_DRAFT)  # the new annotator takes it over, with its text


def test_a_submitted_example_of_another_is_404(client, task, annotator, bob):
    example = services.example_create(
        task=task, fields={"instruction": "Q?"}, completion="Bob's submitted answer", source="written",
        status=Example.Status.SUBMITTED, author=bob,
    )  # fmt: skip
    client.force_login(annotator)
    response = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assert response.status_code == 404
    assert "Bob's submitted answer" not in response.content.decode()


def test_a_user_without_the_annotator_role_is_still_403_and_a_stranger_404(client, task, flagged, reviewer, outsider):
    client.force_login(reviewer)
    assert client.get(reverse("annotate:edit", args=[task.slug, flagged.uuid])).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("annotate:edit", args=[task.slug, flagged.uuid])).status_code == 404
    stranger = UserFactory(username="sam")
    client.force_login(stranger)
    assert client.get(reverse("annotate:edit", args=[task.slug, flagged.uuid])).status_code == 404
