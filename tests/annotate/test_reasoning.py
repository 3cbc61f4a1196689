"""A task that asks for the reasoning: the editor shows a reasoning box that is autosaved with the completion, every
revision keeps the reasoning it was saved with, a submit without one is refused, imports read it, reviewers see it."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import Example, Revision
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def asks(task):
    task.asks_reasoning = True
    task.save()
    return task


def claimed(client, task, annotator) -> Example:
    ExampleFactory(task=task)
    client.force_login(annotator)
    assert client.post(reverse("annotate:work", args=[task.slug])).status_code == 302
    return Example.objects.get()


def test_the_editor_shows_the_reasoning_box_only_when_the_task_asks(client, task, annotator):
    example = claimed(client, task, annotator)
    url = reverse("annotate:edit", args=[task.slug, example.uuid])
    assertNotContains(client.get(url), 'id="id_reasoning"')
    task.asks_reasoning = True
    task.save()
    Example.objects.filter(pk=example.pk).update(reasoning="Earlier <b>steps</b>")
    response = client.get(url)
    assertContains(response, 'id="id_reasoning"')
    assertContains(response, "data-autosave")
    assertContains(response, "Earlier &lt;b&gt;steps&lt;/b&gt;")  # escaped, in the box


def test_autosave_stores_the_reasoning_on_the_example_and_its_revision(client, asks, annotator):
    example = claimed(client, asks, annotator)
    url = reverse("annotate:save", args=[asks.slug, example.uuid])
    data = {"completion": "Friday.", "reasoning": "Shipped Monday\r\n+4 days", "kind": "happy", "version": 1}
    response = client.post(url, {**data, "autosave": "1"}, headers=HTMX)
    assert "version 2" in response.content.decode()
    example.refresh_from_db()
    assert (example.completion, example.reasoning) == ("Friday.", "Shipped Monday\n+4 days")
    revision = Revision.objects.get()
    assert (revision.text, revision.reasoning, revision.reason) == ("Friday.", "Shipped Monday\n+4 days", "autosave")
    # a change of the reasoning alone is a change: saved, not taken for "nothing new"
    response = client.post(url, {**data, "reasoning": "Shipped Monday, +4 days", "version": 2}, headers=HTMX)
    example.refresh_from_db()
    assert example.reasoning == "Shipped Monday, +4 days" and example.version == 3
    assert Revision.objects.order_by("-id").first().reasoning == "Shipped Monday, +4 days"


def test_a_reasoning_over_the_limit_is_refused_naming_it_and_nothing_changes(client, asks, annotator, settings):
    example = claimed(client, asks, annotator)
    url = reverse("annotate:save", args=[asks.slug, example.uuid])
    data = {"completion": "Friday.", "reasoning": "x" * 200_001, "kind": "happy", "version": 1}
    response = client.post(url, data, headers=HTMX)
    assert "reasoning" in response.content.decode().lower()
    example.refresh_from_db()
    assert (example.version, example.reasoning, Revision.objects.count()) == (1, "", 0)


def test_a_submit_without_reasoning_is_refused_when_the_task_asks(client, asks, annotator):
    example = claimed(client, asks, annotator)
    url = reverse("annotate:submit", args=[asks.slug, example.uuid])
    response = client.post(url, {"completion": "Friday.", "reasoning": "  ", "kind": "happy", "version": 1})
    assertContains(response, "The reasoning is empty")
    example.refresh_from_db()
    assert example.status == "new" or example.status == "draft"
    assert example.status != "submitted"
    response = client.post(url, {"completion": "Friday.", "reasoning": "Monday + 4.", "kind": "happy", "version": 1})
    assert response.status_code == 302
    example.refresh_from_db()
    assert (example.status, example.reasoning) == ("submitted", "Monday + 4.")
    assert Revision.objects.get(reason="submit").reasoning == "Monday + 4."


def test_a_save_in_a_task_that_does_not_ask_keeps_the_stored_reasoning(client, task, annotator):
    example = claimed(client, task, annotator)
    Example.objects.filter(pk=example.pk).update(reasoning="Imported reasoning")
    url = reverse("annotate:save", args=[task.slug, example.uuid])
    client.post(url, {"completion": "Friday.", "reasoning": "", "kind": "happy", "version": 1}, headers=HTMX)
    example.refresh_from_db()
    assert (example.completion, example.reasoning) == ("Friday.", "Imported reasoning")
    assert Revision.objects.get().reasoning == "Imported reasoning"


def run_import(task, tmp_path, *records, status="approved"):
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = StringIO()
    call_command("import_examples", task.slug, str(path), "--status", status, stdout=out)
    return out.getvalue()


def test_import_reads_a_reasoning_key_and_the_answers_reasoning_content(asks, tmp_path):
    run_import(
        asks,
        tmp_path,
        {"instruction": "Where is it?", "reasoning": "Tracking says Monday.", "output": "Friday.", "id": "a"},
        {
            "messages": [
                {"role": "user", "content": "When?"},
                {"role": "assistant", "content": "Soon.", "reasoning_content": "It is on the van."},
            ],
            "id": "b",
        },
        {"prompt": "No reasoning here", "completion": "Fine.", "id": "c"},
    )
    stored = {e.external_id: e for e in Example.objects.all()}
    assert stored["a"].reasoning == "Tracking says Monday." and stored["a"].completion == "Friday."
    assert stored["b"].reasoning == "It is on the van." and stored["b"].completion == "Soon."
    assert stored["c"].reasoning == ""
    assert Revision.objects.get(example=stored["b"]).reasoning == "It is on the van."


def test_import_refuses_two_reasonings_for_one_record_naming_the_line_and_imports_nothing(asks, tmp_path):
    record = {
        "messages": [
            {"role": "user", "content": "When?"},
            {"role": "assistant", "content": "Soon.", "reasoning_content": "On the van."},
        ],
        "reasoning": "Also this.",
    }
    with pytest.raises(CommandError) as caught:
        run_import(asks, tmp_path, {"prompt": "fine", "completion": "ok"}, record)
    assert "line 2" in str(caught.value) and "reasoning" in str(caught.value)
    assert Example.objects.count() == 0


def test_the_review_page_shows_the_reasoning(client, asks, reviewer):
    example = ExampleFactory(task=asks, status="submitted", completion="Friday.", reasoning="Monday <i>+4</i>")
    client.force_login(reviewer)
    response = client.get(reverse("reviews:review", args=[asks.slug, example.uuid]))
    assertContains(response, 'data-testid="reasoning"')
    assertContains(response, "Monday &lt;i&gt;+4&lt;/i&gt;")


def test_the_task_settings_form_has_the_setting(client, task, lead):
    client.force_login(lead)
    response = client.get(reverse("annotate:task_edit", args=[task.slug]))
    assertContains(response, 'name="asks_reasoning"')
    assertContains(response, "Ask for the reasoning")
