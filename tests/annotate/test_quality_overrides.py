"""“Not a problem” on a quality warning: who may give it, what is stored and audited, how it holds for the text it was
given on (saves, submits, rescans) and lets go when the text changes, its undo, and the dashboard's counts per check."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import overrides, services
from annotate.models import AuditEvent, Example, QualityOverride, Role
from reviews import services as review_services
from tests.annotate.test_scans import run_scan
from tests.factories import ExampleFactory, MembershipFactory, UserFactory
from tests.reviews.conftest import submit_new

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
SPACED = "Hold the round button for ten seconds. "  # a trailing space: the "Stray whitespace" check


@pytest.fixture(autouse=True)
def _inline(inline_celery):
    """Scans run inline in these tests."""


@pytest.fixture
def spaced(task, annotator):
    """A submitted example whose completion ends with a space: one open "Stray whitespace" warning."""
    example = submit_new(task, annotator, SPACED)
    assert ",whitespace," in example.warning_codes
    return example


def overrule_url(example):
    return reverse("annotate:overrule", args=[example.task.slug, example.uuid])


def overrule(client, example, code="whitespace", *, version=None, note="", htmx=True, back="review"):
    data = {"code": code, "version": example.version if version is None else version, "note": note, "from": back}
    return client.post(overrule_url(example), data, headers=HTMX if htmx else {})


def undo(client, override, htmx=True):
    url = reverse("annotate:overrule_undo", args=[override.task.slug, override.example.uuid, override.pk])
    return client.post(url, {"from": "review"}, headers=HTMX if htmx else {})


def stored(example) -> Example:
    return Example.objects.get(pk=example.pk)


def test_a_reviewer_marks_a_warning_not_a_problem_and_it_is_kept_audited_and_no_longer_open(
    client, task, reviewer, spaced
):
    risk_before = spaced.risk
    client.force_login(reviewer)
    response = overrule(client, spaced, note="The trailing space is <harmless>")
    assert response.status_code == 200
    assertNotContains(response, "<html")  # the warnings panel only, for htmx to swap
    assertContains(response, 'id="quality-warnings"')
    assertContains(response, "<strong>Stray whitespace</strong>: marked not a problem by rita", html=False)
    assertContains(response, "Note: The trailing space is &lt;harmless&gt;")
    assertNotContains(response, "data-not-a-problem")  # nothing else open to mark
    override = QualityOverride.objects.get()
    example = stored(spaced)
    assert (override.code, override.created_by, override.example_version) == ("whitespace", reviewer, example.version)
    assert override.text_hash == overrides.example_text_hash(example)
    assert override.undone_at is None
    # kept in the list, marked; not an open warning: no code for the filters, no risk
    assert [w["code"] for w in example.warnings] == ["whitespace"]
    assert example.warnings[0]["override"]["by"] == "rita"
    assert example.warning_codes == ""
    assert example.risk < risk_before
    event = AuditEvent.objects.get(action=AuditEvent.Action.WARNING_OVERRULED)
    assert (event.actor, event.task, event.target) == (reviewer, task, str(spaced.uuid))
    assert event.detail["check"] == "Stray whitespace"
    assert event.detail["note"] == "The trailing space is <harmless>"


def test_a_second_click_finds_the_first_override(client, reviewer, spaced):
    client.force_login(reviewer)
    overrule(client, spaced)
    response = overrule(client, spaced)  # the page still had the button (a double click)
    assert response.status_code == 200
    assert QualityOverride.objects.count() == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.WARNING_OVERRULED).count() == 1


@pytest.mark.parametrize("who", ["annotator", "outsider"])
def test_annotators_get_403_and_other_tasks_members_404(client, request, spaced, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    response = overrule(client, spaced)
    assert response.status_code == {"annotator": 403, "outsider": 404}[who]
    assert not QualityOverride.objects.exists()
    assert stored(spaced).warning_codes == ",whitespace,"
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.WARNING_OVERRULED).exists()


def test_another_tasks_example_is_404_through_this_task(client, task, other_task, lead):
    elsewhere = ExampleFactory(
        task=other_task,
        completion=SPACED,
        warnings=[{"code": "whitespace", "message": "Ends with a space.", "blocking": False}],
        warning_codes=",whitespace,",
    )
    client.force_login(lead)  # a lead of `task`, nothing on `other_task`
    url = reverse("annotate:overrule", args=[task.slug, elsewhere.uuid])
    response = client.post(url, {"code": "whitespace", "version": elsewhere.version}, headers=HTMX)
    assert response.status_code == 404
    assert not QualityOverride.objects.exists()


def test_a_lead_may_and_a_plain_post_goes_back_to_the_page(client, task, lead, spaced):
    client.force_login(lead)
    response = overrule(client, spaced, htmx=False)
    assert response.status_code == 302
    assert response.url == reverse("reviews:review", args=[task.slug, spaced.uuid])
    assert stored(spaced).warning_codes == ""
    response = overrule(client, spaced, htmx=False, back="https://evil.example/")  # not an allowed page
    assert response.url == reverse("reviews:example", args=[task.slug, spaced.uuid])


def test_nobody_overrules_the_warnings_of_their_own_text(client, task, annotator, spaced):
    MembershipFactory(task=task, user=annotator, role=Role.REVIEWER)
    client.force_login(annotator)
    page = client.get(reverse("reviews:review", args=[task.slug, spaced.uuid]))
    assertNotContains(page, "data-not-a-problem")
    assertContains(page, "You wrote this example; another reviewer judges its warnings.")
    assert overrule(client, spaced).status_code == 403
    assert not QualityOverride.objects.exists()


@pytest.mark.parametrize(
    ("code", "version_delta", "message"),
    [
        ("whitespace", -1, "The example changed since this page was shown"),
        ("leak", 0, "This example has no “Answer leak” warning now."),
        ("no_such_check", 0, "That is not one of the quality checks."),
        ("coverage", 0, "That is not one of the quality checks."),  # about the task, not an example
    ],
)
def test_bad_requests_say_why_and_change_nothing(client, reviewer, spaced, code, version_delta, message):
    client.force_login(reviewer)
    response = overrule(client, spaced, code, version=spaced.version + version_delta)
    assert response.status_code == 200  # htmx 2 swaps no 4xx: the panel, with the reason
    assertContains(response, message)
    assertContains(response, "data-not-a-problem")  # the warning is still open to mark
    assert not QualityOverride.objects.exists()
    assert stored(spaced).warning_codes == ",whitespace,"


def test_a_note_too_long_is_refused(client, reviewer, spaced):
    client.force_login(reviewer)
    response = overrule(client, spaced, note="x" * 301)
    assertContains(response, "The note is 301 characters long; at most 300 are kept.")
    assert not QualityOverride.objects.exists()


def test_the_same_text_keeps_it_through_a_rescan_a_resubmit_and_blocks_nothing(
    client, task, lead, reviewer, annotator, spaced, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    overrule(client, spaced)
    scan = run_scan(task, lead, django_capture_on_commit_callbacks)
    example = stored(spaced)
    assert example.warning_codes == ""
    assert example.warnings[0]["code"] == "whitespace" and "override" in example.warnings[0]
    assert "whitespace" not in scan.report["counts"]
    assert scan.report["overruled"] == {"whitespace": 1}
    # flagged back for another reason; the annotator resubmits the very same text, with the check now blocking
    task.blocking_checks = ["whitespace"]
    task.save()
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"]
    )
    example.refresh_from_db()
    resubmitted = services.example_submit(
        example=example, user=annotator, completion=SPACED, kind="happy", expected_version=example.version
    )
    assert resubmitted.status == "submitted"
    assert stored(spaced).warning_codes == ""


def test_a_changed_text_gets_its_warning_back_and_the_page_says_it_was_overruled_before(
    client, task, lead, reviewer, annotator, spaced, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    overrule(client, spaced)
    review_services.verdict_record(
        example=stored(spaced), reviewer=reviewer, decision="flag", version=stored(spaced).version, reasons=["format"]
    )
    example = stored(spaced)
    task.blocking_checks = ["whitespace"]
    task.save()
    changed = SPACED.replace("ten", "fifteen")
    with pytest.raises(ValidationError, match="Fix these before submitting"):  # the override was for the old text
        services.example_submit(
            example=example, user=annotator, completion=changed, kind="happy", expected_version=example.version
        )
    task.blocking_checks = []
    task.save()
    example = stored(spaced)
    submitted = services.example_submit(
        example=example, user=annotator, completion=changed, kind="happy", expected_version=example.version
    )
    assert stored(submitted).warning_codes == ",whitespace,"
    run_scan(task, lead, django_capture_on_commit_callbacks)  # a rescan does not bring the old override back
    example = stored(submitted)
    assert example.warning_codes == ",whitespace,"
    assert "override" not in example.warnings[0]
    page = client.get(reverse("reviews:example", args=[task.slug, example.uuid]))
    assertContains(page, "rita marked this not a problem on an earlier text")
    assertContains(page, "data-not-a-problem")
    # the text back as it was: the override given on it applies again
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["format"]
    )
    example = stored(submitted)
    services.example_save(
        example=example, user=annotator, completion=SPACED, kind="happy", expected_version=example.version
    )
    assert stored(submitted).warning_codes == ""


def test_undo_opens_the_warning_again_and_is_audited(client, task, reviewer, lead, spaced):
    client.force_login(reviewer)
    overrule(client, spaced)
    override = QualityOverride.objects.get()
    response = undo(client, override)
    assert response.status_code == 200
    assertContains(response, "data-not-a-problem")
    assertNotContains(response, "data-overruled")
    override.refresh_from_db()
    assert override.undone_by == reviewer and override.undone_at is not None  # kept, not deleted
    example = stored(spaced)
    assert example.warning_codes == ",whitespace,"
    assert "override" not in example.warnings[0]
    event = AuditEvent.objects.get(action=AuditEvent.Action.OVERRULE_UNDONE)
    assert (event.actor, event.target, event.detail["check"]) == (reviewer, str(spaced.uuid), "Stray whitespace")
    # undone once: a second undo says so; a new "not a problem" is a new, separate row
    assertContains(undo(client, override), "This was undone already.")
    overrule(client, spaced)
    assert QualityOverride.objects.filter(undone_at__isnull=True).count() == 1
    assert QualityOverride.objects.count() == 2


def test_only_the_reviewer_who_gave_it_or_a_lead_may_undo_it(client, task, reviewer, second_reviewer, lead, spaced):
    client.force_login(reviewer)
    overrule(client, spaced)
    override = QualityOverride.objects.get()
    client.force_login(second_reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, spaced.uuid]))
    assertNotContains(page, "data-undo-overrule")
    assert undo(client, override).status_code == 403
    assert stored(spaced).warning_codes == ""
    client.force_login(lead)
    assertContains(client.get(reverse("reviews:review", args=[task.slug, spaced.uuid])), "data-undo-overrule")
    assert undo(client, override).status_code == 200
    assert stored(spaced).warning_codes == ",whitespace,"


def test_undo_of_another_examples_override_is_404(client, task, reviewer, annotator, spaced):
    other = submit_new(task, annotator, SPACED, instruction="Another question?")
    client.force_login(reviewer)
    overrule(client, spaced)
    override = QualityOverride.objects.get()
    url = reverse("annotate:overrule_undo", args=[task.slug, other.uuid, override.pk])
    assert client.post(url, headers=HTMX).status_code == 404
    assert QualityOverride.objects.get().undone_at is None


@pytest.fixture
def second_reviewer(task):
    user = UserFactory(username="remy")
    MembershipFactory(task=task, user=user, role=Role.REVIEWER)
    return user


def dashboard_row(client, task, code):
    response = client.get(reverse("annotate:dashboard", args=[task.slug]))
    rows = {row["code"]: row for row in response.context["check_rows"]}
    return response, rows.get(code)


def test_the_dashboard_counts_open_and_overruled_warnings_per_check(
    client, task, lead, reviewer, annotator, django_capture_on_commit_callbacks
):
    first = submit_new(task, annotator, SPACED, instruction="First question?")
    submit_new(task, annotator, SPACED, instruction="Second question?")
    submit_new(task, annotator, "Hold the round button.", instruction="Third question?")
    run_scan(task, lead, django_capture_on_commit_callbacks)
    client.force_login(lead)
    response, row = dashboard_row(client, task, "whitespace")
    assert (row["examples"], row["overruled"], row["overruled_share"]) == (2, 0, 0.0)
    client.force_login(reviewer)
    overrule(client, first)
    client.force_login(lead)
    # counted at once, without a new check: one moved from open to overruled
    response, row = dashboard_row(client, task, "whitespace")
    assert (row["title"], row["examples"], row["overruled"], row["overruled_share"]) == (
        "Stray whitespace", 1, 1, 0.5,
    )  # fmt: skip
    assertContains(response, '<td class="num" data-testid="overruled-share">50%</td>', html=False)
    assertNotContains(response, ">whitespace<")  # the check's name, never its code
    # a new check agrees with the live figures
    run_scan(task, lead, django_capture_on_commit_callbacks)
    _, row = dashboard_row(client, task, "whitespace")
    assert (row["examples"], row["overruled"]) == (1, 1)
    # undone: back to open, at once
    client.force_login(reviewer)
    undo(client, QualityOverride.objects.get())
    client.force_login(lead)
    _, row = dashboard_row(client, task, "whitespace")
    assert (row["examples"], row["overruled"]) == (2, 0)
    csv = client.get(reverse("annotate:dashboard_csv", args=[task.slug, "checks"])).content.decode()
    assert csv.splitlines()[0] == "code,title,examples,overruled,overruled_share"


def test_the_dashboard_says_when_there_is_nothing_to_count(client, task, lead, django_capture_on_commit_callbacks):
    client.force_login(lead)
    assertContains(client.get(reverse("annotate:dashboard", args=[task.slug])), "Run a check of the whole task")
    ExampleFactory(task=task, completion="Hold the round button for ten seconds.", status="approved")
    run_scan(task, lead, django_capture_on_commit_callbacks)
    response = client.get(reverse("annotate:dashboard", args=[task.slug]))
    assertContains(response, "No warnings: every example passed every check.")
    assertNotContains(response, 'data-testid="checks"')
