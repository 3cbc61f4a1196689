"""An imported example sent back in triage has no annotator to go back to: it waits first in the pool, and the
next annotator who asks for work gets it with the reviewer's reasons."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate import services as annotate_services
from annotate.models import Example
from reviews import services
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
Status = Example.Status


@pytest.fixture
def imported_rejected(task, reviewer):
    example = ExampleFactory(task=task, status=Status.SUBMITTED, completion="Imported and wrong.", external_id="imp-7")
    example.revisions.create(text=example.completion, reason="import", example_version=example.version)
    services.verdict_record(
        example=example, reviewer=reviewer, decision="reject", version=example.version, reasons=["inaccurate"]
    )
    example.refresh_from_db()
    assert example.author is None and example.status == Status.REJECTED
    return example


def test_sending_back_an_imported_example_puts_it_first_in_the_pool(client, task, lead, annotator, imported_rejected):
    newer = ExampleFactory(task=task)
    client.force_login(lead)
    response = client.post(
        reverse("reviews:triage_act", args=[task.slug]),
        {"action": "send_back", "uuids": str(imported_rejected.uuid), "reasons": ["inaccurate"],
         "comment": "The refund window is 30 days."},
        follow=True,
    )  # fmt: skip
    assertContains(response, "1 example sent back.")
    assertContains(response, "1 had no annotator (imported): it waits first in the pool")
    imported_rejected.refresh_from_db()
    assert (imported_rejected.status, imported_rejected.author, imported_rejected.claimed_by) == (
        Status.FLAGGED, None, None
    )  # fmt: skip
    taken = annotate_services.example_claim_next(task=task, user=annotator)
    assert taken == imported_rejected  # before the new example, which is older in nothing but status
    assert newer.status == Status.NEW
    client.force_login(annotator)
    editor = client.get(reverse("annotate:edit", args=[task.slug, taken.uuid]))
    assertContains(editor, "The refund window is 30 days.")  # the reviewer's comment comes with it
    saved = annotate_services.example_save(
        example=taken,
        user=annotator,
        completion="Refunds within 30 days.",
        kind="happy",
        expected_version=taken.version,
    )
    assert saved.author == annotator and saved.status == Status.DRAFT


def test_a_reviewer_sends_a_rejected_example_back_from_its_timeline(client, task, lead, annotator, imported_rejected):
    other = annotate_services.example_write_new(
        task=task, user=annotator, fields={"instruction": "Is it waterproof?"}, completion="No.", kind="happy"
    )
    other = annotate_services.example_submit(
        example=other, user=annotator, completion="No.", kind="happy", expected_version=other.version
    )
    services.verdict_record(example=other, reviewer=lead, decision="reject", version=other.version, reasons=["unclear"])
    client.force_login(lead)
    timeline = client.get(reverse("reviews:example", args=[task.slug, other.uuid]))
    assertContains(timeline, 'data-testid="send-back"')
    assertContains(timeline, f'<input type="hidden" name="uuids" value="{other.uuid}">', html=True)
    pooled = client.get(reverse("reviews:example", args=[task.slug, imported_rejected.uuid]))
    assertContains(pooled, "Send back to the pool (no annotator)")
    client.post(
        reverse("reviews:triage_act", args=[task.slug]),
        {"action": "send_back", "uuids": str(other.uuid), "reasons": ["unclear"], "comment": "Say why not."},
    )
    other.refresh_from_db()
    assert (other.status, other.author) == (Status.FLAGGED, annotator)
    annotator_view = client.get(reverse("reviews:example", args=[task.slug, other.uuid]))
    assert annotator_view.status_code == 200
