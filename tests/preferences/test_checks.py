"""The pair checks: identical or nearly, chosen too short, the same pair twice, chosen here and rejected there."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate.importing import examples_import
from preferences.checks import check_counts
from preferences.models import PreferencePair

from .test_import import jsonl

pytestmark = pytest.mark.django_db


def test_each_check_flags_its_pairs_and_is_counted_on_the_list(
    client, task, reviewer, tmp_path, django_capture_on_commit_callbacks, inline_celery
):
    records = [
        {"id": "same", "prompt": "Q1", "chosen": "The parcel arrives.", "rejected": "the parcel arrives!"},
        {"id": "short", "prompt": "Q2", "chosen": "Ok", "rejected": "I cannot say anything about that."},
        {"id": "first", "prompt": "Q3", "chosen": "It is in Paris now.", "rejected": "Unknown."},
        {"id": "twice", "prompt": "Q3", "chosen": "It is in Paris now.", "rejected": "Unknown."},
        {"id": "flip", "prompt": "Q3", "chosen": "Unknown.", "rejected": "It is in Paris now."},
        {"id": "fine", "prompt": "Q4", "chosen": "Two days, by courier.", "rejected": "Soon."},
    ]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):  # the checks run as a job once the import commits
        examples_import(task=task, path=jsonl(tmp_path, records), file_format="jsonl", status="approved")
    checks = dict(PreferencePair.objects.values_list("external_id", "checks"))
    assert checks == {
        "same": ",identical,",
        "short": ",short,",
        "first": ",contradicts,",
        "twice": ",repeated,contradicts,",
        "flip": ",contradicts,",
        "fine": "",
    }
    assert check_counts(task) == {"identical": 1, "short": 1, "repeated": 1, "contradicts": 3}
    client.force_login(reviewer)
    url = reverse("preferences:pairs", args=[task.slug])
    response = client.get(url, {"check": "contradicts"})
    assert [p.external_id for p in response.context["page"].object_list] == ["flip", "twice", "first"]
    assertContains(response, 'data-testid="check-repeated"')
    assert client.get(url, {"check": "not-a-check"}).context["page"].paginator.count == 6  # allow-list: ignored
