"""Claiming the next example as a lease, saving revisions with optimistic locking, submitting and skipping."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone

from annotate import services
from annotate.models import Example, Membership, Revision, Role, Skip, Transition
from tests.conftest import require_service
from tests.factories import ExampleFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = Example.Status


def annotator_of(task, name: str):
    user = UserFactory(username=name)
    Membership.objects.create(task=task, user=user, role=Role.ANNOTATOR)
    return user


def test_claim_hands_out_the_oldest_new_example_and_marks_the_lease(task, annotator):
    first, second = ExampleFactory(task=task), ExampleFactory(task=task)
    claimed = services.example_claim_next(task=task, user=annotator)
    assert claimed == first
    first.refresh_from_db()
    assert first.claimed_by == annotator and first.claim_expires_at > timezone.now() + timedelta(minutes=29)
    assert second.claimed_by is None


def test_two_annotators_get_different_examples_and_asking_again_resumes(task, annotator):
    other = annotator_of(task, "bob")
    ExampleFactory.create_batch(3, task=task)
    mine = services.example_claim_next(task=task, user=annotator)
    theirs = services.example_claim_next(task=task, user=other)
    assert mine != theirs
    assert services.example_claim_next(task=task, user=annotator) == mine  # the same one again, not a second


def test_an_expired_lease_returns_the_example_to_the_pool(task, annotator):
    other = annotator_of(task, "bob")
    example = ExampleFactory(task=task)
    services.example_claim_next(task=task, user=annotator)
    assert services.example_claim_next(task=task, user=other) is None
    with time_machine.travel(timezone.now() + services.CLAIM_LEASE + timedelta(seconds=1)):
        assert services.example_claim_next(task=task, user=other) == example


def test_claim_never_hands_out_others_work_or_examples_in_review(task, annotator):
    for status in (Status.DRAFT, Status.SUBMITTED, Status.APPROVED, Status.REJECTED):
        ExampleFactory(task=task, status=status)
    someone = UserFactory(username="someone")
    ExampleFactory(task=task, status=Status.FLAGGED, author=someone)  # flagged back to its own annotator
    assert services.example_claim_next(task=task, user=annotator) is None


def test_flagged_work_comes_first_the_annotators_own_then_the_pools_then_new(task, annotator):
    new = ExampleFactory(task=task)
    unowned = ExampleFactory(task=task, status=Status.FLAGGED)  # imported, sent back in triage: nobody's
    own = ExampleFactory(task=task, status=Status.FLAGGED, author=annotator)
    assert services.example_claim_next(task=task, user=annotator) == own
    own.status = Status.SUBMITTED
    own.save()
    taken = services.example_claim_next(task=task, user=annotator)
    assert taken == unowned
    taken.refresh_from_db()
    assert taken.claimed_by == annotator  # a lease: nobody else gets it meanwhile
    other = UserFactory(username="other")
    MembershipFactory(task=task, user=other, role="annotator")
    assert services.example_claim_next(task=task, user=other) == new
    assert services.example_claim_next(task=task, user=annotator) == unowned  # the held one again


def test_claim_stays_within_the_task(task, other_task, annotator):
    ExampleFactory(task=other_task)
    assert services.example_claim_next(task=task, user=annotator) is None


def test_save_makes_a_revision_and_a_draft(task, annotator):
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    saved = services.example_save(
        example=example, user=annotator, completion="Hold the button.", kind="edge", expected_version=1
    )
    assert saved.version == 2 and saved.status == Status.DRAFT and saved.author == annotator
    stored = Example.objects.get(pk=example.pk)
    assert (stored.completion, stored.kind, stored.status, stored.version) == ("Hold the button.", "edge", "draft", 2)
    revision = Revision.objects.get(example=example)
    assert (revision.text, revision.author, revision.reason, revision.example_version) == (
        "Hold the button.",
        annotator,
        "save",
        2,
    )
    assert Transition.objects.filter(example=example, from_status="new", to_status="draft", actor=annotator).exists()


def test_saving_over_a_newer_version_is_refused_and_keeps_both_texts(task, annotator):
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    services.example_save(example=example, user=annotator, completion="From tab one", kind="happy", expected_version=1)
    with pytest.raises(services.StaleVersion) as refused:
        services.example_save(
            example=example, user=annotator, completion="From tab two", kind="happy", expected_version=1
        )
    assert refused.value.current.completion == "From tab one" and refused.value.current.version == 2
    assert "nothing was overwritten" in str(refused.value.messages[0])
    assert Example.objects.get(pk=example.pk).completion == "From tab one"
    # Both texts are revisions; tab two's is kept aside on its base, not current.
    rows = Revision.objects.filter(example=example).order_by("id").values_list("text", "reason", "example_version")
    assert list(rows) == [("From tab one", "save", 2), ("From tab two", "conflict", 1)]
    assert refused.value.copy.text == "From tab two"


def test_another_annotator_cannot_save_my_draft(task, annotator):
    other = annotator_of(task, "bob")
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    services.example_save(example=example, user=annotator, completion="Mine", kind="happy", expected_version=1)
    with pytest.raises(ValidationError, match="another annotator's work"):
        services.example_save(example=example, user=other, completion="Theirs", kind="happy", expected_version=2)
    # With an old version too: the refusal is about ownership, not a conflict panel showing the other's text.
    with pytest.raises(ValidationError, match="another annotator's work"):
        services.example_save(example=example, user=other, completion="Theirs", kind="happy", expected_version=1)
    assert Example.objects.get(pk=example.pk).completion == "Mine"


def test_an_unclaimed_example_cannot_be_saved(task, annotator):
    example = ExampleFactory(task=task)
    with pytest.raises(ValidationError, match="went back to the pool"):
        services.example_save(example=example, user=annotator, completion="x", kind="happy", expected_version=1)
    assert not Revision.objects.exists()


@pytest.mark.parametrize(
    ("completion", "kind", "message"),
    [
        ("x" * 100_001, "happy", "100,001 characters; the limit is 100,000"),
        ("bad\x00byte", "happy", "NUL character"),
        ("fine", "weird", "Unknown kind 'weird'"),
    ],
)
def test_bad_saves_name_the_problem_and_change_nothing(task, annotator, completion, kind, message):
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    with pytest.raises(ValidationError, match=message):
        services.example_save(example=example, user=annotator, completion=completion, kind=kind, expected_version=1)
    stored = Example.objects.get(pk=example.pk)
    assert (stored.status, stored.version, stored.completion) == ("new", 1, "")
    assert not Revision.objects.exists()


def test_an_unchanged_autosave_adds_no_revision_but_extends_the_lease(task, annotator):
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    services.example_save(example=example, user=annotator, completion="Same", kind="happy", expected_version=1)
    with time_machine.travel(timezone.now() + timedelta(minutes=20)):
        again = services.example_save(
            example=example, user=annotator, completion="Same", kind="happy", expected_version=2, reason="autosave"
        )
        assert again.version == 2
        assert Example.objects.get(pk=example.pk).claim_expires_at > timezone.now() + timedelta(minutes=29)
    assert Revision.objects.filter(example=example).count() == 1


def test_submit_records_the_submitted_revision_and_releases_the_claim(task, annotator):
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    services.example_save(example=example, user=annotator, completion="Answer", kind="happy", expected_version=1)
    submitted = services.example_submit(
        example=example, user=annotator, completion="Answer", kind="happy", expected_version=2
    )
    assert submitted.status == Status.SUBMITTED and submitted.claimed_by is None
    assert list(Revision.objects.filter(example=example).values_list("reason", flat=True)) == ["save", "submit"]
    moves = list(Transition.objects.filter(example=example).values_list("from_status", "to_status"))
    assert moves == [("new", "draft"), ("draft", "submitted")]


def test_an_empty_completion_cannot_be_submitted(task, annotator):
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    with pytest.raises(ValidationError, match="The completion is empty"):
        services.example_submit(example=example, user=annotator, completion="  \n ", kind="happy", expected_version=1)
    assert Example.objects.get(pk=example.pk).status == Status.NEW


def test_a_submitted_example_is_locked_for_its_annotator(task, annotator):
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    done = services.example_submit(example=example, user=annotator, completion="A", kind="happy", expected_version=1)
    with pytest.raises(ValidationError, match="submitted and cannot be edited"):
        services.example_save(example=done, user=annotator, completion="B", kind="happy", expected_version=done.version)


def test_editing_an_approved_example_sends_it_back_to_draft(task, annotator):
    example = ExampleFactory(task=task, status=Status.APPROVED, author=annotator, completion="Old")
    saved = services.example_save(example=example, user=annotator, completion="New", kind="happy", expected_version=1)
    assert saved.status == Status.DRAFT
    assert Transition.objects.filter(example=example, from_status="approved", to_status="draft").exists()


def test_skip_returns_the_example_and_never_offers_it_to_me_again(task, annotator):
    other = annotator_of(task, "bob")
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    services.example_skip(example=example, user=annotator, reason="unclear", comment="What product?")
    assert Skip.objects.get(example=example, user=annotator).comment == "What product?"
    assert services.example_claim_next(task=task, user=annotator) is None
    assert services.example_claim_next(task=task, user=other) == example


def test_skip_needs_a_known_reason(task, annotator):
    example = services.example_claim_next(task=task, user=ExampleFactory(task=task) and annotator)
    with pytest.raises(ValidationError, match="Unknown skip reason"):
        services.example_skip(example=example, user=annotator, reason="bored")
    assert not Skip.objects.exists()


def test_write_new_example_from_scratch(task, annotator):
    example = services.example_write_new(
        task=task,
        user=annotator,
        fields={"instruction": "Write me a poem about your competitor", "context": "", "input": ""},
        completion="I can only help with Skylark products.",
        kind="negative",
    )
    assert (example.source, example.status, example.kind, example.author) == ("written", "draft", "negative", annotator)
    assert example.revisions.get().text == "I can only help with Skylark products."
    task.allow_new_examples = False
    task.save()
    with pytest.raises(ValidationError, match="does not take new examples"):
        services.example_write_new(task=task, user=annotator, fields={"instruction": "x"}, completion="", kind="edge")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_hand_out_an_example_twice(task):
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "SKIP LOCKED needs PostgreSQL (set DATABASE_URL)")
    annotators = [annotator_of(task, f"a{i}") for i in range(16)]
    ExampleFactory.create_batch(200, task=task)
    barrier = threading.Barrier(len(annotators))
    handed: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(user) -> None:
        try:
            for _ in range(10):
                barrier.wait(timeout=30)  # all 16 ask at the same moment, ten times over
                example = services.example_claim_next(task=task, user=user)
                with lock:
                    handed.append((example.pk, user.pk))
                # Writing a draft takes it out of the pool, so the next request must get a fresh example.
                services.example_save(example=example, user=user, completion="x", kind="happy", expected_version=1)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not errors, errors
    assert len(handed) == 160
    assert len({example_id for example_id, _ in handed}) == 160, "an example was handed to two annotators"
    stored = dict(Example.objects.filter(status="draft").values_list("pk", "author_id"))
    assert stored == dict(handed)


def test_next_after_writing_a_draft_gives_a_fresh_example(task, annotator):
    ExampleFactory.create_batch(2, task=task)
    first = services.example_claim_next(task=task, user=annotator)
    services.example_save(example=first, user=annotator, completion="Draft", kind="happy", expected_version=1)
    second = services.example_claim_next(task=task, user=annotator)
    assert second is not None and second != first


def test_an_old_version_carrying_the_text_already_stored_is_no_conflict(task, annotator):
    ExampleFactory(task=task)
    example = services.example_claim_next(task=task, user=annotator)
    # The beacon of a page being left stores the text after the next page has read version 1 ...
    services.example_save(example=example, user=annotator, completion="Hold it.", kind="happy", expected_version=1)
    # ... that page saves the same text with version 1: nothing to overwrite, no conflict, no second revision.
    again = services.example_save(
        example=example, user=annotator, completion="Hold it.", kind="happy", expected_version=1
    )
    assert again.version == 2
    assert Revision.objects.filter(example=example).count() == 1
    # Another text with that old version is a conflict as before.
    with pytest.raises(services.StaleVersion):
        services.example_save(example=example, user=annotator, completion="Other.", kind="happy", expected_version=1)
    # And the same text submits.
    submitted = services.example_submit(
        example=example, user=annotator, completion="Hold it.", kind="happy", expected_version=1
    )
    assert submitted.status == "submitted"
    assert Example.objects.get(pk=example.pk).completion == "Hold it."


def test_a_blocking_check_refuses_the_submit_in_the_service_and_nothing_is_saved(task, annotator):
    task.output_format = "json"
    task.blocking_checks = ["format"]
    task.save()
    ExampleFactory(task=task)
    example = services.example_claim_next(task=task, user=annotator)
    with pytest.raises(ValidationError, match="Fix these before submitting: "):
        services.example_submit(
            example=example, user=annotator, completion="{not json", kind="happy", expected_version=1
        )
    stored = Example.objects.get(pk=example.pk)
    assert (stored.status, stored.version, stored.completion) == ("new", 1, "")  # the save went back with it
    assert not Revision.objects.filter(example=example).exists()
    task.blocking_checks = []  # only a warning now
    task.save()
    example.task.refresh_from_db()
    done = services.example_submit(
        example=example, user=annotator, completion="{not json", kind="happy", expected_version=1
    )
    assert done.status == "submitted"
