"""Triage: bulk actions on flagged, rejected and split examples, each one recorded."""

import uuid

import pytest
from django.core.exceptions import ValidationError

from annotate.models import Example, Transition
from reviews import services
from reviews.models import Verdict
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
Status = Example.Status


@pytest.fixture
def flagged(example, reviewer):
    services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"]
    )
    example.refresh_from_db()
    return example


@pytest.fixture
def rejected(submitted, reviewer):
    example = submitted(completion="Nonsense.")
    services.verdict_record(
        example=example, reviewer=reviewer, decision="reject", version=example.version, reasons=["unsafe"]
    )
    example.refresh_from_db()
    return example


@pytest.fixture
def split(task, submitted, reviewer, second_reviewer):
    task.approvals_required = 2
    task.save()
    example = submitted(completion="Disputed.")
    services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=example.version)
    services.verdict_record(
        example=example, reviewer=second_reviewer, decision="flag", version=example.version, reasons=["format"]
    )
    example.refresh_from_db()
    assert example.triage
    return example


def last_move(example):
    return Transition.objects.filter(example=example).order_by("id").last()


def test_send_back_flags_rejected_and_split_examples_with_a_verdict_and_a_transition(
    task, lead, flagged, rejected, split
):
    result = services.triage_send_back(
        task=task,
        uuids=[flagged.uuid, rejected.uuid, split.uuid],
        actor=lead,
        reasons=["inaccurate"],
        comment="Fix it.",
    )
    assert {e.pk for e in result.done} == {rejected.pk, split.pk}
    assert [(e.pk, why) for e, why in result.left] == [(flagged.pk, "already flagged")]
    for example in (rejected, split):
        example.refresh_from_db()
        assert (example.status, example.triage) == (Status.FLAGGED, False)
        verdict = Verdict.objects.filter(example=example).last()
        assert (verdict.reviewer, verdict.decision, verdict.reasons, verdict.comment) == (
            lead,
            "flag",
            ["inaccurate"],
            "Fix it.",
        )
        move = last_move(example)
        assert (move.to_status, move.actor, move.note) == ("flagged", lead, "triage: sent back to the annotator")
    assert result.summary("sent back") == "2 examples sent back. 1 left alone (already flagged)."


def test_reject_and_approve_in_triage(task, lead, flagged, split):
    services.triage_reject(task=task, uuids=[flagged.uuid], actor=lead, reasons=["duplicate"])
    flagged.refresh_from_db()
    assert flagged.status == Status.REJECTED
    assert last_move(flagged).from_status == "flagged" and last_move(flagged).note == "triage: rejected"
    result = services.triage_approve(task=task, uuids=[flagged.uuid, split.uuid], actor=lead)
    assert [e.pk for e in result.done] == [split.pk]
    assert result.left[0][1] == "only a split decision can be approved in triage"
    split.refresh_from_db()
    assert (split.status, split.triage) == (Status.APPROVED, False)
    assert Verdict.objects.filter(example=split).last().decision == "approve"


@pytest.mark.parametrize("action", [services.triage_send_back, services.triage_reject])
def test_decisions_in_triage_need_a_reason_and_write_nothing_without(task, lead, flagged, rejected, action):
    with pytest.raises(ValidationError, match="at least one reason"):
        action(task=task, uuids=[flagged.uuid, rejected.uuid], actor=lead, reasons=[])
    assert Verdict.objects.filter(reviewer=lead).count() == 0


def test_reassign_gives_the_examples_to_another_annotator_flagged_for_them(
    task, lead, annotator, other_annotator, rejected, split
):
    result = services.triage_reassign(
        task=task,
        uuids=[rejected.uuid, split.uuid],
        actor=lead,
        annotator=other_annotator,
        reasons=["other"],
        comment="Otis knows this.",
    )
    assert len(result.done) == 2
    for example in (rejected, split):
        example.refresh_from_db()
        assert (example.status, example.author, example.triage) == (Status.FLAGGED, other_annotator, False)
        assert last_move(example).note == "triage: reassigned from anna to otis"
        assert Verdict.objects.filter(example=example).last().comment == "Otis knows this."
    assert set(Example.objects.filter(author=other_annotator, status=Status.FLAGGED)) == {rejected, split}


def test_reassign_only_to_an_annotator_of_the_task(task, lead, reviewer, rejected):
    with pytest.raises(ValidationError, match="not an annotator of this task"):
        services.triage_reassign(task=task, uuids=[rejected.uuid], actor=lead, annotator=reviewer)
    rejected.refresh_from_db()
    assert rejected.author.username == "anna"


def test_ids_of_other_tasks_or_outside_triage_are_ignored_and_reported(task, other_task, lead, flagged, submitted):
    elsewhere = ExampleFactory(task=other_task, status=Status.FLAGGED)
    in_review = submitted(completion="waiting")
    unknown = uuid.uuid4()
    result = services.triage_reject(
        task=task, uuids=[flagged.uuid, elsewhere.uuid, in_review.uuid, unknown], actor=lead, reasons=["other"]
    )
    assert [e.pk for e in result.done] == [flagged.pk]
    assert set(result.missing) == {elsewhere.uuid, in_review.uuid, unknown}
    assert Example.objects.get(pk=elsewhere.pk).status == Status.FLAGGED
    assert Example.objects.get(pk=in_review.pk).status == Status.SUBMITTED
    assert "3 not found in this task's triage and ignored" in result.summary("rejected")


def test_a_reviewer_does_not_decide_their_own_work_in_triage(task, reviewer, submitted, second_reviewer):
    own = submitted(author=reviewer)
    services.verdict_record(
        example=own, reviewer=second_reviewer, decision="flag", version=own.version, reasons=["other"]
    )
    result = services.triage_reject(task=task, uuids=[own.uuid], actor=reviewer, reasons=["other"])
    assert result.done == [] and result.left[0][1] == "your own work"


def test_neither_reviewer_of_a_split_settles_it_alone(task, reviewer, second_reviewer, lead, split):
    for actor in (reviewer, second_reviewer):
        result = services.triage_approve(task=task, uuids=[split.uuid], actor=actor)
        assert result.done == []
        assert result.left[0][1] == "you judged this version yourself; another reviewer or a lead decides"
    split.refresh_from_db()
    assert (split.status, split.triage) == (Status.SUBMITTED, True)
    result = services.triage_approve(task=task, uuids=[split.uuid], actor=lead)  # a third person decides
    assert result.done == [split]
    assert Verdict.objects.filter(example=split, reviewer=lead).get().in_triage
