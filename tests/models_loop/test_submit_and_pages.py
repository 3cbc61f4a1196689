"""What people see and what is stored at submit: the draft in the editor marked "model draft", drafts hidden from
some annotators, the change measured at submit, the judge's advice on the review page, the lead's model settings with
their preview, the task page's button and panel, the dashboard's figures, and every page saying when it is off."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import AuditEvent, Example, Kind
from models_loop import services
from models_loop.models import DraftEdit, Judgement, ModelRun, TaskModelSettings
from models_loop.runs import model_run
from reviews import services as review_services

from .conftest import new_examples, submitted_example

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def drafted(task, n: int = 1) -> list[Example]:
    """`n` new examples, drafted by the fake model (the run's job called here: the test's transaction never commits,
    so nothing is sent)."""
    examples = new_examples(task, n)
    model_run(run_id=services.run_request(task=task, kind="draft").pk)
    return [Example.objects.get(pk=e.pk) for e in examples]


def open_editor(client, task, user) -> tuple[Example, object]:
    client.force_login(user)
    url = client.post(reverse("annotate:work", args=[task.slug])).url  # taking work is a POST
    example = Example.objects.get(uuid=url.rstrip("/").split("/")[-2])
    return example, client.get(url)


def submit(client, task, example, text: str, kind: str = "happy"):
    example.refresh_from_db()
    data = {"completion": text, "kind": kind, "version": example.version}
    return client.post(reverse("annotate:submit", args=[task.slug, example.uuid]), data)


# --- the editor ----------------------------------------------------------------------------------------------------


def test_the_annotator_opens_the_draft_in_the_box_marked_model_draft(client, model_on, annotator, llm):
    drafted(model_on)
    example, page = open_editor(client, model_on, annotator)
    assert page.context["form"]["completion"].value() == f"Draft: {example.instruction}"
    assertContains(page, 'data-testid="model-draft"')
    assertContains(page, "model draft (fake-model)")
    # An autosave of the same text keeps it the model's; an edit makes it the annotator's.
    save = reverse("annotate:save", args=[model_on.slug, example.uuid])
    client.post(save, {"completion": example.completion, "kind": "happy", "version": example.version, "autosave": "1"})
    assertContains(client.get(reverse("annotate:edit", args=[model_on.slug, example.uuid])), "model draft (fake-model)")
    example.refresh_from_db()
    client.post(save, {"completion": example.completion + " Sorry!", "kind": "happy", "version": example.version})
    assertNotContains(client.get(reverse("annotate:edit", args=[model_on.slug, example.uuid])), "model-draft")


def test_drafts_are_hidden_from_the_annotators_the_lead_lists(client, model_on, lead, annotator, second_annotator, llm):
    services.model_settings_save(task=model_on, user=lead, values={}, hidden_from=[second_annotator])
    drafted(model_on, 3)  # the submit below takes the next one for its annotator: a third for `annotator`
    example, page = open_editor(client, model_on, second_annotator)
    assert page.context["form"]["completion"].value() == ""
    assertNotContains(page, "model-draft")
    assertNotContains(page, "Draft: ")  # nowhere on the page
    submit(client, model_on, example, "Parcel 0 ships Monday from our Leeds depot.")
    edit = DraftEdit.objects.get(example=example)
    assert (edit.shown, edit.annotator, edit.change) == (False, second_annotator, "rewritten")
    other, page = open_editor(client, model_on, annotator)
    assertContains(page, "model draft (fake-model)")
    assert other != example


@pytest.mark.parametrize(
    ("final", "change", "similarity"),
    [
        ("Draft: Question 0: where is parcel 0?", "unchanged", 1.0),
        ("Draft: Question 0: where is parcel zero?", "light", 0.8333),  # 5 of 6 word pairs kept
        ("It left the depot on Monday and arrives Thursday.", "rewritten", 0.0),
    ],
)
def test_the_change_from_the_draft_is_stored_at_submit(client, model_on, annotator, llm, final, change, similarity):
    drafted(model_on)
    example, _ = open_editor(client, model_on, annotator)
    assert submit(client, model_on, example, final, kind="edge").status_code == 302
    edit = DraftEdit.objects.get()
    assert (edit.example, edit.change, edit.similarity, edit.kind, edit.shown) == (
        example,
        change,
        similarity,
        Kind.EDGE,
        True,
    )
    assert edit.draft.reason == "model_draft" and edit.submitted.reason == "submit"
    assert edit.submitted.text == final


def test_a_refused_submit_stores_no_measure(client, model_on, annotator, llm):
    model_on.blocking_checks = ["whitespace"]  # a check a submit runs ("short" is judged task-wide since issue 14)
    model_on.save()
    drafted(model_on)
    example, _ = open_editor(client, model_on, annotator)
    response = submit(client, model_on, example, "Ok \n")
    assert response.status_code == 200 and "Fix these before submitting" in response.content.decode()
    assert not DraftEdit.objects.exists()


def test_only_the_first_submit_after_a_draft_is_measured(client, model_on, annotator, reviewer, llm):
    drafted(model_on)
    example, _ = open_editor(client, model_on, annotator)
    submit(client, model_on, example, example.completion)
    example.refresh_from_db()
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"]
    )
    submit(client, model_on, example, "Rewritten entirely after the flag, from scratch.")
    assert list(DraftEdit.objects.values_list("change", flat=True)) == ["unchanged"]


def test_a_text_without_a_draft_is_not_measured(client, model_on, annotator, llm):
    new_examples(model_on, 1)
    example, _ = open_editor(client, model_on, annotator)
    submit(client, model_on, example, "Written by a person.")
    assert Example.objects.get(pk=example.pk).status == "submitted" and not DraftEdit.objects.exists()


# --- the review page -----------------------------------------------------------------------------------------------


def test_the_reviewer_sees_the_judges_score_and_reason_as_advice(client, model_on, annotator, reviewer, llm):
    example = submitted_example(model_on, annotator, "Figure it out.")
    Judgement.objects.create(
        example=example, revision=example.revisions.get(), score=2, reason="Curt <b>and</b> unhelpful.", model="judge-m"
    )
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[model_on.slug, example.uuid]))
    assertContains(page, """data-testid="judge-score" title="The model judge's score, 1 to 5">judge 2/5</span>""")
    assertContains(page, "Curt &lt;b&gt;and&lt;/b&gt; unhelpful.")
    assertContains(page, "Advice from the model judge-m: not a verdict.")
    assertNotContains(page, "about an earlier text")


def test_the_review_page_says_a_judgement_is_about_an_earlier_text(client, model_on, annotator, reviewer, llm):
    example = submitted_example(model_on, annotator, "Figure it out.")
    Judgement.objects.create(example=example, revision=example.revisions.get(), score=2, reason="Curt.", model="m")
    Example.objects.filter(pk=example.pk).update(completion="Edited meanwhile.")
    client.force_login(reviewer)
    assertContains(client.get(reverse("reviews:review", args=[model_on.slug, example.uuid])), "about an earlier text")


def test_the_review_page_says_the_text_started_from_a_draft(client, model_on, annotator, reviewer, llm):
    drafted(model_on)
    example, _ = open_editor(client, model_on, annotator)
    submit(client, model_on, example, example.completion)
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[model_on.slug, example.uuid]))
    assertContains(page, "Started from a model draft: accepted unchanged (100% of its word pairs kept).")


def test_no_advice_no_panel_on_the_review_page(client, task, annotator, reviewer):
    example = submitted_example(task, annotator)
    client.force_login(reviewer)
    assertNotContains(client.get(reverse("reviews:review", args=[task.slug, example.uuid])), "model-advice")


# --- the lead's settings page --------------------------------------------------------------------------------------


def test_the_settings_page_shows_the_default_prompts_and_the_preview(client, model_on, lead, llm):
    new_examples(model_on, 1)
    client.force_login(lead)
    page = client.get(reverse("models_loop:settings", args=[model_on.slug]))
    assertContains(page, 'data-testid="model-on"')
    assertContains(page, "its default model is <code>fake-model</code>")
    assertContains(page, "Guidelines:\nAnswer briefly and politely.")
    assertContains(
        page, '<pre class="record" data-role="user" data-request="draft">[user]\nQuestion 0: where is parcel 0?'
    )
    assertContains(page, "Completion:\n(the annotator&#x27;s completion)")


def test_the_preview_follows_the_typed_prompt_and_escapes_it(client, model_on, lead, llm):
    client.force_login(lead)
    data = {"draft_prompt": "Answer <script>alert(1)</script> briefly.", "judge_prompt": ""}
    fragment = client.post(reverse("models_loop:preview", args=[model_on.slug]), data, headers=HTMX)
    html = fragment.content.decode()
    assert "<html" not in html and 'id="prompt-preview" hx-disable' in html
    assert "[system]\nAnswer &lt;script&gt;alert(1)&lt;/script&gt; briefly." in html
    assert "<script>alert" not in html
    assert "Where is my parcel?" in html  # no example yet: the sample


def test_saving_the_settings_is_audited(client, model_on, lead, annotator, llm):
    client.force_login(lead)
    data = {"drafts_enabled": "on", "model_name": "tuned-7b", "draft_prompt": "Be terse.", "judge_prompt": "",
            "drafts_hidden_from": [annotator.pk]}  # fmt: skip
    response = client.post(reverse("models_loop:settings", args=[model_on.slug]), data)
    assert response.status_code == 302
    row = TaskModelSettings.objects.get(task=model_on)
    assert (row.drafts_enabled, row.judge_enabled, row.model_name, row.draft_prompt) == (
        True,
        False,
        "tuned-7b",
        "Be terse.",
    )
    assert list(row.drafts_hidden_from.all()) == [annotator]
    event = AuditEvent.objects.filter(action="model_settings").latest("id")
    assert event.actor == lead
    assert event.detail == {
        "fields": ["draft_prompt", "judge_enabled", "model_name", "drafts_hidden_from"],
        "drafts_enabled": True, "judge_enabled": False, "model_name": "tuned-7b", "drafts_hidden_from": ["anna"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model_name": "gpt\n4"}, "The model name may not hold control characters or start or end with a space."),
        ({"model_name": "m" * 201}, "Ensure this value has at most 200 characters (it has 201)."),
        ({"draft_prompt": "x" * 20_001}, "The prompt is 20,001 characters; the limit is 20,000."),
        ({"judge_prompt": "nul \x00"}, "Null characters are not allowed."),  # Django's own check of a form field
        ({"drafts_hidden_from": ["999"]}, "Select a valid choice. 999 is not one of the available choices."),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_change_nothing(client, model_on, lead, llm, data, message):
    client.force_login(lead)
    events = AuditEvent.objects.count()
    before = TaskModelSettings.objects.filter(task=model_on).values().get()
    response = client.post(reverse("models_loop:settings", args=[model_on.slug]), {"drafts_enabled": "", **data})
    assert response.status_code == 200
    assertContains(response, message, html=False)
    assert TaskModelSettings.objects.filter(task=model_on).values().get() == before
    assert AuditEvent.objects.count() == events


def test_a_non_annotator_cannot_be_hidden_from_drafts(model_on, lead, reviewer):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Not annotators of this task: rita"):
        services.model_settings_save(task=model_on, user=lead, values={}, hidden_from=[reviewer])


# --- the task page and the dashboard ---------------------------------------------------------------------------


def test_the_task_page_offers_the_lead_the_draft_button_and_shows_progress(client, model_on, lead, llm):
    new_examples(model_on, 2)
    client.force_login(lead)
    page = client.get(model_on.get_absolute_url())
    assertContains(page, "Draft with the model")
    fragment = client.post(reverse("models_loop:run_start", args=[model_on.slug, "draft"]), headers=HTMX)
    html = fragment.content.decode()
    assert "<html" not in html and "Drafting with fake-model…" in html and 'hx-trigger="every 2s"' in html
    run = ModelRun.objects.get()
    assert AuditEvent.objects.filter(action="model_run_requested", actor=lead).exists()
    model_run(run_id=run.pk)
    status = client.get(reverse("models_loop:run_status", args=[model_on.slug, "draft"]), headers=HTMX)
    assert status.status_code == 286  # htmx: stop polling
    assertContains(status, "2 drafted", status_code=286)
    assertNotContains(status, "every 2s", status_code=286)


def test_a_plain_post_of_the_button_redirects_with_a_message(client, model_on, lead, llm):
    client.force_login(lead)
    response = client.post(reverse("models_loop:run_start", args=[model_on.slug, "draft"]), follow=True)
    assertContains(response, "Drafting with fake-model: queued.")


def test_the_button_says_why_when_drafts_are_off_for_the_task(client, task, lead, llm):
    client.force_login(lead)
    fragment = client.post(reverse("models_loop:run_start", args=[task.slug, "draft"]), headers=HTMX)
    assertContains(fragment, "Drafts are off for support: a lead turns them on in the task&#x27;s model settings.")
    assertNotContains(client.get(task.get_absolute_url()), "Draft with the model")
    assert not ModelRun.objects.exists()


def test_unset_every_page_says_the_model_features_are_off(client, model_on, lead, annotator, llm_off):
    client.force_login(lead)
    off = "The model features are off: set LLM_BASE_URL"
    for url in (
        reverse("models_loop:settings", args=[model_on.slug]),
        model_on.get_absolute_url(),
        reverse("annotate:dashboard", args=[model_on.slug]),
    ):
        page = client.get(url)
        assertContains(page, off)
        assertNotContains(page, "Draft with the model")
    response = client.post(reverse("models_loop:run_start", args=[model_on.slug, "draft"]), follow=True)
    assertContains(response, off)
    fragment = client.post(reverse("models_loop:run_start", args=[model_on.slug, "draft"]), headers=HTMX)
    assertContains(fragment, off)
    assert not ModelRun.objects.exists()


def test_the_dashboard_shows_spend_and_drafts_accepted_per_kind(client, model_on, lead, annotator, llm):
    drafted(model_on, 3)
    finals = [("unchanged", "happy"), ("light", "happy"), ("rewritten", "edge")]
    for change, kind in finals:
        example, _ = open_editor(client, model_on, annotator)
        text = {"unchanged": example.completion, "light": example.completion + " Sorry.", "rewritten": "All new."}
        submit(client, model_on, example, text[change], kind=kind)
    client.force_login(lead)
    page = client.get(reverse("annotate:dashboard", args=[model_on.slug]))
    spend = TaskModelSettings.objects.get(task=model_on)
    assertContains(page, f'<dd data-testid="spend-in">{spend.tokens_in}</dd>')
    assertContains(page, f'<dd data-testid="spend-out">{spend.tokens_out}</dd>')
    assertContains(page, '<dd data-testid="spend-requests">3</dd>')
    html = page.content.decode()
    happy = html.split('<tr data-kind="happy">')[1].split("</tr>")[0]
    assert happy.count("(50%)") == 2 and "(0%)" in happy
    edge = html.split('<tr data-kind="edge">')[1].split("</tr>")[0]
    assert "(100%)" in edge
    everything = html.split('<tr data-kind="all">')[1].split("</tr>")[0]
    assert everything.count("<strong>33%</strong>") == 3


def test_reviewers_see_the_judges_agreement_on_the_task_page(client, model_on, annotator, reviewer, llm):
    example = submitted_example(model_on, annotator)
    Judgement.objects.create(example=example, revision=example.revisions.get(), score=1, reason="Bad.", model="m")
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="reject", version=example.version, reasons=["inaccurate"]
    )
    client.force_login(reviewer)
    page = client.get(model_on.get_absolute_url())
    assertContains(page, '<dd data-testid="low-caught">100%</dd>')
    assertNotContains(page, "Draft with the model")  # the button is the lead's


def test_annotators_see_no_model_panel(client, model_on, annotator, llm):
    client.force_login(annotator)
    assertNotContains(client.get(model_on.get_absolute_url()), "model-panel")


def test_model_output_is_exported_only_once_a_person_submitted_it_and_a_reviewer_approved_it(
    client, model_on, annotator, reviewer, lead, llm, settings, tmp_path
):
    from exports import services as export_services
    from tests.exports.conftest import build

    settings.VAR_DIR = tmp_path
    first, second = drafted(model_on, 2)
    judged = submitted_example(model_on, annotator, "A person's answer.", "Who wrote this?")
    Judgement.objects.create(example=judged, revision=judged.revisions.get(), score=5, reason="JUDGE-REASON", model="m")
    review_services.verdict_record(example=judged, reviewer=reviewer, decision="approve", version=judged.version)

    def exported() -> str:
        export = build(model_on, user=lead, validation_ratio=0)
        assert export.state == "succeeded", export.error
        folder = export_services.export_dir(export)
        return "".join(path.read_text() for path in sorted(folder.iterdir()) if path.is_file())

    text = exported()
    assert "A person's answer." in text
    assert first.completion not in text and second.completion not in text  # drafts nobody submitted
    assert "JUDGE-REASON" not in text  # judgements are never exported
    example, _ = open_editor(client, model_on, annotator)
    submit(client, model_on, example, example.completion)  # accepted unchanged by the annotator...
    assert example.completion not in exported()  # ...but not yet approved
    example.refresh_from_db()
    review_services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=example.version)
    assert example.completion in exported()


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"judge_prompt": "nul \x00"}, "judge_prompt", "The prompt contains a NUL character."),
        ({"draft_prompt": "x" * 20_001}, "draft_prompt", "The prompt is 20,001 characters; the limit is 20,000."),
        ({"model_name": " gpt"}, "model_name", "may not hold control characters or start or end with a space."),
        ({"endpoint": "http://169.254.169.254/"}, None, "Not model settings: endpoint."),  # no address from users
    ],
)
def test_the_service_refuses_bad_settings_naming_the_field(model_on, lead, values, field, message):
    from django.core.exceptions import ValidationError

    before = TaskModelSettings.objects.filter(task=model_on).values().get()
    with pytest.raises(ValidationError) as caught:
        services.model_settings_save(task=model_on, user=lead, values=values)
    error = caught.value
    assert message in " ".join(error.message_dict[field] if hasattr(error, "error_dict") else error.messages)
    assert TaskModelSettings.objects.filter(task=model_on).values().get() == before
