"""The pages of evaluation runs (list, start, a run's figures, blind judging, a new example from a failure) and the
task page's "Judge now" and cancel buttons. Where the endpoint is on, it is the fake OpenAI-compatible server of
tests/fake_llm.py: the model provider is a boundary Pairsmith does not own."""

import re

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import AuditEvent, Example
from models_loop import evaluation
from models_loop.models import EvaluationItem, EvaluationRun, ModelRun
from tests.exports.conftest import build

from .conftest import submitted_example
from .test_evaluation import _outputs, _test_ids, approve_fixed

HTMX = {"HX-Request": "true"}


@pytest.fixture
def held_out(task, lead):
    examples = approve_fixed(task, 40)
    for i, example in enumerate(examples):
        example.instruction = f"Question {i}: where is my parcel? <b>bold</b>"
    Example.objects.bulk_update(examples, ["instruction"])
    return build(task, user=lead, test_ratio=0.25)


@pytest.fixture
def file_run(task, lead, held_out, llm_off):
    return evaluation.evaluation_request(
        task=task, name="ft-v1", user=lead, outputs=_outputs(held_out, text=lambda e: f"<i>model</i> {e.external_id}")
    )


def test_the_list_says_what_is_missing_before_any_export_has_a_test_split(client, task, lead, llm_off):
    client.force_login(lead)
    response = client.get(reverse("models_loop:evaluations", args=[task.slug]))
    assertContains(response, 'data-testid="no-test-split"')
    assertContains(response, "No evaluation runs yet")


def test_a_reviewer_sees_the_runs_but_not_the_form(client, task, reviewer, file_run):
    client.force_login(reviewer)
    response = client.get(reverse("models_loop:evaluations", args=[task.slug]))
    assertContains(response, "ft-v1")
    assertNotContains(response, "Start the run")


def test_a_lead_starts_a_run_from_an_uploaded_file(client, task, lead, held_out, llm_off):
    client.force_login(lead)
    upload = SimpleUploadedFile("outputs.jsonl", _outputs(held_out), content_type="application/jsonl")
    response = client.post(
        reverse("models_loop:evaluation_start", args=[task.slug]),
        {"name": "upload-1", "export": "1", "outputs": upload},
    )
    run = EvaluationRun.objects.get(name="upload-1")
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.source == "file" and run.size == len(_test_ids(held_out)) and run.state == "succeeded"


def test_a_bad_upload_comes_back_naming_the_line_and_nothing_is_stored(client, task, lead, held_out, llm_off):
    client.force_login(lead)
    upload = SimpleUploadedFile("outputs.jsonl", b'{"id": "ext-999", "output": "a"}\n')
    url = reverse("models_loop:evaluation_start", args=[task.slug])
    response = client.post(url, {"name": "bad", "outputs": upload})
    assertContains(response, "Line 1, field &quot;id&quot;: &#x27;ext-999&#x27; is not an example of the test split.")
    assert not EvaluationRun.objects.exists()


def test_without_an_endpoint_or_a_file_the_form_says_the_features_are_off(client, task, lead, held_out, llm_off):
    client.force_login(lead)
    response = client.post(reverse("models_loop:evaluation_start", args=[task.slug]), {"name": "r"})
    assertContains(response, "The model features are off")
    assertContains(response, "upload the model&#x27;s outputs as a file")
    assert not EvaluationRun.objects.exists()


def test_the_judging_page_is_blind_until_the_verdict(client, task, reviewer, file_run):
    client.force_login(reviewer)
    url = reverse("models_loop:evaluation_judge", args=[task.slug, file_run.pk])
    page = client.get(url)
    item = page.context["item"]
    assert item == file_run.items.order_by("id").first()
    body = page.content.decode()
    assert "was the model" not in body and "data-judge-form" in body
    a, b = re.findall(r'data-testid="side-([ab])"><h2>[AB]</h2><div class="fieldtext">(.*?)</div>', body, re.S)
    model_text = f"&lt;i&gt;model&lt;/i&gt; {item.example.external_id}"  # escaped, never markup
    assert (a[1] == model_text) == item.model_first and (b[1] == model_text) != item.model_first
    assert "&lt;b&gt;bold&lt;/b&gt;" in body  # the prompt, escaped
    model_side = "a" if item.model_first else "b"
    response = client.post(url, {"item": item.pk, "choice": model_side, "reasons": ["incomplete"], "comment": "Ok"})
    assert response.status_code == 302 and response["Location"].endswith(f"?after={item.pk}")
    item.refresh_from_db()
    assert (item.result, item.judged_by) == ("better", reviewer)
    after = client.get(f"{url}?item={item.pk}")
    assertContains(after, "was the model's answer")
    assertContains(after, "Model better")


def test_a_verdict_without_a_reason_is_refused_on_the_page(client, task, reviewer, file_run):
    client.force_login(reviewer)
    item = file_run.items.first()
    url = reverse("models_loop:evaluation_judge", args=[task.slug, file_run.pk])
    response = client.post(url, {"item": item.pk, "choice": "a"})
    assert response.status_code == 200
    assertContains(response, "Say why: pick what is wrong with the worse answer")
    assert EvaluationItem.objects.get(pk=item.pk).result == ""


def test_the_run_page_shows_win_tie_loss_with_intervals_and_makes_a_new_example(client, task, reviewer, file_run):
    items = list(file_run.items.order_by("id")[:3])
    for item, result in zip(items, ["better", "worse", "same"], strict=True):
        model = "a" if item.model_first else "b"
        choice = {"better": model, "worse": "b" if model == "a" else "a", "same": "same"}[result]
        evaluation.item_verdict(item=item, user=reviewer, choice=choice, reasons=["other"])
    client.force_login(reviewer)
    page = client.get(file_run.get_absolute_url())
    overall = page.context["figures"]["people"]["overall"]
    assert [c["n"] for c in overall["cells"]] == [1, 1, 1]
    all_row = re.search(r'<tr data-kind="all">.*?</tr>', page.content.decode(), re.S).group()
    assert all_row.count('33% <span class="muted small">(1; 6–79%)</span>') == 3  # Wilson, n = 3
    assertContains(page, 'data-testid="make-example"', count=1)
    response = client.post(
        reverse("models_loop:evaluation_new_example", args=[task.slug, file_run.pk, items[1].pk]),
        {"next": file_run.get_absolute_url()},
    )
    assert response.status_code == 302
    new = EvaluationItem.objects.get(pk=items[1].pk).new_example
    assert new.status == "new" and new.instruction == items[1].example.instruction
    assertContains(client.get(file_run.get_absolute_url()), 'data-testid="new-example-link"')


def test_two_runs_compare_on_the_page(client, task, lead, reviewer, held_out, file_run):
    second = evaluation.evaluation_request(task=task, name="ft-v2", outputs=_outputs(held_out))
    for run, result in ((file_run, "worse"), (second, "better")):
        item = run.items.order_by("example_id").first()
        model = "a" if item.model_first else "b"
        evaluation.item_verdict(
            item=item, user=reviewer, choice=model if result == "better" else ("b" if model == "a" else "a"),
            reasons=["other"],
        )  # fmt: skip
    client.force_login(lead)
    page = client.get(second.get_absolute_url() + f"?with={file_run.pk}")
    assertContains(page, "<strong>1</strong> better, 0 unchanged, <strong>0</strong> worse")


def test_the_live_runs_progress_polls_and_stops(client, task, lead, held_out, llm, settings):
    run = evaluation.evaluation_request(task=task, name="live", user=lead)  # queued: no worker in this test
    client.force_login(lead)
    page = client.get(run.get_absolute_url())
    assertContains(page, 'data-testid="run-live"')
    assertContains(page, "every 2s")
    fragment = client.get(run.get_absolute_url() + "?status=1", headers=HTMX)
    assert fragment.status_code == 200 and b"<html" not in fragment.content
    assertContains(fragment, 'data-testid="cancel-run"')
    client.post(reverse("models_loop:evaluation_cancel", args=[task.slug, run.pk]))
    run.refresh_from_db()
    assert run.state == "cancelled"
    assert AuditEvent.objects.filter(action="evaluation_ended", detail__state="cancelled").exists()
    over = client.get(run.get_absolute_url() + "?status=1", headers=HTMX)
    assert over.status_code == 200 and over["HX-Refresh"] == "true"  # the page reloads with the run's outcome
    assertContains(client.get(run.get_absolute_url()), 'data-testid="run-cancelled"')


def test_the_lead_judges_now_and_cancels_from_the_task_page(client, model_on, lead, annotator, llm):
    submitted_example(model_on, annotator)
    client.force_login(lead)
    task_page = client.get(model_on.get_absolute_url())
    assertContains(task_page, "Judge now")
    fragment = client.post(reverse("models_loop:run_start", args=[model_on.slug, "judge"]), headers=HTMX)
    run = ModelRun.objects.get(kind="judge", example__isnull=True)
    assert run.created_by == lead
    assertContains(fragment, 'data-testid="cancel-judge"')  # queued (no worker here): a progress bar and Cancel
    client.post(reverse("models_loop:run_cancel", args=[model_on.slug, "judge"]), headers=HTMX)
    run.refresh_from_db()
    assert run.state == "cancelled"
    event = AuditEvent.objects.get(action="model_run_cancelled")
    assert event.actor == lead and event.detail["kind"] == "judge"


def test_an_unknown_run_kind_is_a_404(client, model_on, lead, llm):
    client.force_login(lead)
    assert client.post(reverse("models_loop:run_start", args=[model_on.slug, "bogus"])).status_code == 404


def test_a_run_of_another_task_is_a_404(client, task, other_task, lead, file_run):
    from tests.conftest import _member

    other_lead = _member(other_task, "olga", "lead", "reviewer")
    client.force_login(other_lead)
    url = reverse("models_loop:evaluation", args=[other_task.slug, file_run.pk])
    assert client.get(url).status_code == 404


def test_model_answers_are_never_in_an_export(task, lead, reviewer, file_run):
    export = build(task, user=lead, test_ratio=0.25)
    from exports.storage import export_dir

    text = b"".join((export_dir(export) / name).read_bytes() for name in ("train.jsonl", "test.jsonl"))
    assert b"model</i>" not in text and orjson.loads(text.split(b"\n")[0])
