"""A lead discards a broken draft (reviews/discard.py), from the example's timeline page.

Nothing is deleted and every discard is recorded: an imported (or once approved) example goes back to the pool with
that text, one written from scratch is rejected (kept, never exported), where triage can send it back.
"""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services as annotate_services
from annotate.models import AuditEvent, Example, Revision, Transition
from reviews import services as review_services
from tests.factories import UserFactory

from .conftest import submit_new

pytestmark = pytest.mark.django_db
Status = Example.Status
JUNK = "paste " * 16_000  # 96,000 characters a lead cannot fix in the editor


def _imported_draft(task, annotator) -> Example:
    """An imported example with its answer, taken by `annotator`, who autosaved junk over it."""
    example = annotate_services.example_create(
        task=task, fields={"instruction": "Can the Skylark run on batteries?"}, completion="Yes, for a week."
    )
    annotate_services.example_claim_next(task=task, user=annotator)
    example.refresh_from_db()
    return annotate_services.example_save(
        example=example, user=annotator, completion=JUNK, kind="edge", expected_version=1, reason="autosave"
    )


def _discard(client, task, example, version=None, note="junk pasted by mistake"):
    url = reverse("reviews:discard", args=[task.slug, example.uuid])
    return client.post(url, {"version": example.version if version is None else version, "note": note})


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_lead_sends_a_broken_imported_draft_back_to_the_pool_with_its_imported_text(client, task, annotator, lead):
    example = _imported_draft(task, annotator)
    client.force_login(lead)
    response = _discard(client, task, example)

    assert response.status_code == 302 and response.url == reverse("reviews:example", args=[task.slug, example.uuid])
    assert _messages(response) == [
        "Draft discarded. It goes back to the pool, new and nobody's, with its imported text; the next annotator "
        "starts from there."
    ]
    example.refresh_from_db()
    assert (example.status, example.author, example.claimed_by) == (Status.NEW, None, None)
    assert (example.completion, example.kind, example.version) == ("Yes, for a week.", "happy", 3)
    revisions = list(example.revisions.order_by("id").values_list("reason", "text", "author__username"))
    assert revisions == [  # nothing deleted: the junk stays in the history
        ("import", "Yes, for a week.", None),
        ("autosave", JUNK, "anna"),
        ("restore", "Yes, for a week.", "leo"),
    ]
    move = Transition.objects.filter(example=example).latest("id")
    assert (move.from_status, move.to_status, move.actor) == (Status.DRAFT, Status.NEW, lead)
    assert move.note == "discarded by a lead: junk pasted by mistake"
    event = AuditEvent.objects.get(action="example_discarded")
    assert (event.task, event.actor, event.target) == (task, lead, str(example.uuid))
    restored = Revision.objects.get(example=example, reason="import").pk
    assert event.detail == {
        "from": "draft",
        "to": "new",
        "author": "anna",
        "restored_revision": restored,
        "note": "junk pasted by mistake",
    }
    # Back in the pool: the next annotator is handed it.
    other = UserFactory(username="otis")
    assert annotate_services.example_claim_next(task=task, user=other) == example


def test_a_two_million_character_instruction_written_from_scratch_is_rejected_and_kept(client, task, annotator, lead):
    # Stored before the limits held on "Write a new example": the lead's way out.
    example = Example.objects.create(
        task=task, template=task.current_template, instruction="x" * 2_000_000, completion="Answer.",
        source=Example.Source.WRITTEN, status=Status.DRAFT, author=annotator,
    )  # fmt: skip
    Revision.objects.create(example=example, text="Answer.", author=annotator, reason="save", example_version=1)
    client.force_login(lead)
    response = _discard(client, task, example, note="")
    assert "rejected: kept, never exported (triage can send it back)" in _messages(response)[0]
    example.refresh_from_db()
    assert (example.status, example.author, example.version) == (Status.REJECTED, annotator, 2)
    assert len(example.instruction) == 2_000_000 and example.completion == "Answer."  # kept as it was
    assert list(example.revisions.values_list("reason", flat=True)) == ["save"]
    move = Transition.objects.get(example=example)
    assert (move.from_status, move.to_status, move.note) == (Status.DRAFT, Status.REJECTED, "discarded by a lead")
    # Reversible: triage sends it back to its annotator.
    result = review_services.triage_send_back(task=task, uuids=[example.uuid], actor=lead, reasons=["other"])
    assert result.done == [example]


def test_an_approved_example_edited_again_goes_back_with_its_approved_text(task, annotator, reviewer, lead):
    example = submit_new(task, annotator, "Hold the round button for ten seconds.")
    review_services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=example.version)
    example.refresh_from_db()
    example = annotate_services.example_save(
        example=example, user=annotator, completion=JUNK, kind="happy", expected_version=example.version
    )
    assert example.status == Status.DRAFT
    from reviews.discard import example_discard

    discarded = example_discard(example=example, actor=lead, expected_version=example.version)
    assert (discarded.status, discarded.completion, discarded.author) == (
        Status.NEW, "Hold the round button for ten seconds.", None,
    )  # fmt: skip
    assert discarded.revisions.latest("id").reason == "restore"


def test_a_flagged_imported_example_can_be_discarded(client, task, annotator, reviewer, lead):
    example = _imported_draft(task, annotator)
    example = annotate_services.example_submit(
        example=example, user=annotator, completion="Maybe.", kind="happy", expected_version=example.version
    )
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["inaccurate"]
    )
    example.refresh_from_db()
    assert example.status == Status.FLAGGED
    client.force_login(lead)
    _discard(client, task, example)
    example.refresh_from_db()
    assert (example.status, example.completion) == (Status.NEW, "Yes, for a week.")


@pytest.mark.parametrize("status", [Status.SUBMITTED, Status.APPROVED, Status.NEW, Status.REJECTED])
def test_only_drafts_and_flagged_examples_are_discarded(client, task, annotator, lead, status):
    example = _imported_draft(task, annotator)
    Example.objects.filter(pk=example.pk).update(status=status)
    example.refresh_from_db()
    client.force_login(lead)
    response = _discard(client, task, example)
    assert _messages(response) == [
        f"Nothing was discarded: Only a draft or a flagged example can be discarded; this one is {status}."
    ]
    example.refresh_from_db()
    assert example.version == 2 and example.completion == JUNK
    assert not AuditEvent.objects.filter(action="example_discarded").exists()


def test_a_draft_changed_since_the_lead_looked_is_not_discarded(client, task, annotator, lead):
    example = _imported_draft(task, annotator)
    seen = example.version
    annotate_services.example_save(
        example=example, user=annotator, completion="A real answer now.", kind="happy", expected_version=seen
    )
    client.force_login(lead)
    response = _discard(client, task, example, version=seen)
    assert "changed since you opened it (now version 3)" in _messages(response)[0]
    example.refresh_from_db()
    assert (example.status, example.completion) == (Status.DRAFT, "A real answer now.")


def test_only_leads_and_staff_discard(client, task, annotator, reviewer, outsider, staff):
    example = _imported_draft(task, annotator)
    url = reverse("reviews:discard", args=[task.slug, example.uuid])
    assert client.post(url, {"version": 2}).url.startswith("/login/")
    for user, status in ((annotator, 403), (reviewer, 403), (outsider, 404)):
        client.force_login(user)
        assert client.post(url, {"version": 2}).status_code == status
    example.refresh_from_db()
    assert example.status == Status.DRAFT
    client.force_login(staff)
    assert client.get(url).status_code == 405
    assert client.post(url, {"version": 2}).status_code == 302
    example.refresh_from_db()
    assert example.status == Status.NEW


def test_the_timeline_offers_the_discard_to_leads_only_and_says_what_it_does(client, task, annotator, reviewer, lead):
    example = _imported_draft(task, annotator)
    page_url = reverse("reviews:example", args=[task.slug, example.uuid])
    client.force_login(lead)
    page = client.get(page_url)
    assertContains(page, "Discard this draft…")
    assertContains(page, f'action="{reverse("reviews:discard", args=[task.slug, example.uuid])}"')
    assertContains(page, '<input type="hidden" name="version" value="2">')
    assertContains(page, "with its imported text")
    client.force_login(reviewer)
    assertNotContains(client.get(page_url), "Discard this draft")
    Example.objects.filter(pk=example.pk).update(status=Status.SUBMITTED)
    client.force_login(lead)
    assertNotContains(client.get(page_url), "Discard this draft")


def test_after_a_discard_the_former_annotator_cannot_save_over_it(client, task, annotator, lead):
    example = _imported_draft(task, annotator)
    old_version = example.version
    client.force_login(lead)
    _discard(client, task, example)
    client.force_login(annotator)
    url = reverse("annotate:save", args=[task.slug, example.uuid])
    client.post(url, {"completion": JUNK + "more", "kind": "edge", "version": old_version}, headers={"HX-Request": "1"})
    client.post(url, {"completion": JUNK + "more", "kind": "edge", "version": old_version + 1})
    example.refresh_from_db()
    assert (example.status, example.completion, example.author) == (Status.NEW, "Yes, for a week.", None)
    assert example.revisions.latest("id").reason == "restore"
