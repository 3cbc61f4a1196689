"""Review statistics of a task: per reviewer and annotator, reasons, agreement; three queries at any size."""

import pytest

from annotate.models import Role
from reviews import services
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def judge(example, reviewer, decision="approve", reasons=()):
    example.refresh_from_db()
    return services.verdict_record(
        example=example, reviewer=reviewer, decision=decision, version=example.version, reasons=list(reasons)
    )


@pytest.fixture
def judged(task, submitted, annotator, other_annotator, reviewer, second_reviewer):
    """Five verdicts: rita approves two and flags one; remy agrees on one and disagrees on another."""
    task.approvals_required = 2
    task.save()
    agreed, split, flagged = submitted(), submitted(), submitted(author=other_annotator)
    judge(agreed, reviewer)
    judge(agreed, second_reviewer)
    judge(split, reviewer)
    judge(split, second_reviewer, "reject", ["leak", "format"])
    judge(flagged, reviewer, "flag", ["leak"])
    return task


def test_stats_per_reviewer_and_annotator(judged):
    stats = services.review_stats(task=judged)
    rita, remy = stats["reviewers"][1], stats["reviewers"][0]
    assert (rita["username"], rita["pairs"], rita["decisions"]) == ("rita", 3, {"approve": 2, "flag": 1, "reject": 0})
    assert rita["approval_rate"] == pytest.approx(2 / 3)
    assert (remy["username"], remy["pairs"], remy["approval_rate"]) == ("remy", 2, 0.5)
    assert remy["reasons"] == [("Format", 1), ("Answer leaked into prompt", 1)]  # in the order of the codes
    anna, otis = stats["annotators"]
    assert (anna["username"], anna["pairs"], anna["verdicts"], anna["approval_rate"]) == ("anna", 2, 4, 0.75)
    assert (otis["username"], otis["approval_rate"], otis["reasons"]) == (
        "otis",
        0.0,
        [("Answer leaked into prompt", 1)],
    )
    assert stats["reasons"] == [("format", "Format", 1), ("leak", "Answer leaked into prompt", 2)]
    assert stats["verdicts"] == 5
    assert (stats["double_reviewed"], stats["agreeing"], stats["agreement"]) == (2, 1, 0.5)


def test_stats_take_three_queries_whatever_the_size(judged, submitted, django_assert_num_queries):
    with django_assert_num_queries(3):
        services.review_stats(task=judged)
    for i in range(4):
        reviewer = UserFactory(username=f"extra{i}")
        MembershipFactory(task=judged, user=reviewer, role=Role.REVIEWER)
        judge(submitted(), reviewer, "flag", ["other"])
    with django_assert_num_queries(3):
        stats = services.review_stats(task=judged)
    assert len(stats["reviewers"]) == 6


def test_no_verdicts_no_rates(task):
    stats = services.review_stats(task=task)
    assert stats["reviewers"] == [] and stats["agreement"] is None and stats["verdicts"] == 0


def test_decisions_in_triage_are_not_reviews(judged, lead):
    from annotate.models import Example

    split = Example.objects.get(task=judged, triage=True)
    services.triage_reject(task=judged, uuids=[split.uuid], actor=lead, reasons=["inaccurate"])
    stats = services.review_stats(task=judged)
    assert [row["username"] for row in stats["reviewers"]] == ["remy", "rita"]  # the lead reviewed nothing
    assert stats["verdicts"] == 5
    assert (stats["double_reviewed"], stats["agreeing"]) == (2, 1)  # the triage verdict makes no third opinion
