"""The triage page and its bulk actions over HTTP."""

import uuid

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import Example
from reviews import services
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
Status = Example.Status


def flag(example, reviewer, reasons=("unclear",), comment=""):
    services.verdict_record(
        example=example,
        reviewer=reviewer,
        decision="flag",
        version=example.version,
        reasons=list(reasons),
        comment=comment,
    )
    example.refresh_from_db()
    return example


def test_triage_lists_flagged_examples_with_reasons_and_comments(client, task, reviewer, submitted, other_annotator):
    flag(submitted(instruction="Anna's question"), reviewer, ["leak"], comment="Copied <the> manual.")
    flag(submitted(instruction="Otis's question", author=other_annotator), reviewer, ["format"])
    submitted(instruction="Still waiting")
    client.force_login(reviewer)
    url = reverse("reviews:triage", args=[task.slug])
    page = client.get(url)
    assertContains(page, "Anna&#x27;s question")
    assertContains(page, "Copied &lt;the&gt; manual.")
    assertContains(page, 'data-reason="leak"')
    assertNotContains(page, "Still waiting")
    fragment = client.get(url, {"reason": "format"}, headers=HTMX)
    html = fragment.content.decode()
    assert "<html" not in html and 'id="triage-table"' in html
    assert "Otis&#x27;s question" in html and "Anna&#x27;s question" not in html
    by_annotator = client.get(url, {"annotator": other_annotator.pk, "state": "flagged"})
    assertContains(by_annotator, "Otis&#x27;s question")
    assertNotContains(by_annotator, "Anna&#x27;s question")
    assertNotContains(client.get(url, {"state": "rejected"}), "question")


def test_bulk_reject_ignores_ids_of_other_tasks_with_a_message(client, task, other_task, lead, reviewer, submitted):
    mine = [flag(submitted(completion=f"answer {i}"), reviewer) for i in range(2)]
    elsewhere = ExampleFactory(task=other_task, status=Status.FLAGGED)
    client.force_login(lead)
    response = client.post(
        reverse("reviews:triage_act", args=[task.slug]),
        {
            "action": "reject",
            "uuids": [mine[0].uuid, mine[1].uuid, elsewhere.uuid, uuid.uuid4()],
            "reasons": ["duplicate"],
            "comment": "Same as #12.",
            "filters": "state=flagged&bogus=1",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("reviews:triage", args=[task.slug]) + "?state=flagged"
    assertContains(response, "2 examples rejected. 2 not found in this task&#x27;s triage and ignored.")
    assert {e.status for e in Example.objects.filter(pk__in=[e.pk for e in mine])} == {Status.REJECTED}
    assert Example.objects.get(pk=elsewhere.pk).status == Status.FLAGGED
    assert elsewhere.verdicts.count() == 0


def test_bulk_reassign_and_send_back(client, task, lead, reviewer, submitted, other_annotator):
    example = flag(submitted(), reviewer)
    client.force_login(lead)
    url = reverse("reviews:triage_act", args=[task.slug])
    response = client.post(
        url, {"action": "reassign", "uuids": [example.uuid], "annotator": other_annotator.pk}, follow=True
    )
    assertContains(response, "1 example reassigned to otis.")
    example.refresh_from_db()
    assert (example.author, example.status) == (other_annotator, Status.FLAGGED)
    services.triage_reject(task=task, uuids=[example.uuid], actor=lead, reasons=["other"])
    response = client.post(
        url, {"action": "send_back", "uuids": [example.uuid], "reasons": ["inaccurate"]}, follow=True
    )
    assertContains(response, "1 example sent back.")
    assert Example.objects.get(pk=example.pk).status == Status.FLAGGED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "reject"}, "Select at least one example."),
        ({"action": "reject", "uuids": ["PLACEHOLDER"]}, "Choose at least one reason."),
        ({"action": "reassign", "uuids": ["PLACEHOLDER"]}, "Choose the annotator"),
        ({"action": "reject", "uuids": ["not-a-uuid"], "reasons": ["other"]}, "Not an example id."),
        ({"action": "explode", "uuids": ["PLACEHOLDER"]}, "Select a valid choice."),
    ],
)
def test_bad_bulk_input_changes_nothing(client, task, lead, reviewer, submitted, data, message):
    example = flag(submitted(), reviewer)
    data = {
        k: [example.uuid if v == "PLACEHOLDER" else v for v in value] if isinstance(value, list) else value
        for k, value in data.items()
    }
    client.force_login(lead)
    response = client.post(reverse("reviews:triage_act", args=[task.slug]), data, follow=True)
    assertContains(response, "Nothing was changed")
    assertContains(response, message)
    assert Example.objects.get(pk=example.pk).status == Status.FLAGGED


def test_reassign_to_someone_who_is_not_an_annotator_is_refused(client, task, lead, reviewer, submitted):
    example = flag(submitted(), reviewer)
    client.force_login(lead)
    response = client.post(
        reverse("reviews:triage_act", args=[task.slug]),
        {"action": "reassign", "uuids": [example.uuid], "annotator": reviewer.pk},
        follow=True,
    )
    assertContains(response, "Nothing was changed")
    assert Example.objects.get(pk=example.pk).author.username == "anna"
