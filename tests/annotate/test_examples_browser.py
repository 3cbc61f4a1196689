"""The examples list is a browser: search by UUID, external id or words, filters, and rows that open the timeline."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.views_quality import SEARCH_WINDOW
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(task):
    return {
        "thermostat": ExampleFactory(task=task, instruction="My thermostat blinks amber", external_id="seed_task_31"),
        "kettle": ExampleFactory(task=task, instruction="The kettle whistles", completion="Descale the kettle."),
        "lamp": ExampleFactory(task=task, instruction="The lamp flickers", status="submitted"),
    }


def _get(client, task, **params):
    return client.get(reverse("annotate:examples", args=[task.slug]), params)


def test_each_row_opens_the_examples_timeline_and_names_it_by_external_id(client, task, reviewer, rows):
    client.force_login(reviewer)
    response = _get(client, task)
    thermostat = rows["thermostat"]
    timeline = reverse("reviews:example", args=[task.slug, thermostat.uuid])
    assertContains(response, f'<a href="{timeline}" title="{thermostat.uuid}">seed_task_31</a>', html=True)
    kettle = rows["kettle"]
    assertContains(response, f'href="{reverse("reviews:example", args=[task.slug, kettle.uuid])}"')
    assert client.get(timeline).status_code == 200


@pytest.mark.parametrize(
    ("query", "found", "missing"),
    [
        ("seed_task_31", "thermostat", "kettle"),  # the external id, exactly
        ("KETTLE", "kettle", "thermostat"),  # words of the prompt or completion, any case
        ("descale", "kettle", "lamp"),
        ("  the   lamp  ", "lamp", "kettle"),  # spaces folded
    ],
)
def test_search_finds_by_external_id_and_by_words(client, task, reviewer, rows, query, found, missing):
    client.force_login(reviewer)
    response = _get(client, task, q=query)
    assertContains(response, f'data-example="{rows[found].uuid}"')
    assertNotContains(response, f'data-example="{rows[missing].uuid}"')


def test_search_by_uuid_and_with_a_filter(client, task, reviewer, rows):
    client.force_login(reviewer)
    response = _get(client, task, q=str(rows["lamp"].uuid))
    assertContains(response, f'data-example="{rows["lamp"].uuid}"')
    assertNotContains(response, f'data-example="{rows["kettle"].uuid}"')
    assertNotContains(_get(client, task, q=str(rows["lamp"].uuid), status="new"), 'data-example="')


def test_no_match_says_so_and_offers_the_way_back(client, task, reviewer, rows):
    client.force_login(reviewer)
    response = _get(client, task, q="<b>nothing</b>")
    assertContains(response, "No example matches “&lt;b&gt;nothing&lt;/b&gt;” and these filters.")
    assertContains(response, "Show all examples")


def test_an_empty_task_says_it_has_no_examples(client, task, reviewer):
    client.force_login(reviewer)
    assertContains(_get(client, task), "This task has no examples yet.")


def test_warnings_show_their_human_label(client, task, reviewer):
    ExampleFactory(task=task, warnings=[{"code": "inconsistent_signoff", "message": "Unusual ending."}],
                   warning_codes=",inconsistent_signoff,")  # fmt: skip
    client.force_login(reviewer)
    response = _get(client, task)
    assertContains(response, ">Unusual sign-off</span>")
    assertNotContains(response, ">inconsistent_signoff</span>")


def test_word_search_reads_a_bounded_window_of_the_newest_examples(client, task, reviewer, monkeypatch):
    import annotate.views_quality as views_quality

    monkeypatch.setattr(views_quality, "SEARCH_WINDOW", 3)
    old = ExampleFactory(task=task, instruction="a rare word: zebra")
    for i in range(3):
        ExampleFactory(task=task, instruction=f"plain {i}")
    client.force_login(reviewer)
    response = _get(client, task, q="zebra")
    assertNotContains(response, f'data-example="{old.uuid}"')  # outside the window of the 3 newest
    assertContains(response, "Words are searched among the newest 3 examples")
    assertContains(_get(client, task, q=str(old.uuid)), f'data-example="{old.uuid}"')  # a UUID finds any
    assert SEARCH_WINDOW >= 10_000
