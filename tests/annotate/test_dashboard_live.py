"""The dashboard says which figures are live and which come from the last task-wide check, and when."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from reviews import services as review_services
from tests.annotate.test_scans import run_scan
from tests.reviews.conftest import submit_new

pytestmark = pytest.mark.django_db


def test_before_any_check_live_figures_are_counted_and_snapshot_ones_are_unknown_not_zero(
    client, task, lead, annotator, reviewer
):
    first = submit_new(task, annotator, "Hold the button for ten seconds.", instruction="It blinks. What now?")
    second = submit_new(task, annotator, "Yes.", instruction="Can I move it?")
    submit_new(task, annotator, "Call us.", instruction="It is broken.")
    review_services.verdict_record(example=first, reviewer=reviewer, decision="approve", version=first.version)
    review_services.verdict_record(
        example=second, reviewer=reviewer, decision="flag", version=second.version, reasons=["unclear"]
    )
    client.force_login(lead)
    response = client.get(reverse("annotate:dashboard", args=[task.slug]))
    assertContains(response, '<dd data-testid="live-reviewed">2</dd>', html=False)
    assertContains(response, '<dd data-testid="live-approved-share">50%</dd>', html=False)
    assertContains(response, '<dd data-testid="live-waiting">1</dd>', html=False)
    assertContains(response, '<dd data-testid="verdicts">—</dd>', html=False)
    assertContains(response, 'data-testid="tokens-unknown"')
    assertNotContains(response, 'data-testid="cost"')
    assertNotContains(response, "as of ")


def test_after_a_check_snapshot_figures_carry_the_time_they_were_taken(
    client, task, lead, annotator, reviewer, django_capture_on_commit_callbacks, inline_celery
):
    example = submit_new(task, annotator, "Hold the button for ten seconds.", instruction="It blinks. What now?")
    review_services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=example.version)
    run_scan(task, lead, django_capture_on_commit_callbacks)
    scan = task.scans.get()
    stamp = scan.finished_at.astimezone().strftime("%Y-%m-%d %H:%M")
    client.force_login(lead)
    response = client.get(reverse("annotate:dashboard", args=[task.slug]))
    assertContains(response, f"as of {stamp}", count=2)  # the verdicts and the tokens
    assertContains(response, '<dd data-testid="verdicts">1</dd>', html=False)
    assertContains(response, 'data-testid="prompt-tokens"')
    assertContains(response, "US$")
    # a verdict after the check moves the live figures at once; the snapshot keeps its time
    later = submit_new(task, annotator, "No.", instruction="Is it waterproof?")
    review_services.verdict_record(
        example=later, reviewer=reviewer, decision="reject", version=later.version, reasons=["inaccurate"]
    )
    response = client.get(reverse("annotate:dashboard", args=[task.slug]))
    assertContains(response, '<dd data-testid="live-reviewed">2</dd>', html=False)
    assertContains(response, '<dd data-testid="verdicts">1</dd>', html=False)


def test_one_day_of_moves_is_drawn_as_bars_not_a_degenerate_line():
    from annotate.views_quality import _charts

    one = {"tables": {"status": [], "coverage": [], "per_day": [{"day": "2026-12-06", "submitted": 3, "approved": 2,
           "flagged": 1, "rejected": 0, "new": 0, "draft": 0}], "lengths": [], "labels": [], "reasons": [],
           "annotators": [], "reviewers": []}}  # fmt: skip
    chart = str(_charts(one)["per_day"])
    assert "Moves into each status on 2026-12-06" in chart
    assert "<polyline" not in chart and chart.count('class="bar') == 4
    two = {**one, "tables": {**one["tables"], "per_day": one["tables"]["per_day"] * 2}}
    two["tables"]["per_day"] = [{**one["tables"]["per_day"][0], "day": d} for d in ("2026-12-05", "2026-12-06")]
    assert "<polyline" in str(_charts(two)["per_day"])
