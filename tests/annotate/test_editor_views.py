"""The annotator's pages: next, editor, autosave, conflicts, submit, skip, write new, My work."""

import re

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services
from annotate.models import Example, Revision
from reviews.models import Verdict
from tests.factories import ExampleFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def claim(client, task):
    response = client.post(reverse("annotate:work", args=[task.slug]))
    assert response.status_code == 302
    return response


def test_next_claims_and_opens_the_editor(client, task, annotator):
    example = ExampleFactory(task=task, instruction="Why is the light <b>amber</b>?", context="Model T3")
    client.force_login(annotator)
    response = claim(client, task)
    assert response.url == reverse("annotate:edit", args=[task.slug, example.uuid])
    page = client.get(response.url)
    assertContains(page, "Why is the light &lt;b&gt;amber&lt;/b&gt;?")
    assertContains(page, "Model T3")
    assertContains(page, 'id="id_completion"')
    assertContains(page, 'data-testid="rendered-prompt"')
    example.refresh_from_db()
    assert example.claimed_by == annotator


def test_empty_pool_shows_what_to_do(client, task, annotator):
    client.force_login(annotator)
    response = client.post(reverse("annotate:work", args=[task.slug]), follow=True)
    assert response.redirect_chain == [(reverse("annotate:work", args=[task.slug]), 302)]
    assertContains(response, "Nothing left to annotate")
    assertContains(response, "Write a new example")
    assertNotContains(response, "Start annotating")


def test_editor_page_queries_do_not_grow_with_the_dataset(client, task, annotator, django_assert_max_num_queries):
    ExampleFactory.create_batch(3, task=task)
    client.force_login(annotator)
    url = claim(client, task).url
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get(url)
    ExampleFactory.create_batch(50, task=task)
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(url)


def test_htmx_autosave_returns_only_the_status_and_the_new_version(client, task, annotator):
    ExampleFactory(task=task)
    client.force_login(annotator)
    example = Example.objects.get()
    claim(client, task)
    url = reverse("annotate:save", args=[task.slug, example.uuid])
    response = client.post(
        url, {"completion": "Hold it 10 s", "kind": "happy", "version": 1, "autosave": "1"}, headers=HTMX
    )
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="save-status"' in html and "version 2" in html
    assert 'id="id_version" value="2" hx-swap-oob="true"' in html
    assert Revision.objects.get().reason == "autosave"


def test_autosave_over_a_newer_version_shows_both_texts_and_overwrites_nothing(client, task, annotator):
    ExampleFactory(task=task)
    client.force_login(annotator)
    claim(client, task)
    example = Example.objects.get()
    services.example_save(
        example=example, user=annotator, completion="Typed in tab one", kind="happy", expected_version=1
    )
    url = reverse("annotate:save", args=[task.slug, example.uuid])
    response = client.post(url, {"completion": "Typed in <tab> two", "kind": "happy", "version": 1}, headers=HTMX)
    assertContains(response, "Conflict: this example changed since you opened it")
    assertContains(response, "Typed in tab one")
    assertContains(response, "Typed in &lt;tab&gt; two")
    assertContains(response, "Keep mine (save over version 2)")
    assert Example.objects.get().completion == "Typed in tab one"
    copy = Revision.objects.get(reason="conflict")  # the refused text is kept, not current
    assert (copy.text, copy.example_version) == ("Typed in <tab> two", 1)
    assertContains(response, f"your text is kept as a conflict copy (revision {copy.pk})")
    # what differs is marked, escaped: "<tab> two" only in the user's text, "tab one" only in the stored one
    diff = re.search(r'data-testid="conflict-diff">(.*?)</div>', response.content.decode(), re.S).group(1)
    assert "<del>&lt;tab&gt; two</del>" in diff and "<ins>tab one</ins>" in diff


def test_submit_goes_on_to_the_next_example(client, task, annotator):
    ExampleFactory.create_batch(2, task=task)
    client.force_login(annotator)
    first = Example.objects.order_by("id").first()
    claim(client, task)
    url = reverse("annotate:submit", args=[task.slug, first.uuid])
    response = client.post(url, {"completion": "The answer.", "kind": "edge", "version": 1})
    following = Example.objects.order_by("id").last()
    assert response.url == reverse("annotate:edit", args=[task.slug, following.uuid])  # claimed by the submit
    first.refresh_from_db()
    assert (first.status, first.kind, first.completion) == ("submitted", "edge", "The answer.")
    following.refresh_from_db()
    assert following.claimed_by == annotator


def test_the_last_submit_leads_to_the_empty_state(client, task, annotator):
    ExampleFactory(task=task)
    client.force_login(annotator)
    example = Example.objects.get()
    claim(client, task)
    url = reverse("annotate:submit", args=[task.slug, example.uuid])
    response = client.post(url, {"completion": "The answer.", "kind": "edge", "version": 1}, follow=True)
    assert response.redirect_chain == [(reverse("annotate:work", args=[task.slug]), 302)]
    assertContains(response, "Submitted for review.")
    assertContains(response, "Nothing left to annotate")


def test_submit_of_an_empty_completion_is_refused_with_the_reason(client, task, annotator):
    ExampleFactory(task=task)
    client.force_login(annotator)
    claim(client, task)
    example = Example.objects.get()
    response = client.post(
        reverse("annotate:submit", args=[task.slug, example.uuid]), {"completion": " ", "kind": "happy", "version": 1}
    )
    assert response.status_code == 200
    assertContains(response, "The completion is empty")
    assert Example.objects.get().status == "new"


def test_a_blocking_check_prevents_submitting(client, task, annotator):
    task.output_format = "json"
    task.blocking_checks = ["format"]
    task.save()
    ExampleFactory(task=task)
    client.force_login(annotator)
    claim(client, task)
    example = Example.objects.get()
    url = reverse("annotate:submit", args=[task.slug, example.uuid])
    response = client.post(url, {"completion": "{not json", "kind": "happy", "version": 1})
    assertContains(response, "Fix these before submitting")
    assert Example.objects.get().status == "new"
    response = client.post(url, {"completion": '{"ok": true}', "kind": "happy", "version": 1})
    assert response.status_code == 302
    assert Example.objects.get().status == "submitted"


def test_feedback_counts_and_warns_about_a_leak(client, task, annotator):
    text = "Restart the thermostat by holding the round button for ten full seconds until the ring turns blue"
    ExampleFactory(task=task, input=text)
    client.force_login(annotator)
    claim(client, task)
    example = Example.objects.get()
    response = client.post(
        reverse("annotate:feedback", args=[task.slug, example.uuid]), {"completion": text}, headers=HTMX
    )
    assertContains(response, f"{len(text)} characters")
    assertContains(response, 'data-code="leak"')
    quiet = client.post(
        reverse("annotate:feedback", args=[task.slug, example.uuid]), {"completion": "Hold the button."}, headers=HTMX
    )
    assertNotContains(quiet, 'data-code="leak"')


def test_skip_with_a_reason_goes_to_the_next(client, task, annotator):
    ExampleFactory.create_batch(2, task=task)
    client.force_login(annotator)
    claim(client, task)
    first = Example.objects.order_by("id").first()
    response = client.post(
        reverse("annotate:skip", args=[task.slug, first.uuid]), {"reason": "unclear", "comment": "?"}
    )
    second = Example.objects.order_by("id").last()
    assert response.url == reverse("annotate:edit", args=[task.slug, second.uuid])
    assert first.skips.get().reason == "unclear"
    assert Example.objects.get(pk=first.pk).claimed_by is None
    assert Example.objects.get(pk=second.pk).claimed_by == annotator


def test_write_new_example(client, task, annotator):
    client.force_login(annotator)
    url = reverse("annotate:write_new", args=[task.slug])
    response = client.post(
        url,
        {"instruction": "Tell me a joke about Hearthly", "completion": "I only help with Skylark.", "kind": "negative"},
    )
    example = Example.objects.get()
    assert response.url == reverse("annotate:edit", args=[task.slug, example.uuid])
    assert (example.source, example.kind, example.author) == ("written", "negative", annotator)
    response = client.post(url, {"instruction": "", "kind": "negative"})
    assertContains(response, "This field is required")
    assert Example.objects.count() == 1


def test_my_work_shows_flagged_examples_with_reasons_and_comment(client, task, annotator, reviewer):
    example = ExampleFactory(task=task, author=annotator, status="flagged", completion="Old answer")
    revision = Revision.objects.create(
        example=example, text="Old answer", author=annotator, reason="submit", example_version=1
    )
    Verdict.objects.create(
        example=example,
        revision=revision,
        example_version=1,
        reviewer=reviewer,
        decision="flag",
        reasons=["inaccurate", "format"],
        comment="Mention the <warranty>.",
    )
    client.force_login(annotator)
    response = client.get(reverse("annotate:my_work", args=[task.slug]) + "?status=flagged")
    assertContains(response, "inaccurate")
    assertContains(response, "Mention the &lt;warranty&gt;.")
    editor = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assertContains(editor, "Sent back by rita")
    assertContains(editor, "Mention the &lt;warranty&gt;.")


def test_my_work_queries_do_not_grow(client, task, annotator, django_assert_max_num_queries):
    ExampleFactory.create_batch(3, task=task, author=annotator, status="draft")
    client.force_login(annotator)
    url = reverse("annotate:my_work", args=[task.slug])
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get(url)
    ExampleFactory.create_batch(40, task=task, author=annotator, status="draft")
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(url)


ANNOTATOR_URLS = ["annotate:work", "annotate:my_work", "annotate:write_new"]
EXAMPLE_URLS = ["annotate:edit", "annotate:save", "annotate:feedback", "annotate:submit", "annotate:skip"]


@pytest.mark.parametrize("name", ANNOTATOR_URLS + EXAMPLE_URLS)
def test_annotator_pages_refuse_other_roles_and_outsiders(client, task, reviewer, outsider, name):
    example = ExampleFactory(task=task)
    args = [task.slug, example.uuid] if name in EXAMPLE_URLS else [task.slug]
    methods = [client.get] if name in ANNOTATOR_URLS + ["annotate:edit"] else [client.post]
    if name in ("annotate:work", "annotate:write_new"):
        methods.append(client.post)
    for method in methods:
        client.force_login(reviewer)
        assert method(reverse(name, args=args)).status_code == 403
        client.force_login(outsider)
        assert method(reverse(name, args=args)).status_code == 404
    assert Example.objects.get(pk=example.pk).claimed_by is None


@pytest.mark.parametrize("name", EXAMPLE_URLS)
def test_an_example_of_another_task_is_404_through_my_task(client, task, other_task, annotator, name):
    foreign = ExampleFactory(task=other_task)
    client.force_login(annotator)
    method = client.get if name == "annotate:edit" else client.post
    assert method(reverse(name, args=[task.slug, foreign.uuid])).status_code == 404


def test_someone_elses_draft_is_not_found_and_cannot_be_overwritten(client, task, annotator):
    # It used to open read-only, showing the draft: another annotator's draft is not theirs to read
    # (tests/annotate/test_editor_access.py has every endpoint and case).
    other = UserFactory(username="bob")
    example = ExampleFactory(task=task, author=other, status="draft", completion="Bob's words")
    client.force_login(annotator)
    page = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assert page.status_code == 404
    assertNotContains(page, "Bob's words", status_code=404)
    response = client.post(
        reverse("annotate:save", args=[task.slug, example.uuid]),
        {"completion": "Mine now", "kind": "happy", "version": 1},
        headers=HTMX,
    )
    assert response.status_code == 404
    assert Example.objects.get().completion == "Bob's words"


def chat_task_example(task, *, editable: bool):
    task.output_format = "chat"
    task.chat_turns_editable = editable
    task.save()
    prior = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    return ExampleFactory(task=task, instruction="My heating is off", messages=prior)


def test_chat_turns_are_editable_where_the_task_allows(client, task, annotator):
    example = chat_task_example(task, editable=True)
    client.force_login(annotator)
    claim(client, task)
    page = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assertContains(page, 'name="turn-1-content"')
    data = {
        "completion": "Let us check the boiler.",
        "kind": "happy",
        "version": 1,
        **{"turn-0-role": "user", "turn-0-content": "Hi there"},
        **{"turn-1-role": "assistant", "turn-1-content": "Hello!"},
    }
    response = client.post(reverse("annotate:save", args=[task.slug, example.uuid]), data, headers=HTMX)
    assertContains(response, "Saved")
    example.refresh_from_db()
    assert example.messages == [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]


def test_chat_turns_stay_as_they_are_where_the_task_does_not_allow(client, task, annotator):
    example = chat_task_example(task, editable=False)
    client.force_login(annotator)
    claim(client, task)
    page = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assertNotContains(page, 'name="turn-0-content"')
    assertContains(page, "Hello! How can I help?")
    data = {"completion": "Ok.", "kind": "happy", "version": 1, "turn-0-role": "user", "turn-0-content": "Changed"}
    client.post(reverse("annotate:save", args=[task.slug, example.uuid]), data, headers=HTMX)
    example.refresh_from_db()
    assert example.messages[0]["content"] == "Hi"


def test_a_bad_chat_turn_is_named_and_nothing_is_saved(client, task, annotator):
    example = chat_task_example(task, editable=True)
    client.force_login(annotator)
    claim(client, task)
    data = {"completion": "Ok.", "kind": "happy", "version": 1, "turn-0-role": "robot", "turn-0-content": "beep"}
    response = client.post(reverse("annotate:save", args=[task.slug, example.uuid]), data, headers=HTMX)
    assertContains(response, "Turn 1: unknown role &#x27;robot&#x27;")
    example.refresh_from_db()
    assert example.version == 1 and example.messages[0]["content"] == "Hi"


def test_a_blocking_task_wide_check_found_by_the_last_scan_prevents_submitting(client, task, annotator):
    task.blocking_checks = ["duplicate"]
    task.save()
    duplicate = {"code": "duplicate", "message": "Example 7 has the same prompt.", "blocking": False, "detail": {}}
    ExampleFactory(task=task, warnings=[duplicate], warning_codes=",duplicate,")
    client.force_login(annotator)
    claim(client, task)
    example = Example.objects.get()
    url = reverse("annotate:submit", args=[task.slug, example.uuid])
    response = client.post(url, {"completion": "A fine answer of several words.", "kind": "happy", "version": 1})
    assertContains(response, "Fix these before submitting: Example 7 has the same prompt.")
    assert Example.objects.get().status == "new"
    task.blocking_checks = []  # only a warning now: the same submit goes through
    task.save()
    response = client.post(url, {"completion": "A fine answer of several words.", "kind": "happy", "version": 1})
    assert response.status_code == 302
    assert Example.objects.get().status == "submitted"


def test_a_field_the_template_needs_outside_optional_sections_must_be_filled(client, task, annotator):
    template = task.current_template
    template.prompt_format = (
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n[[{context}\n\n]]### Response:\n"
    )
    template.save()
    ExampleFactory(task=task, template=template, input="", context="")
    client.force_login(annotator)
    claim(client, task)
    example = Example.objects.get()
    response = client.post(
        reverse("annotate:feedback", args=[task.slug, example.uuid]), {"completion": "Fine."}, headers=HTMX
    )
    assertContains(response, "The input is empty.")
    assertNotContains(response, "The context is empty.")  # context sits in an optional section


def test_the_chat_prompt_estimate_counts_every_prior_turn_not_only_the_last(client, task, annotator):
    from annotate.quality import count_tokens

    long_turn = "My boiler shows error E119 every morning and the pressure gauge reads below one bar. " * 5
    example = chat_task_example(task, editable=False)
    example.messages = [{"role": "user", "content": long_turn}, {"role": "assistant", "content": long_turn}]
    example.save()
    client.force_login(annotator)
    claim(client, task)
    response = client.post(
        reverse("annotate:feedback", args=[task.slug, example.uuid]), {"completion": "Fine."}, headers=HTMX
    )
    shown = int(re.search(r"\(≈(\d+) with the prompt, estimated\)", response.content.decode()).group(1))
    assert shown >= 2 * count_tokens(long_turn) + count_tokens("My heating is off")


def test_the_editor_names_the_example_by_its_external_id_with_the_uuid_to_copy(client, task, annotator):
    example = ExampleFactory(task=task, external_id="seed_task_<31>")
    client.force_login(annotator)
    claim(client, task)
    page = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assertContains(page, '<strong data-testid="external-id">seed_task_&lt;31&gt;</strong>', html=False)
    assertContains(page, f"{example.uuid}</code>")
    assertContains(page, 'data-copy="#example-uuid"')


def test_next_on_an_untouched_example_moves_on_and_gives_it_back_to_the_pool(client, task, annotator):
    first = ExampleFactory(task=task, instruction="First?")
    second = ExampleFactory(task=task, instruction="Second?")
    client.force_login(annotator)
    work = reverse("annotate:work", args=[task.slug])
    opened = client.post(work)
    assert opened.url == reverse("annotate:edit", args=[task.slug, first.uuid])
    moved = client.post(work, {"after": str(first.uuid)})  # "Next →" (Alt+N) in the editor of `first`
    assert moved.url == reverse("annotate:edit", args=[task.slug, second.uuid])
    first.refresh_from_db()
    assert (first.status, first.claimed_by) == ("new", None)  # back in the pool for anyone, nothing skipped
    again = client.post(work, {"after": str(second.uuid)})  # the last one: `first` comes back round
    assert again.url == reverse("annotate:edit", args=[task.slug, first.uuid])


def test_next_from_a_draft_keeps_the_draft_and_opens_another(client, task, annotator):
    first = ExampleFactory(task=task, instruction="First?")
    second = ExampleFactory(task=task, instruction="Second?")
    client.force_login(annotator)
    client.post(reverse("annotate:work", args=[task.slug]))
    services.example_save(example=first, user=annotator, completion="Half an answer", kind="happy", expected_version=1)
    moved = client.post(reverse("annotate:work", args=[task.slug]), {"after": str(first.uuid)})
    assert moved.url == reverse("annotate:edit", args=[task.slug, second.uuid])
    first.refresh_from_db()
    assert (first.status, first.author, first.completion) == ("draft", annotator, "Half an answer")
    page = client.get(reverse("annotate:edit", args=[task.slug, second.uuid]))
    assertContains(page, f'name="after" value="{second.uuid}"')
