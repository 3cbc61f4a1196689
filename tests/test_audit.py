"""The audit log: every recorded action lands in it, with who and what, in the action's own transaction; the lead-only
page lists a task's events newest first, filters, pages in a fixed number of queries and escapes user text."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services as annotate_services
from annotate.audit import audit_record
from annotate.models import AuditEvent, Example, Membership, Role
from exports import services as export_services
from exports.models import ApiToken, Export
from reviews import services as review_services
from reviews.models import Verdict
from tests.factories import ExampleFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action


def submitted(task, author, instruction: str = "How do I reset my router?") -> Example:
    example = annotate_services.example_write_new(
        task=task, user=author, fields={"instruction": instruction}, completion="draft", kind="happy"
    )
    return annotate_services.example_submit(
        example=example,
        user=author,
        completion="Hold reset for ten seconds.",
        kind="happy",
        expected_version=example.version,
    )


def only_event(**filters) -> AuditEvent:
    return AuditEvent.objects.get(**filters)


# --- what is recorded ---------------------------------------------------------------------------------------------


def test_a_verdict_is_recorded_with_reviewer_example_and_decision(task, annotator, reviewer):
    example = submitted(task, annotator)
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", reasons=["unclear"], version=example.version
    )
    event = only_event(action=Action.VERDICT)
    assert (event.task, event.actor, event.target) == (task, reviewer, str(example.uuid))
    assert event.detail["decision"] == "flag" and event.detail["reasons"] == ["unclear"]
    assert event.detail["status"] == Example.Status.FLAGGED


def test_a_refused_verdict_records_nothing(task, annotator, reviewer):
    example = submitted(task, annotator)
    with pytest.raises(review_services.StaleReview):
        review_services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=99)
    assert not AuditEvent.objects.exists()


def test_the_event_is_written_in_the_verdicts_transaction(task, annotator, reviewer, monkeypatch):
    """When the event cannot be written, the verdict is not either: one transaction."""
    example = submitted(task, annotator)

    def broken(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(review_services.verdicts, "audit_record", broken)  # where verdict_record looks it up
    with pytest.raises(RuntimeError):
        review_services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=example.version)
    assert not Verdict.objects.exists()
    assert Example.objects.get(pk=example.pk).status == Example.Status.SUBMITTED


def test_triage_send_back_is_one_event_naming_the_examples(task, annotator, reviewer, lead):
    examples = [submitted(task, annotator, f"Question {i}?") for i in range(3)]
    for example in examples:
        review_services.verdict_record(
            example=example, reviewer=reviewer, decision="reject", reasons=["unclear"], version=example.version
        )
    review_services.triage_send_back(task=task, uuids=[e.uuid for e in examples], actor=lead, reasons=["format"])
    event = only_event(action=Action.TRIAGE_SEND_BACK)
    assert (event.task, event.actor, event.target) == (task, lead, "3 examples")
    assert sorted(event.detail["examples"]) == sorted(str(e.uuid) for e in examples)


def test_triage_reject_and_reassign_are_recorded_with_actor_and_examples(task, annotator, reviewer, lead):
    other = UserFactory(username="otis")
    MembershipFactory(task=task, user=other, role=Role.ANNOTATOR)
    flagged = [submitted(task, annotator, f"Question {i}?") for i in range(2)]
    for example in flagged:
        review_services.verdict_record(
            example=example, reviewer=reviewer, decision="flag", reasons=["unclear"], version=example.version
        )
    uuids = [str(example.uuid) for example in flagged]

    review_services.triage_reassign(task=task, uuids=[flagged[0].uuid], actor=lead, annotator=other)
    reassign = only_event(action=Action.TRIAGE_REASSIGN)
    assert (reassign.actor, reassign.target) == (lead, "1 example")
    assert reassign.detail["examples"] == uuids[:1] and reassign.detail["annotator"] == "otis"

    review_services.triage_reject(task=task, uuids=[e.uuid for e in flagged], actor=lead, reasons=["inaccurate"])
    reject = only_event(action=Action.TRIAGE_REJECT)
    assert (reject.actor, reject.target) == (lead, "2 examples")
    assert reject.detail["examples"] == uuids and reject.detail["reasons"] == ["inaccurate"]


def test_a_triage_action_that_changes_nothing_records_nothing(task, lead):
    review_services.triage_reject(task=task, uuids=[], actor=lead, reasons=["inaccurate"])
    assert not AuditEvent.objects.filter(action=Action.TRIAGE_REJECT).exists()


def test_export_request_and_cancel_are_recorded(client, task, lead):
    from tests.exports.conftest import approve

    approve(task, 3)
    client.force_login(lead)
    client.post(reverse("exports:create", args=[task.slug]), {"export_format": "alpaca", "validation_ratio": "0.1"})
    export = Export.objects.get(task=task)
    Export.objects.filter(pk=export.pk).update(state="queued")  # still live, whatever the inline run did
    requested = only_event(action=Action.EXPORT_REQUESTED)
    assert (requested.task, requested.actor, requested.target) == (task, lead, "v1")
    assert requested.detail["format"] == "alpaca"

    client.post(reverse("exports:cancel", args=[task.slug, 1]))
    cancelled = only_event(action=Action.EXPORT_CANCELLED)
    assert (cancelled.task, cancelled.actor, cancelled.target) == (task, lead, "v1")


def test_cancelling_a_finished_export_records_nothing(task, lead):
    from tests.exports.conftest import approve

    approve(task, 2)
    export = export_services.export_request(task=task, export_format="alpaca", user=lead)
    Export.objects.filter(pk=export.pk).update(state="succeeded")
    with pytest.raises(Exception, match="already succeeded"):
        export_services.export_cancel(export=export, actor=lead)
    assert not AuditEvent.objects.filter(action=Action.EXPORT_CANCELLED).exists()


def test_members_page_records_role_changes_with_the_lead_as_actor(client, task, lead, annotator):
    client.force_login(lead)
    url = reverse("annotate:members", args=[task.slug])
    client.post(url, {"action": "add", "username": annotator.username, "role": Role.REVIEWER})
    client.post(url, {"action": "add", "username": annotator.username, "role": Role.REVIEWER})  # held: no event
    client.post(url, {"action": "remove", "user_id": annotator.pk, "role": Role.ANNOTATOR})
    added = only_event(action=Action.ROLE_ADDED)
    removed = only_event(action=Action.ROLE_REMOVED)
    assert (added.task, added.actor, added.target, added.detail) == (task, lead, "anna", {"role": "reviewer"})
    assert (removed.task, removed.actor, removed.target, removed.detail) == (task, lead, "anna", {"role": "annotator"})


def test_a_refused_role_removal_records_nothing(task, lead):
    with pytest.raises(Exception, match="at least one lead"):
        annotate_services.membership_remove(task=task, user=lead, role=Role.LEAD, actor=lead)
    assert not AuditEvent.objects.exists()


def test_role_change_and_its_event_share_a_transaction(task, annotator, monkeypatch):
    monkeypatch.setattr(annotate_services, "audit_record", lambda **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        annotate_services.membership_add(task=task, user=annotator, role=Role.LEAD)
    assert not Membership.objects.filter(user=annotator, role=Role.LEAD).exists()


def test_add_member_command_is_recorded_without_an_actor(task):
    call_command("add_member", task.slug, "newbie", role="annotator", stdout=None)
    event = only_event(action=Action.ROLE_ADDED)
    assert (event.task, event.actor, event.target) == (task, None, "newbie")


def test_tokens_are_account_events_with_their_prefix_never_the_token(client, reviewer):
    client.force_login(reviewer)
    response = client.post(reverse("exports:tokens"), {"name": "nightly"})
    raw = response.context["new_token"]
    row = ApiToken.objects.get(user=reviewer)
    client.post(reverse("exports:token_revoke", args=[row.pk]))
    client.post(reverse("exports:token_revoke", args=[row.pk]))  # already revoked: no second event
    created, revoked = only_event(action=Action.TOKEN_CREATED), only_event(action=Action.TOKEN_REVOKED)
    assert (created.task, created.actor, created.target) == (None, reviewer, row.prefix)
    assert (revoked.task, revoked.actor, revoked.target) == (None, reviewer, row.prefix)
    assert raw not in str(list(AuditEvent.objects.values()))


def test_task_creation_settings_and_template_saves_are_recorded(client, task, lead):
    created = annotate_services.task_create(slug="fresh", name="Fresh", created_by=lead)
    assert only_event(action=Action.TASK_CREATED).actor == lead
    assert only_event(action=Action.ROLE_ADDED, task=created).target == "leo"
    annotate_services.template_save(task=task, values={"instruction_text": "Be brief."}, user=lead)
    saved = only_event(action=Action.TEMPLATE_SAVED)
    assert (saved.task, saved.actor, saved.target) == (task, lead, "v1")


def test_audit_record_refuses_an_unknown_action(task):
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit_record(task=task, actor=None, action="made_up")


# --- the page -----------------------------------------------------------------------------------------------------


def audit_url(task, **query) -> str:
    url = reverse("annotate:audit", args=[task.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.mark.parametrize(("persona", "status"), [("lead", 200), ("staff", 200), ("annotator", 403), ("reviewer", 403)])
def test_leads_and_staff_read_the_log_other_members_get_403(client, request, task, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(audit_url(task)).status_code == status


def test_outsider_gets_404(client, task, outsider):
    client.force_login(outsider)  # a lead of another task
    assert client.get(audit_url(task)).status_code == 404


def test_anonymous_is_sent_to_login(client, task):
    response = client.get(audit_url(task))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_events_are_listed_newest_first_with_actor_action_and_target(client, task, lead, reviewer):
    audit_record(task=task, actor=reviewer, action=Action.VERDICT, target="first-target", detail={"decision": "flag"})
    audit_record(task=task, actor=lead, action=Action.EXPORT_REQUESTED, target="v7")
    client.force_login(lead)
    response = client.get(audit_url(task))
    body = response.content.decode()
    assert body.index("Export requested") < body.index("first-target")
    assertContains(response, "rita")
    assertContains(response, "decision:")


def test_other_tasks_and_account_events_are_not_shown(client, task, other_task, lead):
    audit_record(task=other_task, actor=lead, action=Action.EXPORT_REQUESTED, target="other-task-export")
    audit_record(task=None, actor=lead, action=Action.TOKEN_CREATED, target="psk_secret")
    client.force_login(lead)
    response = client.get(audit_url(task))
    assertNotContains(response, "other-task-export")
    assertNotContains(response, "psk_secret")


def test_an_empty_log_says_so(client, task, lead):
    client.force_login(lead)
    assertContains(client.get(audit_url(task)), "Nothing recorded yet")


def test_filter_by_action_and_unknown_values_show_everything(client, task, lead):
    audit_record(task=task, actor=lead, action=Action.VERDICT, target="a-verdict")
    audit_record(task=task, actor=lead, action=Action.ROLE_ADDED, target="a-role")
    client.force_login(lead)
    only_roles = client.get(audit_url(task, action="role_added"))
    assertContains(only_roles, "a-role")
    assertNotContains(only_roles, "a-verdict")
    for bad, before in (("nonsense", "x"), ("target__startswith", "-3"), ("'; drop table", "9" * 30)):
        response = client.get(audit_url(task, action=bad, before=before))
        assert response.status_code == 200
        assertContains(response, "a-role")
        assertContains(response, "a-verdict")
    assertContains(client.get(audit_url(task, action="import")), "No events of this action")


def test_user_text_is_escaped(client, task, lead):
    evil = UserFactory(username="<script>alert(1)</script>")
    MembershipFactory(task=task, user=evil, role=Role.REVIEWER)
    annotate_services.membership_add(task=task, user=evil, role=Role.ANNOTATOR, actor=evil)
    audit_record(
        task=task, actor=lead, action=Action.IMPORT, target="<b>file</b>.jsonl", detail={"<i>k": "<img src=x>"}
    )
    client.force_login(lead)
    response = client.get(audit_url(task))
    body = response.content.decode()
    for raw in ("<script>alert(1)</script>", "<b>file</b>", "<img src=x>", "<i>k"):
        assert raw not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "&lt;img src=x&gt;" in body
    assert "hx-disable" in body


def test_pages_go_back_in_time_by_keyset(client, task, lead):
    for i in range(60):
        audit_record(task=task, actor=lead, action=Action.VERDICT, target=f"target-{i:02d}")
    client.force_login(lead)
    first = client.get(audit_url(task))
    assert [e.target for e in first.context["page"].events][:2] == ["target-59", "target-58"]
    assert len(first.context["page"].events) == 50
    older = first.context["page"].older_than
    assertContains(first, f"before={older}")
    second = client.get(audit_url(task, before=older))
    assert [e.target for e in second.context["page"].events] == [f"target-{i:02d}" for i in range(9, -1, -1)]
    assert second.context["page"].older_than is None


@pytest.mark.parametrize("events", [0, 3, 120])
def test_page_query_count_does_not_grow_with_events(client, task, lead, django_assert_num_queries, events):
    actors = [UserFactory(username=f"actor{i}") for i in range(5)]
    for i in range(events):
        audit_record(task=task, actor=actors[i % 5], action=Action.VERDICT, target=f"t{i}", detail={"n": i})
    client.force_login(lead)
    # session, user, task, the lead's roles, one page of events with their actors
    with django_assert_num_queries(5):
        assert client.get(audit_url(task)).status_code == 200
    with django_assert_num_queries(5):
        assert client.get(audit_url(task, action="verdict", before=10_000)).status_code == 200


def test_task_page_links_the_log_for_leads_only(client, task, lead, reviewer):
    link = f'href="{audit_url(task)}"'
    client.force_login(lead)
    assertContains(client.get(task.get_absolute_url()), link)
    client.force_login(reviewer)
    assertNotContains(client.get(task.get_absolute_url()), link)


def test_targets_link_to_what_they_name_with_external_ids(client, task, lead, reviewer, django_assert_num_queries):
    named = ExampleFactory(task=task, external_id="seed_task_31")
    unnamed = ExampleFactory(task=task)
    audit_record(task=task, actor=reviewer, action=Action.VERDICT, target=str(named.uuid))
    audit_record(task=task, actor=reviewer, action=Action.VERDICT, target=str(unnamed.uuid))
    audit_record(task=task, actor=lead, action=Action.EXPORT_REQUESTED, target="v7")
    audit_record(task=task, actor=lead, action=Action.ROLE_ADDED, target="<nina>")
    client.force_login(lead)
    with django_assert_num_queries(6):  # the five of every page, and one for the examples the page names
        response = client.get(audit_url(task))
    timeline = reverse("reviews:example", args=[task.slug, named.uuid])
    assertContains(response, f'<a href="{timeline}" title="{named.uuid}" class="small">seed_task_31</a>', html=True)
    short = str(unnamed.uuid)[:8]
    assertContains(response, f'href="{reverse("reviews:example", args=[task.slug, unnamed.uuid])}"')
    assertContains(response, f"{short}…")
    assertContains(response, f'href="{reverse("exports:detail", args=[task.slug, 7])}"')
    assertContains(response, "&lt;nina&gt;")  # a username target links to the members page, escaped
    assertContains(response, f'href="{reverse("annotate:members", args=[task.slug])}"')
