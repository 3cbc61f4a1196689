"""The review queue: order, filters, the lease, and who is never handed what."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from annotate.models import Example
from reviews import services
from reviews.services import QueueFilters
from tests.conftest import require_service
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
Status = Example.Status


def waiting(task, *, minutes_ago: int, **fields):
    """A submitted example (imported shape: no author unless given) that entered review `minutes_ago`."""
    fields.setdefault("submitted_at", timezone.now() - timedelta(minutes=minutes_ago))
    return ExampleFactory(task=task, status=Status.SUBMITTED, completion="An answer.", **fields)


def claim(task, reviewer, **kwargs):
    return services.review_claim_next(task=task, reviewer=reviewer, **kwargs)


def test_oldest_first_and_one_reviewer_per_example(task, reviewer, second_reviewer):
    newer = waiting(task, minutes_ago=5)
    older = waiting(task, minutes_ago=50)
    first = claim(task, reviewer)
    assert first == older
    assert first.claimed_by == reviewer
    assert claim(task, reviewer) == older  # the held one again, not a second lease
    assert claim(task, second_reviewer) == newer
    assert claim(task, second_reviewer) == newer


def test_riskiest_first(task, reviewer):
    waiting(task, minutes_ago=50, risk=1)
    risky = waiting(task, minutes_ago=5, risk=7)
    assert claim(task, reviewer, filters=QueueFilters(order="risky")) == risky


def test_never_own_work_nor_drafts_nor_triage_nor_a_version_already_judged(task, annotator, reviewer, submitted):
    submitted(author=reviewer)
    ExampleFactory(task=task, status=Status.DRAFT)
    waiting(task, minutes_ago=9, triage=True)
    assert claim(task, reviewer) is None
    task.self_review_allowed = True
    task.save()
    mine = claim(task, reviewer)
    assert mine.author == reviewer


def test_the_lease_expires_and_the_example_goes_to_another_reviewer(task, reviewer, second_reviewer):
    example = waiting(task, minutes_ago=5)
    assert claim(task, reviewer) == example
    assert claim(task, second_reviewer) is None
    with time_machine.travel(timezone.now() + services.REVIEW_LEASE + timedelta(seconds=1)):
        assert claim(task, second_reviewer) == example


def test_skipping_releases_the_lease_and_takes_the_next(task, reviewer, second_reviewer):
    first = waiting(task, minutes_ago=50)
    second = waiting(task, minutes_ago=5)
    assert claim(task, reviewer) == first
    assert claim(task, reviewer, skip=first) == second
    assert claim(task, second_reviewer) == first  # released: free for others
    assert claim(task, reviewer, skip=second) is None  # nothing else for this reviewer


def test_filters_by_annotator_kind_warning_and_date(task, reviewer, annotator, other_annotator):
    noon = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    by_anna = waiting(task, minutes_ago=0, author=annotator, kind="edge", submitted_at=noon - timedelta(days=3))
    leaky = waiting(
        task, minutes_ago=0, author=other_annotator, submitted_at=noon - timedelta(days=1),
        warning_codes=",leak,format,", warnings=[{"code": "leak", "message": "copied", "blocking": False}],
    )  # fmt: skip
    near = waiting(task, minutes_ago=0, author=other_annotator, warning_codes=",near_duplicate,", submitted_at=noon)
    today = noon.date()

    def pick(**filters):
        return list(services.review_queue(task=task, reviewer=reviewer, filters=QueueFilters(**filters)))

    assert pick() == [by_anna, leaky, near]
    assert pick(author_id=annotator.pk) == [by_anna]
    assert pick(kind="edge") == [by_anna]
    assert pick(warning="leak") == [leaky]
    assert pick(warning="duplicate") == []  # ",duplicate," is not inside ",near_duplicate,"
    assert pick(warning="near_duplicate") == [near]
    assert pick(submitted_from=today - timedelta(days=1)) == [leaky, near]
    assert pick(submitted_from=today - timedelta(days=1), submitted_to=today - timedelta(days=1)) == [leaky]
    assert pick(submitted_to=today - timedelta(days=2)) == [by_anna]
    # The claim applies the same filters (the SQL form on PostgreSQL, the ORM form on SQLite).
    assert claim(task, reviewer, filters=QueueFilters(warning="near_duplicate")) == near
    # The held example comes first only while it matches the filters.
    assert claim(task, reviewer, filters=QueueFilters(author_id=annotator.pk, kind="edge")) == by_anna
    assert claim(task, reviewer, filters=QueueFilters(submitted_from=today - timedelta(days=1))) == near
    assert claim(task, reviewer, filters=QueueFilters(warning="leak"), skip=near) == leaky


def test_filters_refuse_values_outside_their_allow_lists():
    for bad in ({"order": "id; DROP TABLE"}, {"kind": "weird"}, {"warning": "le%ak"}):
        with pytest.raises(ValueError):
            QueueFilters(**bad)


def test_the_filters_survive_as_a_query_string(annotator):
    filters = QueueFilters(author_id=3, kind="edge", warning="leak", order="risky")
    assert filters.querystring() == "annotator=3&kind=edge&warning=leak&order=risky"
    assert QueueFilters().querystring() == ""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_never_get_the_same_example(task, reviewer):
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "SKIP LOCKED needs PostgreSQL (set DATABASE_URL)")
    from django.db import connections

    from annotate.models import Membership, Role
    from tests.factories import UserFactory

    reviewers = [reviewer]
    for i in range(7):
        user = UserFactory(username=f"rev{i}")
        Membership.objects.create(task=task, user=user, role=Role.REVIEWER)
        reviewers.append(user)
    for i in range(8):
        waiting(task, minutes_ago=100 - i)
    got, barrier = {}, threading.Barrier(len(reviewers))

    def work(user):
        barrier.wait()
        try:
            got[user.pk] = claim(task, user)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [example.pk for example in got.values() if example is not None]
    assert len(ids) == len(set(ids)) == 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_next_pair_in_a_second_tab_waits_for_the_verdict_in_flight_and_never_hands_the_decided_pair_back(
    task, reviewer
):
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "the row locks of the claim need PostgreSQL (set DATABASE_URL)")
    import time

    from django.db import connections, transaction

    from reviews.services import verdict_record

    decided, other = waiting(task, minutes_ago=10), waiting(task, minutes_ago=5)
    held = claim(task, reviewer)
    assert held.pk == decided.pk
    handed = {}

    def tab_one():  # the verdict, its transaction still open a moment (a slow request)
        try:
            with transaction.atomic():
                verdict_record(example=held, reviewer=reviewer, decision="approve", version=held.version)
                time.sleep(0.8)
        finally:
            connections.close_all()

    def tab_two():  # "next pair" while that verdict holds the row
        time.sleep(0.3)
        try:
            handed["next"] = claim(task, reviewer)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tab_one), threading.Thread(target=tab_two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handed["next"].pk == other.pk
    decided.refresh_from_db()
    assert decided.status == "approved" and decided.claimed_by_id is None
