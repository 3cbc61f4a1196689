"""Real chromium: the comparison screen (blind random order recorded, keyboard first, both bad with a better text,
a split in a lead's triage) and the path from a reviewer's edit to an exported preference pair."""

import re

import orjson
import pytest
from playwright.sync_api import expect

from annotate.models import Example, Role
from preferences.models import Comparison, Judgement, PreferencePair
from tests.browser import login, logout
from tests.conftest import _member
from tests.reviews.conftest import submit_new

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _comparison(task, n: int, a: str, b: str) -> Comparison:
    return Comparison.objects.create(
        task=task, template=task.current_template, instruction=f"Question {n}: where is my parcel?",
        candidate_a=a, candidate_b=b, external_id=f"cmp-{n}",
    )  # fmt: skip


def _press_for(page, wanted: str) -> str:
    """The key that picks the candidate whose text is `wanted`, as the screen shows it now."""
    return "a" if page.get_by_test_id("candidate-a").inner_text() == wanted else "b"


def test_comparisons_blind_keyboard_agreement_and_triage(page, screenshot, task, reviewer, lead, inline_celery):
    task.approvals_required = 2
    task.save()
    second = _member(task, "sam", Role.REVIEWER)
    agreed = _comparison(task, 1, "It arrives tomorrow by courier.", "Dunno.")
    split = _comparison(task, 2, "Check the tracking page.", "It is lost <b>forever</b>.")

    login(page, reviewer.username)
    page.goto(f"/tasks/{task.slug}/")
    page.get_by_role("link", name="Compare").click()
    page.wait_for_url(re.compile(r"/compare/$"))
    expect(page.get_by_test_id("prompt")).to_have_text("Question 1: where is my parcel?")
    expect(page.get_by_test_id("waiting")).to_have_text("2")
    shown_left = page.get_by_test_id("candidate-a").inner_text()
    screenshot("compare")
    page.keyboard.press("1")  # A, whichever candidate that is
    page.keyboard.press("q")  # reason: more accurate
    expect(page.locator("[data-side=left]")).to_have_class(re.compile("picked"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Judgement saved.")).to_be_visible()
    judgement = Judgement.objects.get(comparison=agreed)
    assert agreed.candidate(judgement.left) == shown_left  # the blind order recorded: what was on the left
    assert judgement.choice == judgement.left and judgement.reasons == ["accurate"]

    expect(page.get_by_test_id("prompt")).to_have_text("Question 2: where is my parcel?")
    expect(page.get_by_test_id("candidate-b").or_(page.get_by_test_id("candidate-a")).first).to_be_visible()
    assert page.locator("b").count() == 0  # the candidate's markup is shown as text
    page.keyboard.press("x")  # both bad: the better text, focused at once
    expect(page.locator("#id_better")).to_be_focused()
    page.keyboard.type("Your parcel is at the depot; it arrives on Monday.")
    screenshot("compare-both-bad")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("nothing-to-compare")).to_be_visible()
    assert Comparison.objects.get(pk=split.pk).state == "open"  # two judgements needed
    logout(page)

    login(page, second.username)
    page.goto(f"/tasks/{task.slug}/compare/")
    page.keyboard.press(_press_for(page, agreed.candidate(judgement.left)))  # agrees
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("prompt")).to_have_text("Question 2: where is my parcel?")
    page.keyboard.press(_press_for(page, split.candidate_a))  # disagrees: candidate A, not both bad
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("nothing-to-compare")).to_be_visible()
    assert Comparison.objects.get(pk=agreed.pk).state == "decided"
    assert Comparison.objects.get(pk=split.pk).state == "split"
    logout(page)

    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/pairs/")
    expect(page.get_by_test_id("pair-total")).to_have_text("1")
    agreement = page.get_by_test_id("agreement")
    expect(agreement.locator("tr", has_text="sam")).to_contain_text("50%")
    screenshot("pairs")
    page.get_by_role("link", name=re.compile("Triage")).click()
    card = page.locator(f"[data-comparison='{split.uuid}']")
    expect(card.get_by_test_id("judgement")).to_have_count(2)
    expect(card).to_contain_text("It is lost <b>forever</b>.")
    screenshot("triage")
    card.get_by_label("A is better").check()
    card.get_by_role("button", name="Decide").click()
    expect(page.get_by_text("Decided; its pairs are made.")).to_be_visible()
    expect(page.get_by_test_id("triage-empty")).to_be_visible()
    pair = PreferencePair.objects.get(comparison=split)
    assert (pair.chosen, pair.rejected) == ("Check the tracking page.", "It is lost <b>forever</b>.")


def test_the_order_is_random_per_showing(client, task, reviewer):
    _comparison(task, 1, "One.", "Two.")
    client.force_login(reviewer)
    lefts = {client.get(f"/tasks/{task.slug}/compare/").context["left"] for _ in range(30)}
    assert lefts == {"a", "b"}  # both orders within 30 showings (a miss has odds of 2 in a billion)


def test_a_reviewers_edit_becomes_an_exported_pair(page, screenshot, task, annotator, reviewer, lead, inline_celery,
                                                   tmp_path):  # fmt: skip
    example = submit_new(task, annotator, "Restart it.", instruction="My thermostat blinks amber. What now?")
    login(page, reviewer.username)
    page.goto(f"/tasks/{task.slug}/review/")
    page.get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(re.compile(rf"/review/{example.uuid}/"))
    page.keyboard.press("e")
    fixed = "Hold the round button for ten seconds; it restarts and shows green."
    page.locator("#id_edit_completion").fill(fixed)
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Edited and approved “My thermostat blinks amber. What now?”.")).to_be_visible()
    assert Example.objects.get(pk=example.pk).status == "approved"
    logout(page)

    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/exports/")
    page.get_by_label("Format").select_option("trl-preference")
    page.get_by_label("Validation share").fill("0")
    page.get_by_test_id("preference-options").locator("summary").click()
    page.get_by_label("Pairs from reviewers' edits").check()
    page.get_by_label("Least change of an edit").fill("0.3")
    screenshot("export-options")
    page.get_by_role("button", name="Start export").click()
    card = page.locator("#export-1")
    expect(card.get_by_test_id("export-state")).to_have_text("Succeeded", timeout=30_000)
    with page.expect_download() as download:
        card.get_by_role("link", name="train.jsonl").click()
    path = tmp_path / "train.jsonl"
    download.value.save_as(path)
    (record,) = [orjson.loads(line) for line in path.read_bytes().split(b"\n") if line]
    assert record == {
        "prompt": [{"role": "user", "content": "My thermostat blinks amber. What now?"}],
        "chosen": [{"role": "assistant", "content": fixed}],
        "rejected": [{"role": "assistant", "content": "Restart it."}],
    }
    page.goto(f"/tasks/{task.slug}/pairs/")
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Reviewer's edit")
    expect(row).to_contain_text("Restart it.")
    screenshot("pairs-from-edit")


def test_the_changes_of_a_pair_export_lead_to_the_pair(page, screenshot, task, lead, inline_celery, tmp_path):
    from annotate.importing import examples_import
    from tests.exports.conftest import build

    from .test_export import trl
    from .test_import import jsonl

    examples_import(task=task, path=jsonl(tmp_path, [trl(i) for i in range(3)]), file_format="jsonl",
                    status="approved")  # fmt: skip
    build(task, export_format="trl-preference", user=lead, validation_ratio=0)
    changed = PreferencePair.objects.order_by("id").first()
    changed.chosen, changed.external_id = "A better answer.", "parcel-1"
    changed.save()
    build(task, export_format="trl-preference", user=lead, validation_ratio=0)
    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/exports/v2/")
    expect(page.get_by_role("columnheader", name="Pair")).to_be_visible()
    screenshot("changes")
    page.get_by_role("link", name="parcel-1").click()
    page.wait_for_url(re.compile(rf"/pairs/\?pair={changed.uuid}$"))
    expect(page.locator("tr[data-pair]")).to_have_count(1)
    expect(page.get_by_test_id("one-pair")).to_be_visible()
    screenshot("one-pair")
