"""Comparisons: judgements in candidates' terms with the blind order recorded, agreement decides, splits go to
triage, agreement figures; the pages' access matrix and bad input."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import Role
from preferences import services
from preferences.models import Comparison, Judgement, PreferencePair, Source
from tests.conftest import _member

pytestmark = pytest.mark.django_db


def comparison(task, n: int = 0, **values) -> Comparison:
    return Comparison.objects.create(
        task=task, template=task.current_template, instruction=f"Where is parcel {n}?",
        candidate_a=f"Arrives tomorrow ({n}).", candidate_b="No idea.", **values,
    )  # fmt: skip


def test_one_judgement_decides_a_one_approval_task_in_candidates_terms(task, reviewer):
    c = comparison(task)
    judgement = services.judgement_record(comparison=c, judge=reviewer, left="b", pick="right", reasons=["accurate"])
    assert (judgement.left, judgement.choice) == ("b", "a")  # B was on the left, so the right one was candidate A
    c.refresh_from_db()
    assert (c.state, c.outcome) == ("decided", "a")
    pair = PreferencePair.objects.get()
    assert (pair.chosen, pair.rejected, pair.source, pair.reviewed) == (
        c.candidate_a,
        c.candidate_b,
        Source.COMPARISON,
        True,
    )


def test_both_bad_makes_the_better_text_chosen_against_each_candidate(task, reviewer):
    c = comparison(task)
    with pytest.raises(ValidationError, match="write the better completion"):
        services.judgement_record(comparison=c, judge=reviewer, left="a", pick="both_bad")
    services.judgement_record(comparison=c, judge=reviewer, left="a", pick="both_bad", better="It arrives Monday.")
    assert sorted(PreferencePair.objects.values_list("chosen", "rejected")) == [
        ("It arrives Monday.", "Arrives tomorrow (0)."), ("It arrives Monday.", "No idea."),
    ]  # fmt: skip


def test_two_reviewer_tasks_need_agreement_and_splits_go_to_triage(task, reviewer, lead):
    task.approvals_required = 2
    task.save()
    second = _member(task, "second", Role.REVIEWER)
    agreed, split = comparison(task, 1), comparison(task, 2)
    services.judgement_record(comparison=agreed, judge=reviewer, left="a", pick="left")
    agreed.refresh_from_db()
    assert agreed.state == "open" and not PreferencePair.objects.exists()
    with pytest.raises(ValidationError, match="already judged"):
        services.judgement_record(comparison=agreed, judge=reviewer, left="a", pick="left")
    services.judgement_record(comparison=agreed, judge=second, left="b", pick="right")  # also candidate a
    agreed.refresh_from_db()
    assert agreed.state == "decided"
    services.judgement_record(comparison=split, judge=reviewer, left="a", pick="left")
    services.judgement_record(comparison=split, judge=second, left="a", pick="right")
    split.refresh_from_db()
    assert split.state == "split" and PreferencePair.objects.count() == 1
    with pytest.raises(ValidationError, match="already decided"):
        services.judgement_record(comparison=split, judge=lead, left="a", pick="left")
    services.triage_decide(comparison=split, lead=lead, choice="b")
    split.refresh_from_db()
    assert (split.state, split.outcome, split.decided_by) == ("decided", "b", lead)
    assert PreferencePair.objects.filter(comparison=split).get().chosen == "No idea."
    stats = services.agreement_stats(task=task)
    assert (stats["double"], stats["agreeing"]) == (2, 1)
    by_name = {row["username"]: row for row in stats["judges"]}
    assert (by_name["second"]["double"], by_name["second"]["agree"]) == (2, 1)


def test_compare_page_matrix(client, task, annotator, outsider):
    c = comparison(task)
    url = reverse("preferences:compare", args=[task.slug])
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(annotator)
    response = client.get(url)
    assertContains(response, c.candidate_a)
    assertContains(response, c.candidate_b)
    left = response.context["left"]
    judge_url = reverse("preferences:judge", args=[task.slug])
    bad = client.post(judge_url, {"comparison": str(c.uuid), "left": left, "pick": "both_bad"})
    assertContains(bad, "write the better completion")
    assert not Judgement.objects.exists()
    client.post(judge_url, {"comparison": str(c.uuid), "left": left, "pick": "left", "reasons": ["clearer"]})
    judgement = Judgement.objects.get()
    assert (judgement.left, judgement.choice, judgement.reasons) == (left, left, ["clearer"])
    assertContains(client.get(url), "Nothing to compare")


def test_pairs_page_and_triage_need_their_roles(client, task, annotator, reviewer, lead, outsider):
    pairs_url = reverse("preferences:pairs", args=[task.slug])
    triage_url = reverse("preferences:triage", args=[task.slug])
    client.force_login(outsider)
    assert client.get(pairs_url).status_code == 404
    client.force_login(annotator)
    assert client.get(pairs_url).status_code == 403
    client.force_login(reviewer)
    assert client.get(triage_url).status_code == 403
    assertContains(client.get(pairs_url), "No preference pairs")
    client.force_login(lead)
    assertContains(client.get(triage_url), "No comparison in triage")


def test_reviewers_mark_imported_pairs_reviewed_and_text_is_escaped(client, task, reviewer, other_task):
    mine = PreferencePair.objects.create(task=task, template=task.current_template, instruction="<script>x</script>",
                                         chosen="Good", rejected="Bad", source=Source.IMPORT)  # fmt: skip
    theirs = PreferencePair.objects.create(task=other_task, template=other_task.current_template, instruction="Q",
                                           chosen="Good", rejected="Bad", source=Source.IMPORT)  # fmt: skip
    client.force_login(reviewer)
    response = client.get(reverse("preferences:pairs", args=[task.slug]))
    assertNotContains(response, "<script>x</script>")
    assertContains(response, "&lt;script&gt;x&lt;/script&gt;")
    client.post(
        reverse("preferences:pairs_review", args=[task.slug]), {"uuids": [str(mine.uuid), str(theirs.uuid), "junk"]}
    )
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.reviewed, mine.reviewed_by, theirs.reviewed) == (True, reviewer, False)


def test_triage_shows_each_judgement_with_its_reasons_in_words(client, task, reviewer, lead):
    task.approvals_required = 2
    task.save()
    second = _member(task, "sam", Role.REVIEWER)
    c = comparison(task)
    services.judgement_record(comparison=c, judge=reviewer, left="a", pick="left", reasons=["accurate", "safer"])
    services.judgement_record(comparison=c, judge=second, left="a", pick="right", comment="B is kinder")
    client.force_login(lead)
    response = client.get(reverse("preferences:triage", args=[task.slug]))
    assertContains(response, "<strong>rita</strong>: Candidate A (More accurate, Safer)", html=False)
    assertContains(response, "<strong>sam</strong>: Candidate B — B is kinder", html=False)
