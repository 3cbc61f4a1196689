"""The save protocol: a tab's own saves never conflict, someone else's do, every text sent is in a revision, and
autosaves coalesce under a cap without touching what mattered (conflict copies, the text before a submit)."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from annotate import revisions, services
from annotate.models import Example, Revision
from reviews import services as review_services
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
AUTOSAVE = Revision.Reason.AUTOSAVE


@pytest.fixture
def held(task, annotator):
    """An example the annotator holds, not written yet (version 1)."""
    ExampleFactory(task=task, instruction="My thermostat blinks amber. What now?")
    return services.example_claim_next(task=task, user=annotator)


def save(example, user, text, *, base, client="tab-a", seq=None, reason=AUTOSAVE, kind="happy"):
    return services.example_save(
        example=example, user=user, completion=text, kind=kind, expected_version=base, reason=reason, client=client,
        seq=seq,
    )  # fmt: skip


def rows(example):
    """(text, reason, example_version) of every revision, oldest first."""
    return list(example.revisions.order_by("id").values_list("text", "reason", "example_version"))


def test_a_save_whose_base_was_overtaken_by_the_same_tab_is_no_conflict(held, annotator):
    # Page 1 of the tab saved (version 2) and its beacon from the reload landed (version 3) after page 2 had read
    # version 2; page 2's next save carries base 2 and a later number: accepted, nothing refused.
    save(held, annotator, "Hold the button", base=1, seq=1, reason="save")
    save(held, annotator, "Hold the button for ten", base=2, seq=2, reason="save")
    saved = save(held, annotator, "Hold the button for ten seconds.", base=2, seq=3, reason="save", kind="edge")
    assert (saved.version, saved.completion, saved.kind) == (4, "Hold the button for ten seconds.", "edge")
    assert [r[1] for r in rows(held)] == ["save", "save", "save"]


def test_a_late_save_of_the_same_tab_is_kept_aside_and_the_later_text_stays_current(held, annotator):
    # Page 2's first save (number 3) landed before page 1's beacon (number 2, base 1, an older text).
    save(held, annotator, "Hold the button for ten seconds.", base=1, seq=3)
    stays = save(held, annotator, "Hold the butt", base=1, seq=2)
    assert (stays.version, stays.completion) == (2, "Hold the button for ten seconds.")
    assert Example.objects.get(pk=held.pk).completion == "Hold the button for ten seconds."
    assert rows(held) == [("Hold the button for ten seconds.", "autosave", 2), ("Hold the butt", "late", 1)]
    # The same late text again, or one equal to the current text, adds nothing.
    save(held, annotator, "Hold the butt", base=1, seq=2)
    save(held, annotator, "Hold the button for ten seconds.", base=1, seq=1)
    assert len(rows(held)) == 2


def test_two_tabs_with_different_texts_conflict_and_both_texts_are_revisions(held, annotator):
    save(held, annotator, "Alpha from tab A", base=1, client="tab-a", seq=1)
    with pytest.raises(services.StaleVersion) as refused:
        save(held, annotator, "Beta from tab B", base=1, client="tab-b", seq=2)
    assert refused.value.by == annotator and refused.value.copy.text == "Beta from tab B"
    assert Example.objects.get(pk=held.pk).completion == "Alpha from tab A"
    assert rows(held) == [("Alpha from tab A", "autosave", 2), ("Beta from tab B", "conflict", 1)]
    # Resolving only chooses which text is current: "Keep mine" saves over version 2, both rows stay.
    kept = save(held, annotator, "Beta from tab B", base=2, client="tab-b", seq=3, reason="save")
    assert kept.completion == "Beta from tab B" and len(rows(held)) == 3


def test_a_save_without_editor_id_is_judged_by_its_version_alone(held, annotator):
    save(held, annotator, "One", base=1, client="", seq=None)
    with pytest.raises(services.StaleVersion):
        save(held, annotator, "Two", base=1, client="", seq=None)
    with pytest.raises(services.StaleVersion):  # an editor id without a number proves no order either
        save(held, annotator, "Three", base=1, client="tab-a", seq=None)
    assert Example.objects.get(pk=held.pk).completion == "One"
    assert [r[1] for r in rows(held)] == ["autosave", "conflict", "conflict"]


def test_typing_on_in_an_open_conflict_keeps_the_first_copy_and_updates_one_more(held, annotator):
    save(held, annotator, "Alpha", base=1, client="tab-a", seq=1)
    texts = ["Beta", "Beta two", "Beta two three", "Beta two three four"]
    for seq, text in enumerate(texts, start=2):
        with pytest.raises(services.StaleVersion):
            save(held, annotator, text, base=1, client="tab-b", seq=seq)
    copies = list(held.revisions.filter(reason="conflict").order_by("id").values_list("text", "replaceable"))
    assert copies == [("Beta", False), ("Beta two three four", True)]
    # An explicit save in the conflict is a new copy, kept as it was; autosaves after it start another.
    for seq, (text, reason) in enumerate([("Beta five", "save"), ("Beta six", AUTOSAVE)], start=10):
        with pytest.raises(services.StaleVersion):
            save(held, annotator, text, base=1, client="tab-b", seq=seq, reason=reason)
    texts = list(held.revisions.filter(reason="conflict").order_by("id").values_list("text", flat=True))
    assert texts == ["Beta", "Beta two three four", "Beta five", "Beta six"]


def test_a_reviewers_edit_meanwhile_is_a_conflict_and_the_annotators_text_is_kept(task, held, annotator, reviewer):
    save(held, annotator, "Try turning it off", base=1, seq=1)
    submitted = services.example_submit(
        example=held, user=annotator, completion="Try turning it off", kind="happy", expected_version=2,
        client="tab-a", seq=2,
    )  # fmt: skip
    review_services.verdict_record(
        example=submitted, reviewer=reviewer, decision="approve", version=submitted.version,
        completion="Hold the round button for ten seconds.",
    )  # fmt: skip
    # A second tab of the annotator, still open on the draft, autosaves on version 2.
    with pytest.raises(services.StaleVersion) as refused:
        save(held, annotator, "Try turning it off and on", base=2, client="tab-b", seq=3)
    assert refused.value.by == reviewer
    current = Example.objects.get(pk=held.pk)
    assert (current.status, current.completion) == ("approved", "Hold the round button for ten seconds.")
    assert held.revisions.filter(reason="conflict", text="Try turning it off and on", author=annotator).exists()
    # The same tab's own later save does not pass over the reviewer's edit either.
    with pytest.raises(services.StaleVersion):
        save(held, annotator, "Try turning it off and on again", base=3, client="tab-a", seq=4)


def test_a_submit_sent_while_an_autosave_is_in_flight_is_no_conflict(held, annotator):
    save(held, annotator, "Hold the button", base=1, seq=1)  # version 2, answered
    save(held, annotator, "Hold the button for ten", base=2, seq=2)  # version 3, answer not read yet
    done = services.example_submit(
        example=held, user=annotator, completion="Hold the button for ten seconds.", kind="happy",
        expected_version=2, client="tab-a", seq=3,
    )  # fmt: skip
    assert (done.status, done.completion) == ("submitted", "Hold the button for ten seconds.")
    # The text before the submit stays as it was: the autosave was not updated by the submit.
    assert [r[:2] for r in rows(held)] == [
        ("Hold the button for ten", "autosave"),
        ("Hold the button for ten seconds.", "submit"),
    ]


def test_a_save_to_a_submitted_example_from_another_tab_is_kept_aside(held, annotator):
    services.example_submit(example=held, user=annotator, completion="Final.", kind="happy", expected_version=1)
    done = Example.objects.get(pk=held.pk)
    with pytest.raises(services.KeptAside, match="submitted and cannot be edited now. Your text is kept"):
        save(held, annotator, "Final, with more.", base=done.version, client="tab-b", seq=5)
    assert Example.objects.get(pk=held.pk).completion == "Final."
    assert held.revisions.filter(reason="conflict", text="Final, with more.").exists()


def test_a_refused_submit_keeps_its_text_aside_its_own_transaction_does_not_take_it_back(held, annotator):
    from django.db import transaction

    save(held, annotator, "Alpha", base=1, client="tab-a", seq=1)
    with pytest.raises(services.StaleVersion), transaction.atomic():
        save(held, annotator, "Beta", base=1, client="tab-b", seq=2)
    with pytest.raises(services.StaleVersion):  # and through a submit, whose own transaction does not take it back
        services.example_submit(
            example=held, user=annotator, completion="Gamma", kind="happy", expected_version=1, client="tab-c", seq=3
        )
    assert [r[0] for r in rows(held) if r[1] == "conflict"] == ["Gamma"]  # the caller's rollback took Beta back


def test_another_annotators_save_stores_nothing(task, held, annotator):
    from tests.annotate.test_claim_and_save import annotator_of

    save(held, annotator, "Mine", base=1, seq=1)
    other = annotator_of(task, "bob")
    for base in (1, 2):
        with pytest.raises(ValidationError, match="another annotator's work"):
            save(held, other, "Theirs", base=base, client="tab-x", seq=9)
    assert not held.revisions.filter(author=other).exists()


def test_autosaves_of_one_tab_coalesce_within_the_window_and_explicit_saves_and_submits_stay(held, annotator):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        save(held, annotator, "H", base=1, seq=1)
        save(held, annotator, "Ho", base=2, seq=2)
        save(held, annotator, "Hol", base=3, seq=3)
        assert rows(held) == [("Hol", "autosave", 4)]  # one row, updated in place, at the latest version
        save(held, annotator, "Hold", base=4, seq=4, reason="save")  # explicit: a new row
        save(held, annotator, "Hold i", base=5, seq=5)  # after it: a new autosave row
        save(held, annotator, "Hold it", base=6, seq=6, client="tab-b")  # another tab: a new row
        clock.shift(revisions.AUTOSAVE_COALESCE + timedelta(seconds=1))
        save(held, annotator, "Hold it.", base=7, seq=7, client="tab-b")  # past the window: a new row
        services.example_submit(
            example=held, user=annotator, completion="Hold it. Done", kind="happy", expected_version=8,
            client="tab-b", seq=8,
        )  # fmt: skip
    assert rows(held) == [
        ("Hol", "autosave", 4),
        ("Hold", "save", 5),
        ("Hold i", "autosave", 6),
        ("Hold it", "autosave", 7),
        ("Hold it.", "autosave", 8),
        ("Hold it. Done", "submit", 9),
    ]


def test_past_the_cap_a_tabs_autosaves_update_its_last_one_whatever_their_age(held, annotator, monkeypatch):
    monkeypatch.setattr(revisions, "MAX_AUTOSAVE_REVISIONS", 5)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for n in range(1, 41):  # forty autosaves, each past the coalescing window
            save(held, annotator, f"draft {n}", base=n, seq=n)
            clock.shift(revisions.AUTOSAVE_COALESCE * 2)
    autosaves = list(held.revisions.filter(reason=AUTOSAVE).order_by("id").values_list("text", flat=True))
    assert autosaves == ["draft 1", "draft 2", "draft 3", "draft 4", "draft 40"]
    assert Example.objects.get(pk=held.pk).completion == "draft 40"


def test_a_verdict_is_on_the_submitted_text_never_on_a_copy_kept_aside(held, annotator, reviewer):
    services.example_submit(
        example=held, user=annotator, completion="Submitted text", kind="happy", expected_version=1,
        client="tab-a", seq=1,
    )  # fmt: skip
    with pytest.raises(services.KeptAside):  # another tab's autosave lands after the submit
        save(held, annotator, "Text from another tab", base=1, client="tab-b", seq=2)
    current = Example.objects.get(pk=held.pk)
    verdict = review_services.verdict_record(example=current, reviewer=reviewer, decision="approve", version=3)
    assert (verdict.revision.reason, verdict.revision.text) == ("submit", "Submitted text")


# --- the save view --------------------------------------------------------------------------------------------

HTMX = {"HX-Request": "true"}


def post_save(http, task, example, **data):
    url = reverse("annotate:save", args=[task.slug, example.uuid])
    return http.post(url, {"kind": "happy", "autosave": "1", **data}, headers=HTMX)


def test_the_save_answer_names_the_number_it_stored_for_saves_and_conflict_copies(client, task, held, annotator):
    client.force_login(annotator)
    saved = post_save(client, task, held, completion="Alpha", version=1, client="tab-a", seq=7)
    assertContains(saved, 'data-stored-seq="7"')
    conflict = post_save(client, task, held, completion="Beta", version=1, client="tab-b", seq=8)
    assertContains(conflict, 'data-stored-seq="8"')
    assertContains(conflict, "You saved version 2 in another tab or window")
    assert held.revisions.filter(reason="conflict", text="Beta").exists()


def test_a_bad_editor_id_or_number_is_refused_by_name_and_stores_nothing(client, task, held, annotator):
    client.force_login(annotator)
    bad = post_save(client, task, held, completion="Alpha", version=1, client="<script>", seq=1)
    assertContains(bad, "Not an editor id: 1 to 40 letters, digits")
    assertNotContains(bad, "data-stored-seq")
    negative = post_save(client, task, held, completion="Alpha", version=1, client="tab-a", seq=-1)
    assertContains(negative, "seq: Ensure this value is greater than or equal to 0.")
    assert not Revision.objects.exists()


@pytest.mark.parametrize("name", ["annotate:edit", "annotate:write_new", "reviews:next", "login"])
def test_pages_with_editable_state_are_never_stored_by_the_browser(client, task, held, annotator, reviewer, name):
    user = reviewer if name.startswith("reviews") else annotator
    client.force_login(user)
    args = {"annotate:edit": [task.slug, held.uuid], "login": []}.get(name, [task.slug])
    response = client.get(reverse(name, args=args), follow=True)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
