"""verdict_record and the state machine of DESIGN.md, transition by transition, refusals included."""

import pytest
from django.core.exceptions import ValidationError

from annotate import services as annotate_services
from annotate.models import Example, Revision, Transition
from reviews import services
from reviews.models import Verdict
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
Status = Example.Status


def record(example, reviewer, decision="approve", **kwargs):
    kwargs.setdefault("version", example.version)
    if decision in ("flag", "reject"):
        kwargs.setdefault("reasons", ["inaccurate"])
    return services.verdict_record(example=example, reviewer=reviewer, decision=decision, **kwargs)


def moves(example) -> list[tuple[str, str]]:
    return list(Transition.objects.filter(example=example).order_by("id").values_list("from_status", "to_status"))


def test_every_transition_of_the_state_machine_is_recorded_with_its_actor(task, annotator, reviewer):
    # new -> draft -> submitted -> flagged -> draft -> submitted -> approved -> draft (edited) -> submitted -> rejected
    example = ExampleFactory(task=task, status=Status.NEW)
    claimed = annotate_services.example_claim_next(task=task, user=annotator)
    assert claimed == example
    example = annotate_services.example_save(
        example=example, user=annotator, completion="Try turning it off", kind="happy", expected_version=1
    )
    example = annotate_services.example_submit(
        example=example, user=annotator, completion="Try turning it off", kind="happy", expected_version=2
    )
    assert example.status == Status.SUBMITTED

    verdict = record(example, reviewer, "flag", reasons=["unclear"], comment="Say how.")
    example.refresh_from_db()
    assert (example.status, verdict.decision, verdict.reasons, verdict.comment) == (
        "flagged",
        "flag",
        ["unclear"],
        "Say how.",
    )

    example = annotate_services.example_save(
        example=example,
        user=annotator,
        completion="Hold the button 10 s.",
        kind="happy",
        expected_version=example.version,
    )
    assert example.status == Status.DRAFT
    example = annotate_services.example_submit(
        example=example,
        user=annotator,
        completion="Hold the button 10 s.",
        kind="happy",
        expected_version=example.version,
    )
    record(example, reviewer, "approve")
    example.refresh_from_db()
    assert example.status == Status.APPROVED

    # Editing an approved example sends it back to review.
    example = annotate_services.example_save(
        example=example, user=annotator, completion="Hold it 10 s.", kind="happy", expected_version=example.version
    )
    assert example.status == Status.DRAFT
    example = annotate_services.example_submit(
        example=example, user=annotator, completion="Hold it 10 s.", kind="happy", expected_version=example.version
    )
    assert example in services.review_queue(task=task, reviewer=reviewer)
    record(example, reviewer, "reject", reasons=["off_task", "inaccurate"])
    example.refresh_from_db()
    assert example.status == Status.REJECTED
    assert moves(example) == [
        ("new", "draft"),
        ("draft", "submitted"),
        ("submitted", "flagged"),
        ("flagged", "draft"),
        ("draft", "submitted"),
        ("submitted", "approved"),
        ("approved", "draft"),
        ("draft", "submitted"),
        ("submitted", "rejected"),
    ]
    actors = list(Transition.objects.filter(example=example).order_by("id").values_list("actor__username", flat=True))
    assert actors == ["anna", "anna", "rita", "anna", "anna", "rita", "anna", "anna", "rita"]
    verdict = Verdict.objects.filter(example=example).last()
    assert verdict.reasons == ["inaccurate", "off_task"]  # stored in the order of the codes, whatever was posted


def test_the_verdict_points_to_the_submitted_revision_and_the_version_judged(example, reviewer):
    verdict = record(example, reviewer)
    submit = Revision.objects.filter(example=example, reason="submit").get()
    assert verdict.revision == submit
    assert verdict.example_version == example.version
    example.refresh_from_db()
    assert example.claimed_by is None


@pytest.mark.parametrize("status", ["new", "draft", "approved", "flagged", "rejected"])
def test_only_a_submitted_example_can_be_judged(task, reviewer, status):
    example = ExampleFactory(task=task, status=status, completion="text")
    with pytest.raises(ValidationError, match="only a submitted example can be reviewed"):
        record(example, reviewer)
    assert not Verdict.objects.exists()


def test_a_reviewer_cannot_judge_their_own_work_unless_the_task_allows_it(task, reviewer, submitted):
    mine = submitted(author=reviewer)
    with pytest.raises(ValidationError, match="You wrote this example"):
        record(mine, reviewer)
    task.self_review_allowed = True
    task.save()
    mine.refresh_from_db()
    record(mine, reviewer)
    assert Example.objects.get(pk=mine.pk).status == Status.APPROVED


def test_a_verdict_on_a_stale_version_is_refused_and_writes_nothing(example, annotator, reviewer):
    seen = example.version
    # The annotator changed it meanwhile (e.g. it went back and came again): the version moved on.
    Example.objects.filter(pk=example.pk).update(version=seen + 2)
    with pytest.raises(services.StaleReview) as refused:
        record(example, reviewer, version=seen)
    assert str(refused.value.messages[0]) == (
        f"anna changed this example since you opened it (now version {seen + 2}); reload to review the new text."
    )
    assert not Verdict.objects.exists()
    assert Example.objects.get(pk=example.pk).status == Status.SUBMITTED


@pytest.mark.parametrize("decision", ["flag", "reject"])
def test_flag_and_reject_need_a_reason(example, reviewer, decision):
    with pytest.raises(ValidationError, match="needs at least one reason"):
        record(example, reviewer, decision, reasons=[])
    with pytest.raises(ValidationError, match="Unknown reason"):
        record(example, reviewer, decision, reasons=["boring"])
    assert not Verdict.objects.exists()
    assert Example.objects.get(pk=example.pk).status == Status.SUBMITTED


def test_an_example_held_by_another_reviewer_is_refused(example, reviewer, second_reviewer):
    assert services.review_take(example=example, reviewer=second_reviewer)
    with pytest.raises(ValidationError, match="Another reviewer is reviewing"):
        record(example, reviewer)


def test_a_verdict_is_immutable(example, reviewer):
    verdict = record(example, reviewer)
    verdict.comment = "changed my mind"
    with pytest.raises(ValidationError, match="immutable"):
        verdict.save()
    with pytest.raises(ValidationError, match="never deleted"):
        verdict.delete()
    assert Verdict.objects.get().comment == ""


def test_an_example_loaded_without_revisions_gets_one_for_its_verdict(task, reviewer):
    example = ExampleFactory(task=task, status=Status.SUBMITTED, completion="Loaded by SQL")
    verdict = record(example, reviewer)
    assert verdict.revision.text == "Loaded by SQL" and verdict.revision.reason == "import"


# --- two approvals -----------------------------------------------------------------------------------------------


@pytest.fixture
def two_approvals(task):
    task.approvals_required = 2
    task.save()
    return task


def test_two_distinct_reviewers_approve_the_same_version(two_approvals, example, reviewer, second_reviewer):
    record(example, reviewer)
    example.refresh_from_db()
    assert example.status == Status.SUBMITTED and not example.triage
    assert example not in services.review_queue(task=two_approvals, reviewer=reviewer)  # judged this version
    assert example in services.review_queue(task=two_approvals, reviewer=second_reviewer)
    with pytest.raises(ValidationError, match="already judged this version"):
        record(example, reviewer)
    record(example, second_reviewer)
    example.refresh_from_db()
    assert example.status == Status.APPROVED
    assert moves(example)[-1] == ("submitted", "approved")


@pytest.mark.parametrize("decision", ["flag", "reject"])
def test_a_split_decision_goes_to_triage(two_approvals, example, reviewer, second_reviewer, decision):
    record(example, reviewer, "approve")
    record(example, second_reviewer, decision, reasons=["format"])
    example.refresh_from_db()
    assert (example.status, example.triage) == (Status.SUBMITTED, True)
    assert example not in services.review_queue(task=two_approvals, reviewer=second_reviewer)
    assert example in services.triage_queryset(two_approvals)
    assert Transition.objects.filter(example=example).last().note == "reviewers disagree: sent to triage"
    with pytest.raises(ValidationError, match="decided in triage"):
        record(example, second_reviewer, "approve")


def test_a_first_flag_sends_it_back_without_waiting_for_a_second_opinion(two_approvals, example, reviewer):
    record(example, reviewer, "flag")
    example.refresh_from_db()
    assert (example.status, example.triage) == (Status.FLAGGED, False)


# --- edit and approve --------------------------------------------------------------------------------------------


def test_edit_and_approve_records_the_reviewers_revision_and_approves_it(example, reviewer):
    before = example.version
    verdict = record(example, reviewer, completion="Hold the round button for 10 seconds.", kind="edge")
    example.refresh_from_db()
    assert example.status == Status.APPROVED
    assert example.version == before + 1
    assert (example.completion, example.kind) == ("Hold the round button for 10 seconds.", "edge")
    revision = verdict.revision
    assert (revision.reason, revision.author, revision.example_version) == ("reviewer_edit", reviewer, example.version)
    assert verdict.example_version == example.version
    submitted_text = Revision.objects.filter(example=example, reason="submit").get()
    assert submitted_text.text == "Hold the round button for ten seconds."  # the two texts are both kept
    assert f"revision {submitted_text.pk} → {revision.pk}" in verdict.comment


def test_an_edit_needs_an_approval_and_a_text(example, reviewer):
    with pytest.raises(ValidationError, match="Only an approval"):
        record(example, reviewer, "flag", completion="other")
    with pytest.raises(ValidationError, match="empty"):
        record(example, reviewer, completion="  ")
    assert not Revision.objects.filter(reason="reviewer_edit").exists()


def test_an_unchanged_edit_is_a_plain_approval(example, reviewer):
    verdict = record(example, reviewer, completion=example.completion)
    assert verdict.revision.reason == "submit"


def test_after_an_edit_in_a_2_approval_task_the_new_version_needs_its_own_second_approval(
    two_approvals, example, reviewer, second_reviewer
):
    record(example, reviewer)
    example.refresh_from_db()
    record(example, second_reviewer, completion="A better answer.")
    example.refresh_from_db()
    assert example.status == Status.SUBMITTED  # the first approval was of the text before the edit
    record(example, reviewer)
    example.refresh_from_db()
    assert example.status == Status.APPROVED


def test_a_reviewers_edit_updates_the_stored_warnings(example, reviewer):
    Example.objects.filter(pk=example.pk).update(warnings=[{"code": "leak", "message": "Copied."}],
                                                 warning_codes=",leak,", risk=8)  # fmt: skip
    example.refresh_from_db()
    fixed = "  Hold the round button for ten seconds, then wait for the blue ring.  "
    services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=example.version,
                            completion=fixed)  # fmt: skip
    example.refresh_from_db()
    assert example.completion == fixed  # kept as typed
    assert [w["code"] for w in example.warnings] == ["whitespace"]  # the new text's warning; "leak" went with the old
    assert example.warning_codes == ",whitespace,"
