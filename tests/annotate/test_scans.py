"""Quality checks stored per example (on save and by the task-wide scan job) and the lead's dashboard."""

import re
import time

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services
from annotate.models import Example, QualityScan
from annotate.scans import scan_request
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
LEAK_TEXT = "Restart the thermostat by holding the round button for ten full seconds until the ring turns blue"


@pytest.fixture(autouse=True)
def _inline(request):
    if "celery_worker_process" not in request.fixturenames:
        request.getfixturevalue("inline_celery")


def run_scan(task, lead, django_capture_on_commit_callbacks) -> QualityScan:
    with django_capture_on_commit_callbacks(execute=True):  # inline Celery: the job runs when the request commits
        scan = scan_request(task=task, user=lead)
    scan.refresh_from_db()
    assert scan.state == "succeeded", scan.error
    return scan


def test_a_save_stores_the_examples_warnings_and_a_fix_clears_them(task, annotator):
    ExampleFactory(task=task, input=LEAK_TEXT)
    example = services.example_claim_next(task=task, user=annotator)
    saved = services.example_save(
        example=example, user=annotator, completion=LEAK_TEXT, kind="happy", expected_version=1
    )
    stored = Example.objects.get(pk=saved.pk)
    assert ",leak," in stored.warning_codes and stored.risk > 0
    assert any(w["code"] == "leak" and "input" in w["message"] for w in stored.warnings)
    services.example_save(
        example=stored, user=annotator, completion="Hold the button.", kind="happy", expected_version=2
    )
    assert Example.objects.get(pk=saved.pk).warning_codes == ""


def test_the_scan_finds_duplicates_near_duplicates_and_contradictions(task, lead, django_capture_on_commit_callbacks):
    prompt = "How do I change the schedule on my thermostat so that it heats the living room earlier in the morning"
    a = ExampleFactory(task=task, instruction=prompt)
    b = ExampleFactory(task=task, instruction=prompt.upper().replace(" SO ", ", so ") + "?!")
    near = ExampleFactory(task=task, instruction=prompt.replace("earlier", "later"))
    yes = ExampleFactory(
        task=task, instruction="Is the T3 compatible with a heat pump?", status="approved", completion="Yes, it is."
    )
    no = ExampleFactory(
        task=task, instruction="is the t3 compatible with a heat pump", status="approved", completion="No, it is not."
    )
    alone = ExampleFactory(task=task, instruction="Where is my invoice for order 1042?")
    scan = run_scan(task, lead, django_capture_on_commit_callbacks)
    codes = {e.pk: e.warning_codes for e in Example.objects.all()}
    assert ",duplicate," in codes[a.pk] and ",duplicate," in codes[b.pk]
    assert ",near_duplicate," in codes[near.pk]
    assert ",contradiction," in codes[yes.pk] and ",contradiction," in codes[no.pk]
    assert codes[alone.pk] == ""
    assert scan.report["counts"]["duplicate"] >= 2 and scan.report["counts"]["contradiction"] == 2
    assert scan.report["totals"]["examples"] == 6


def test_a_rescan_clears_warnings_that_no_longer_hold(task, lead, django_capture_on_commit_callbacks):
    a = ExampleFactory(task=task, instruction="Reset my Skylark please")
    b = ExampleFactory(task=task, instruction="reset my skylark, please!")
    run_scan(task, lead, django_capture_on_commit_callbacks)
    assert ",duplicate," in Example.objects.get(pk=a.pk).warning_codes
    Example.objects.filter(pk=b.pk).update(instruction="Where is my invoice?")
    run_scan(task, lead, django_capture_on_commit_callbacks)
    assert Example.objects.get(pk=a.pk).warning_codes == ""


def test_only_one_live_scan_per_task(task, lead):
    first = scan_request(task=task, user=lead)  # not committed yet in this test: it stays queued
    assert scan_request(task=task, user=lead) == first
    assert QualityScan.objects.count() == 1


def test_dashboard_draws_its_plots_and_links_each_check(client, task, lead, django_capture_on_commit_callbacks):
    ExampleFactory(
        task=task, instruction="Reset my Skylark please", status="approved", completion="Hold it.", kind="happy"
    )
    ExampleFactory(
        task=task, instruction="reset my skylark, please!", status="submitted", completion="Hold", kind="edge"
    )
    task.coverage_targets = {"negative": 0.1}
    task.save()
    run_scan(task, lead, django_capture_on_commit_callbacks)
    client.force_login(lead)
    response = client.get(reverse("annotate:dashboard", args=[task.slug]))
    html = response.content.decode()
    for plot in ("status", "coverage", "lengths"):
        assert f'data-plot="{plot}"' in html
    assert html.count("<svg") >= 3
    assertContains(response, "Negative examples are 0% of 2")  # coverage against the lead's target
    assertContains(response, f'href="{reverse("annotate:examples", args=[task.slug])}?warning=duplicate"')
    listed = client.get(reverse("annotate:examples", args=[task.slug]) + "?warning=duplicate")
    assertContains(listed, "Reset my Skylark please")
    assertContains(listed, "reset my skylark, please!")


def test_dashboard_csv_has_the_numbers_behind_the_plot(client, task, lead, django_capture_on_commit_callbacks):
    ExampleFactory.create_batch(3, task=task, status="approved", completion="ok")
    ExampleFactory(task=task, status="new")
    client.force_login(lead)
    response = client.get(reverse("annotate:dashboard_csv", args=[task.slug, "status"]))
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "status,examples"
    assert "approved,3" in lines and "new,1" in lines
    assert client.get(reverse("annotate:dashboard_csv", args=[task.slug, "nope"])).status_code == 404


def test_dashboard_queries_do_not_grow_with_the_task(
    client, task, lead, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    ExampleFactory.create_batch(3, task=task)
    run_scan(task, lead, django_capture_on_commit_callbacks)
    client.force_login(lead)
    url = reverse("annotate:dashboard", args=[task.slug])
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get(url)
    ExampleFactory.create_batch(60, task=task, status="approved", completion="fine")
    run_scan(task, lead, django_capture_on_commit_callbacks)
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(url)


@pytest.mark.parametrize("name", ["annotate:dashboard", "annotate:scan_start", "annotate:examples"])
def test_quality_pages_check_roles(client, task, annotator, reviewer, outsider, name):
    method = client.post if name == "annotate:scan_start" else client.get
    url = reverse(name, args=[task.slug])
    client.force_login(outsider)
    assert method(url).status_code == 404
    client.force_login(annotator)
    assert method(url).status_code == 403
    client.force_login(reviewer)
    assert method(url).status_code == (200 if name == "annotate:examples" else 403)


def test_examples_list_escapes_text_and_filters(client, task, lead):
    ExampleFactory(task=task, instruction="<script>alert(1)</script>", status="approved")
    ExampleFactory(task=task, instruction="A new one", status="new")
    client.force_login(lead)
    response = client.get(reverse("annotate:examples", args=[task.slug]) + "?status=approved")
    assertContains(response, "&lt;script&gt;alert(1)&lt;/script&gt;")
    assertNotContains(response, "A new one")


def test_lead_chooses_blocking_checks_and_coverage_targets(client, task, lead):
    client.force_login(lead)
    response = client.post(
        reverse("annotate:task_edit", args=[task.slug]),
        {"name": task.name, "output_format": "text", "approvals_required": "1", "validation_ratio": "0.1",
         "split_seed": "s", "blocking_checks": ["leak", "empty"], "target_negative": "10", "target_edge": "15"},
    )  # fmt: skip
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.blocking_checks == ["leak", "empty"]
    assert task.coverage_targets == {"edge": 0.15, "negative": 0.1}


@pytest.mark.redis
def test_scan_runs_in_a_real_worker(celery_worker_process, task, lead):
    ExampleFactory(task=task, instruction="Reset my Skylark please")
    ExampleFactory(task=task, instruction="reset my skylark, please!")
    scan = scan_request(task=task, user=lead)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        scan.refresh_from_db()
        if not scan.is_live:
            break
        time.sleep(0.3)
    assert scan.state == "succeeded", scan.error
    assert scan.report["counts"]["duplicate"] == 2


def test_dashboard_shows_the_approval_rate_at_a_glance(
    client, task, lead, reviewer, django_capture_on_commit_callbacks
):
    from reviews.models import Verdict

    client.force_login(lead)
    url = reverse("annotate:dashboard", args=[task.slug])
    before = client.get(url)
    assertContains(before, '<dd data-testid="verdicts">—</dd>', html=False)  # unknown before any check, not 0
    assertContains(before, "Counted by the task-wide check: run one to see them.")
    for decision in ("approve", "approve", "approve", "flag"):
        example = ExampleFactory(task=task, status="submitted", completion="An answer.")
        revision = example.revisions.create(text=example.completion, reason="submit", example_version=1)
        Verdict.objects.create(
            example=example, revision=revision, example_version=1, reviewer=reviewer, decision=decision
        )
    run_scan(task, lead, django_capture_on_commit_callbacks)  # the dashboard's figures are the last check's
    response = client.get(url)
    assertContains(response, '<dd data-testid="approval-rate">75%</dd>', html=False)
    assertContains(response, '<dd data-testid="verdicts">4</dd>', html=False)
    assertNotContains(response, "run one to see them")


def test_count_axes_have_whole_steps():
    from annotate.charts import bar_chart

    svg = str(bar_chart("Submissions per annotator", ["anna"], [1]))
    ticks = re.findall(r'class="tick"[^>]*>([^<]+)<', svg)
    assert ticks == ["0", "1", "2", "3", "4"]
