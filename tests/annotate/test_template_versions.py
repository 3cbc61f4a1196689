"""Labels follow the prompt format the lead wrote; a lead moves examples from older template versions to the current
one after a preview, as one recorded job."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import AuditEvent, Example, TemplateMove
from annotate.services import template_save
from annotate.template_versions import headings, labels_following, template_move_preview
from tests.annotate.test_lead_pages import template_post
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db

QUESTION = "### Question:\n{instruction}\n\n[[### Context:\n{context}\n\n]]### Answer:\n"
MESSAGE = "### Customer message:\n{instruction}\n\n[[Order history: {context}\n\n]]### Reply:\n"


def test_headings_are_read_from_the_lines_before_placeholders():
    assert headings(QUESTION) == {"instruction": "Question", "context": "Context"}
    assert headings(MESSAGE) == {"instruction": "Customer message", "context": "Order history"}
    assert headings("{instruction}\n\n{input}") == {}
    assert headings("> **Note**: {input}") == {}  # "**" is no heading text; bold markers are left alone


def test_a_label_the_lead_left_alone_follows_the_rewritten_heading_and_an_edited_one_stays():
    old_fields = {"instruction": {"label": "Question", "help": ""}, "context": {"label": "Context", "help": "x"}}
    posted = {"instruction": {"label": "Question", "help": ""}, "context": {"label": "Background", "help": "x"}}
    result = labels_following(old_format=QUESTION, new_format=MESSAGE, old_fields=old_fields, posted_fields=posted)
    assert result["instruction"] == {"label": "Customer message", "help": ""}
    assert result["context"] == {"label": "Background", "help": "x"}  # edited in this save: the lead's word wins
    same = labels_following(old_format=QUESTION, new_format=QUESTION, old_fields=old_fields, posted_fields=posted)
    assert same["instruction"]["label"] == "Question"  # the heading did not change: nothing follows


def test_saving_a_rewritten_template_relabels_the_fields_in_the_editor(client, task, lead, annotator):
    client.force_login(lead)
    url = reverse("annotate:template_edit", args=[task.slug])
    labels = {"instruction_label": "Question", "context_label": "Context"}
    assert client.post(url, template_post(task, prompt_format=QUESTION, save="1", **labels)).status_code == 302
    assert client.post(url, template_post(task, prompt_format=MESSAGE, save="1", **labels)).status_code == 302
    template = task.current_template
    assert template.field_label("instruction") == "Customer message"
    assert template.field_label("context") == "Order history"


@pytest.fixture
def two_versions(task, lead):
    """Examples on v1 ("Question"), then a v2 ("Customer message") that new examples use."""
    template_save(
        task=task,
        values={
            "prompt_format": QUESTION,
            "fields": {"instruction": {"label": "Question", "help": ""}, "context": {"label": "Context", "help": ""}},
        },
        user=lead,
    )
    old = [ExampleFactory(task=task, instruction=f"Where is order {i}?") for i in range(3)]
    template_save(task=task, values={"prompt_format": MESSAGE, "fields": {
        "instruction": {"label": "Customer message", "help": ""}, "context": {"label": "Order history", "help": ""}}},
        user=lead)  # fmt: skip
    task.refresh_from_db()
    new = ExampleFactory(task=task, instruction="Can I return it?")
    return old, new


def test_the_preview_counts_the_examples_and_shows_what_changes(client, task, lead, two_versions):
    preview = template_move_preview(task=task)
    assert preview.examples == 3
    (change,) = preview.changes
    assert change.template.version == 1
    assert ("instruction", "Question", "Customer message") in change.labels
    assert change.sample_before.startswith("### Question:\nWhere is order 0?")
    assert change.sample_after.startswith("### Customer message:\nWhere is order 0?")
    client.force_login(lead)
    page = client.get(reverse("annotate:template_edit", args=[task.slug]))
    assertContains(page, "3 examples still use an older version.")
    response = client.get(reverse("annotate:template_move", args=[task.slug]))
    assertContains(response, "Version 1: 3 examples")
    assertContains(response, "<strong>Customer message</strong>", html=True)
    assertContains(response, "Move 3 examples to version 2")


def test_moving_puts_every_example_on_the_current_version_and_records_it(
    client, task, lead, two_versions, django_capture_on_commit_callbacks, inline_celery
):
    old, new = two_versions
    texts = {e.pk: (e.instruction, e.completion, e.version) for e in old}
    client.force_login(lead)
    url = reverse("annotate:template_move", args=[task.slug])
    with django_capture_on_commit_callbacks(execute=True):  # Celery runs inline in the unit tests, at commit
        response = client.post(url, {"expected": "3"})
    response = client.get(response.url)
    assertContains(response, "Moved 3 examples to template version 2.")
    current = task.current_template
    assert set(Example.objects.filter(task=task).values_list("template", flat=True)) == {current.pk}
    for example in Example.objects.filter(pk__in=texts):
        assert (example.instruction, example.completion, example.version) == texts[example.pk]  # texts unchanged
    event = AuditEvent.objects.get(action="template_moved")
    assert (event.actor, event.target, event.detail["examples"]) == (lead, "v2", 3)
    assert TemplateMove.objects.get().state == "succeeded"
    assertContains(client.get(url), "nothing to move")
    assertNotContains(client.get(reverse("annotate:template_edit", args=[task.slug])), "older version")


def test_a_stale_preview_moves_nothing(client, task, lead, two_versions):
    client.force_login(lead)
    response = client.post(reverse("annotate:template_move", args=[task.slug]), {"expected": "2"}, follow=True)
    assertContains(response, "3 examples use older versions now, not the 2 of the preview")
    assert Example.objects.filter(task=task, template__version=1).count() == 3
    assert not TemplateMove.objects.exists()
    assert not AuditEvent.objects.filter(action="template_moved").exists()


def test_nothing_to_move_says_so(client, task, lead):
    ExampleFactory(task=task)
    client.force_login(lead)
    response = client.post(reverse("annotate:template_move", args=[task.slug]), {"expected": "0"}, follow=True)
    assertContains(response, "Every example already uses the current template version.")


def test_the_job_moves_in_batches_and_reports_its_progress(task, lead, two_versions, monkeypatch):
    from annotate import template_versions

    monkeypatch.setattr(template_versions, "BATCH", 2)  # 3 examples: two batches
    move = TemplateMove.objects.create(task=task, to_template=task.current_template, total=3, created_by=lead)
    template_versions.template_move_run(job_id=move.pk)
    move.refresh_from_db()
    assert (move.state, move.progress) == ("succeeded", 3)
    assert not Example.objects.filter(task=task, template__version=1).exists()


def test_the_live_preview_names_the_field_to_fix(client, task, lead):
    client.force_login(lead)
    url = reverse("annotate:template_preview", args=[task.slug])
    response = client.post(url, template_post(task, prompt_format="### Q:\n{question}\n", instruction_label=""))
    assertContains(response, "Prompt format: unknown placeholder {question}")
    assertContains(response, "Label of “instruction”: This field is required.")
    assertNotContains(response, "fix the fields marked on the left")


@pytest.mark.redis
def test_a_real_worker_moves_the_examples(celery_worker_process, task, lead, two_versions):
    import time

    from annotate.template_versions import template_move_request

    move = template_move_request(task=task, user=lead, expected=3)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        move.refresh_from_db()
        if not move.is_live:
            break
        time.sleep(0.3)
    assert (move.state, move.progress) == ("succeeded", 3), move.error
    assert not Example.objects.filter(task=task, template__version=1).exists()
