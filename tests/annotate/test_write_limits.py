"""The limits of an example's text (annotate/limits.py) hold on every way text comes in, as they do for imports.

"Write a new example", the editor's save, feedback and submit (the completion and the chat turns a task lets
annotators edit) and the reviewer's edit each refuse text over the limits with a message naming the field and the
limit, and store nothing. A new example gets the per-example quality checks a save runs.
"""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate import importing, limits, services
from annotate.models import Example, Revision, Role
from reviews.models import Verdict
from tests.conftest import _member
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
LIMIT = limits.MAX_FIELD_CHARS


def _write_new(client, task, **data):
    values = {"instruction": "What if the app shows error E42?", "completion": "Restart the hub.", "kind": "edge"}
    return client.post(reverse("annotate:write_new", args=[task.slug]), {**values, **data})


# --- write a new example --------------------------------------------------------------------------------------------


def test_import_and_every_other_way_in_share_one_limit():
    assert importing.MAX_FIELD_CHARS is limits.MAX_FIELD_CHARS == 100_000
    assert services.MAX_COMPLETION_CHARS == limits.MAX_FIELD_CHARS


def test_a_two_million_character_instruction_is_refused_naming_the_field_and_nothing_is_stored(client, task, annotator):
    client.force_login(annotator)
    response = _write_new(client, task, instruction="Why? " * 400_000)
    assert response.status_code == 200
    assertContains(response, "The instruction is 2,000,000 characters; the limit is 100,000.")
    assert not Example.objects.exists()
    assert not Revision.objects.exists()


@pytest.mark.parametrize("field", ["context", "input", "completion"])
def test_every_field_of_a_new_example_has_the_limit(client, task, annotator, field):
    client.force_login(annotator)
    response = _write_new(client, task, **{field: "x" * (LIMIT + 1)})
    assertContains(response, f"The {field} is 100,001 characters; the limit is 100,000.")
    assert not Example.objects.exists()


def test_the_limit_counts_the_text_as_stored_not_the_browsers_crlf(client, task, annotator):
    # Browsers send textareas with CRLF line ends; stored, each is one character, and that is what counts.
    client.force_login(annotator)
    instruction = ("y" * 99 + "\r\n") * 1000  # 101,000 characters sent, 100,000 stored
    response = _write_new(client, task, instruction=instruction)
    assert response.status_code == 302
    assert len(Example.objects.get().instruction) == LIMIT


def test_the_service_refuses_too_long_fields_whoever_calls_it(task, annotator):
    with pytest.raises(ValidationError) as caught:
        services.example_write_new(
            task=task, user=annotator, fields={"instruction": "Q?", "input": "z" * (LIMIT + 5)}, completion="A.",
            kind="edge",
        )  # fmt: skip
    assert caught.value.message_dict == {"input": ["The input is 100,005 characters; the limit is 100,000."]}
    with pytest.raises(ValidationError, match="NUL character"):
        services.example_write_new(
            task=task, user=annotator, fields={"instruction": "Q\x00?"}, completion="", kind="edge"
        )
    assert not Example.objects.exists()


def test_a_new_example_gets_the_quality_checks_a_save_runs(client, task, annotator):
    client.force_login(annotator)
    question = "How do I reset the Skylark thermostat to its factory settings?"
    assert _write_new(client, task, instruction=question, completion=question).status_code == 302
    example = Example.objects.get()
    assert example.warning_codes == ",leak,"
    assert [w["code"] for w in example.warnings] == ["leak"] and example.risk > 0
    # the same text saved through the editor stores the same warnings
    saved = services.example_save(
        example=example, user=annotator, completion=question + " ", kind="edge", expected_version=example.version
    )
    assert {w["code"] for w in saved.warnings} >= {"leak"}


# --- the editor: completion, feedback, chat turns ---------------------------------------------------------------


def _held(task, annotator, **fields):
    example = ExampleFactory(task=task, **fields)
    services.example_claim_next(task=task, user=annotator)
    example.refresh_from_db()
    assert example.claimed_by == annotator
    return example


def test_an_autosave_over_the_limit_names_it_and_stores_nothing(client, task, annotator):
    example = _held(task, annotator)
    client.force_login(annotator)
    url = reverse("annotate:save", args=[task.slug, example.uuid])
    response = client.post(url, {"completion": "w" * (LIMIT + 1), "kind": "happy", "version": 1}, headers=HTMX)
    assertContains(response, "Not saved: The completion is 100,001 characters; the limit is 100,000.")
    assert not Revision.objects.exists()


def test_feedback_says_a_text_over_the_limit_cannot_be_saved(client, task, annotator):
    example = _held(task, annotator)
    client.force_login(annotator)
    url = reverse("annotate:feedback", args=[task.slug, example.uuid])
    response = client.post(url, {"completion": "w" * (LIMIT + 1)}, headers=HTMX)
    assertContains(response, "100,001 characters")
    assertContains(response, "The completion is 100,001 characters; the limit is 100,000: it cannot be saved.")
    response = client.post(url, {"completion": "w" * LIMIT}, headers=HTMX)
    assert "cannot be saved" not in response.content.decode()


def _chat_example(task, annotator, turns: int):
    task.output_format = "chat"
    task.chat_turns_editable = True
    task.save()
    roles = ("user", "assistant")
    prior = [{"role": roles[i % 2], "content": f"Turn {i + 1}"} for i in range(turns)]
    return _held(task, annotator, instruction="My heating is off", messages=prior)


def _turns(contents: list[str]) -> dict:
    data = {}
    for i, content in enumerate(contents):
        data[f"turn-{i}-role"] = ("user", "assistant")[i % 2]
        data[f"turn-{i}-content"] = content
    return data


def _save_turns(client, task, example, contents):
    url = reverse("annotate:save", args=[task.slug, example.uuid])
    data = {"completion": "Let us check the boiler.", "kind": "happy", "version": example.version}
    return client.post(url, {**data, **_turns(contents)}, headers=HTMX)


def test_a_chat_turn_over_the_limit_is_named_and_nothing_is_stored(client, task, annotator):
    example = _chat_example(task, annotator, 2)
    client.force_login(annotator)
    response = _save_turns(client, task, example, ["Hi", "v" * (LIMIT + 1)])
    assertContains(response, "Not saved: Turn 2 (assistant) is 100,001 characters; the limit is 100,000.")
    example.refresh_from_db()
    assert example.messages[1]["content"] == "Turn 2" and example.version == 1
    assert not Revision.objects.exists()


def test_a_nul_in_a_chat_turn_is_refused_not_a_server_error(client, task, annotator):
    # PostgreSQL's JSON cannot hold \u0000: before the check, this save was a 500 there.
    example = _chat_example(task, annotator, 2)
    client.force_login(annotator)
    response = _save_turns(client, task, example, ["Hi", "nul\x00here"])
    assertContains(response, "Turn 2 (assistant) contains a NUL character (at character 4), which cannot be stored.")
    example.refresh_from_db()
    assert example.version == 1


def test_more_turns_than_the_limit_are_refused_not_cut_off(client, task, annotator):
    example = _chat_example(task, annotator, 2)
    client.force_login(annotator)
    response = _save_turns(client, task, example, [f"T{i}" for i in range(limits.MAX_TURNS + 1)])
    assertContains(response, "Not saved: 51 chat turns; an example may hold at most 50.")
    example.refresh_from_db()
    assert len(example.messages) == 2 and example.version == 1


def test_an_example_imported_with_more_turns_keeps_every_one_on_save(client, task, annotator):
    # Imports take long conversations; the editor used to read only the first 50 turns and drop the rest.
    example = _chat_example(task, annotator, 60)
    client.force_login(annotator)
    contents = [f"Turn {i + 1}" for i in range(60)]
    contents[59] = "The last turn, edited."
    response = _save_turns(client, task, example, contents)
    assertContains(response, "Saved")
    example.refresh_from_db()
    assert len(example.messages) == 60 and example.messages[59]["content"] == "The last turn, edited."


def test_a_submit_over_the_limit_shows_the_editor_with_the_reason_and_submits_nothing(client, task, annotator):
    example = _chat_example(task, annotator, 2)
    client.force_login(annotator)
    url = reverse("annotate:submit", args=[task.slug, example.uuid])
    data = {"completion": "Let us check the boiler.", "kind": "happy", "version": 1}
    response = client.post(url, {**data, **_turns(["Hi", "v" * (LIMIT + 1)])})
    assert response.status_code == 200
    assertContains(response, "Turn 2 (assistant) is 100,001 characters; the limit is 100,000.")
    example.refresh_from_db()
    assert example.status == Example.Status.NEW and not Revision.objects.exists()


def test_the_save_service_refuses_prompt_fields_over_the_limit(task, annotator):
    example = _held(task, annotator)
    with pytest.raises(ValidationError) as caught:
        services.example_save(
            example=example, user=annotator, completion="Ok.", kind="happy", expected_version=1,
            fields={"context": "c" * (LIMIT + 1)},
        )  # fmt: skip
    assert caught.value.message_dict == {"context": ["The context is 100,001 characters; the limit is 100,000."]}
    example.refresh_from_db()
    assert example.version == 1 and example.context == ""


# --- the reviewer's edit ----------------------------------------------------------------------------------------


def test_a_reviewers_edit_over_the_limit_is_refused_and_nothing_is_stored(client, task, reviewer):
    author = _member(task, "ana", Role.ANNOTATOR)
    example = services.example_create(
        task=task, fields={"instruction": "How long does a charge last?"}, completion="A week.", source="written",
        status=Example.Status.SUBMITTED, author=author,
    )  # fmt: skip
    client.force_login(reviewer)
    url = reverse("reviews:decide", args=[task.slug, example.uuid])
    data = {"decision": "edit", "version": example.version, "completion": "e" * (LIMIT + 1), "kind": "happy"}
    response = client.post(url, data, headers=HTMX)
    assertContains(response, "The edited completion is 100,001 characters; the limit is 100,000.")
    example.refresh_from_db()
    assert example.status == Example.Status.SUBMITTED and example.completion == "A week."
    assert not Verdict.objects.exists()
    assert list(Revision.objects.values_list("reason", flat=True)) == ["save"]
