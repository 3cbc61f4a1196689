"""Real chromium on PostgreSQL: nothing typed is ever lost. Type and reload before the autosave (the leaving page's
beacon landing after the next page loaded), two tabs typing different texts, typing into an open conflict and closing
the tab, Back after a submit; then the database is asked whether every typed word is in a stored revision."""

import re
import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from annotate.models import Example, Revision
from tests.browser import login
from tests.conftest import ARTIFACTS, require_service
from tests.factories import ExampleFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres(db):
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "the save protocol's row locks are tested on PostgreSQL (set DATABASE_URL)")


def wait_until(check, what: str, budget: float = 15.0):
    """Poll the database until `check()` is truthy: a beacon is sent by a page that is gone, so no page element can
    say it arrived. The budget is generous; only a lost text exhausts it."""
    deadline = time.monotonic() + budget
    while (result := check()) is None or result is False:
        if time.monotonic() > deadline:
            pytest.fail(f"not stored within {budget:.0f} s: {what}")
        time.sleep(0.1)
    return result


def stored_texts(example) -> list[str]:
    return list(Revision.objects.filter(example=example).order_by("id").values_list("text", flat=True))


def assert_every_word_stored(example, typed: str) -> None:
    texts = stored_texts(example)
    missing = [word for word in typed.split() if not any(word in text for text in texts)]
    assert not missing, f"typed but in no revision: {missing}; revisions: {texts}"


class RowLock:
    """Holds the example's row lock in a connection of its own, as a long save would: every save of the example waits
    in PostgreSQL (in order of arrival) until it is released, while pages still load. This pins the order in which a
    leaving page's beacon and the next page's saves land, which otherwise depends on timing."""

    def __init__(self, example) -> None:
        import psycopg

        self.conn = psycopg.connect(**connection.get_connection_params())
        self.conn.execute("SELECT 1 FROM annotate_example WHERE id = %s FOR UPDATE", [example.pk])
        self.watcher = psycopg.connect(**connection.get_connection_params(), autocommit=True)

    def waiting(self) -> int:
        """How many requests wait for the lock now."""
        return self.watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()[0]

    def release(self) -> None:
        self.conn.commit()
        self.conn.close()
        self.watcher.close()


def shoot(tab, request, name: str) -> None:
    """A screenshot of a second tab (the `screenshot` fixture takes the first)."""
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{name}.png"), full_page=True)


def claim_and_open(page, task) -> Example:
    page.goto(f"/tasks/{task.slug}/annotate/")
    page.get_by_role("button", name="Start annotating").click()  # a GET claims nothing; the button does
    page.wait_for_url(re.compile(r"/edit/$"))
    return Example.objects.get(uuid=page.url.rstrip("/").split("/")[-2])


def test_reload_before_the_autosave_then_typing_on_conflicts_with_nothing_and_keeps_every_word(
    page, screenshot, task, annotator
):
    ExampleFactory(task=task, instruction="My thermostat blinks amber after the update. What now?")
    login(page, annotator.username)
    example = claim_and_open(page, task)
    box = page.locator("#id_completion")
    box.press_sequentially("Alpha bravo", delay=5)
    expect(page.locator("#save-status")).to_contain_text("version 2", timeout=8000)

    # Typed, and reloaded at once, before the autosave: the leaving page's beacon reaches the server and waits (the
    # row lock) while the next page loads version 2, then lands before that page's saves (the race of issue #13).
    lock = RowLock(example)
    try:
        box.press_sequentially(" charlie delta", delay=5)
        page.reload()
        wait_until(lambda: lock.waiting() >= 1, "the beacon of the page left")
        expect(page.locator("#id_completion")).to_have_value("Alpha bravo charlie delta")
        expect(page.locator("#save-status")).to_contain_text("Restored text you typed earlier")
        assert Example.objects.get(pk=example.pk).version == 2  # this page was read before the beacon landed
    finally:
        lock.release()
    page.locator("#id_completion").press_sequentially(" echo foxtrot", delay=5)
    # Version 3 is the beacon's; the restored text it already held changed nothing; the typing on is version 4.
    expect(page.locator("#save-status")).to_contain_text("version 4", timeout=8000)
    expect(page.locator("[data-conflict]")).to_have_count(0)
    screenshot("typed-on-after-reload")
    assert Example.objects.get(pk=example.pk).completion == "Alpha bravo charlie delta echo foxtrot"
    assert_every_word_stored(example, "Alpha bravo charlie delta echo foxtrot")
    assert not Revision.objects.filter(example=example, reason__in=Revision.ASIDE).exists()


def test_the_text_restored_after_a_reload_is_saved_without_typing_again(page, task, annotator):
    ExampleFactory(task=task, instruction="Can I move my Skylark to a new house?")
    login(page, annotator.username)
    example = claim_and_open(page, task)
    box = page.locator("#id_completion")
    box.press_sequentially("Yes, unplug it", delay=5)
    expect(page.locator("#save-status")).to_contain_text("version 2", timeout=8000)
    # Typed and reloaded before the autosave, and the leaving page's beacon never arrives: only the browser's
    # storage holds the text.
    page.evaluate("navigator.sendBeacon = () => true")
    box.press_sequentially(" first, then move it.", delay=5)
    page.reload()
    expect(page.locator("#id_completion")).to_have_value("Yes, unplug it first, then move it.")
    expect(page.locator("#save-status")).to_contain_text("Saved", timeout=8000)
    assert Example.objects.get(pk=example.pk).completion == "Yes, unplug it first, then move it."
    assert_every_word_stored(example, "Yes, unplug it first, then move it.")


def test_two_tabs_typing_different_texts_conflict_and_both_texts_are_stored(page, request, task, annotator):
    ExampleFactory(task=task, instruction="Does the Skylark work with solar panels?")
    login(page, annotator.username)
    example = claim_and_open(page, task)
    second = page.context.new_page()
    second.goto(page.url)

    page.locator("#id_completion").press_sequentially("Yes, through the inverter.", delay=5)
    expect(page.locator("#save-status")).to_contain_text("version 2", timeout=8000)
    second.locator("#id_completion").press_sequentially("Only with the solar kit.", delay=5)
    conflict = second.locator("[data-conflict]")
    expect(conflict).to_contain_text("Conflict: this example changed since you opened it", timeout=8000)
    expect(conflict).to_contain_text("You saved version 2 in another tab or window")
    expect(second.get_by_test_id("conflict-theirs")).to_have_text("Yes, through the inverter.")
    expect(conflict).to_contain_text("kept as a conflict copy")
    shoot(second, request, "second-tab-conflict")

    current = Example.objects.get(pk=example.pk)
    assert current.completion == "Yes, through the inverter."  # nothing overwritten
    assert Revision.objects.filter(example=example, reason="conflict", text="Only with the solar kit.").exists()
    assert_every_word_stored(example, "Yes, through the inverter. Only with the solar kit.")

    # Resolving only chooses which text is current: "Keep mine" in the second tab.
    second.get_by_role("button", name=re.compile("Keep mine")).click()
    expect(second.locator("#save-status")).to_contain_text("Saved", timeout=8000)
    assert Example.objects.get(pk=example.pk).completion == "Only with the solar kit."
    assert set(stored_texts(example)) == {"Yes, through the inverter.", "Only with the solar kit."}


def test_text_typed_into_an_open_conflict_is_stored_when_the_tab_is_closed(page, task, annotator):
    ExampleFactory(task=task, instruction="How long does the battery last?")
    login(page, annotator.username)
    example = claim_and_open(page, task)
    second = page.context.new_page()
    second.goto(page.url)
    page.locator("#id_completion").press_sequentially("About ten years.", delay=5)
    expect(page.locator("#save-status")).to_contain_text("version 2", timeout=8000)
    second.locator("#id_completion").press_sequentially("Roughly", delay=5)
    expect(second.locator("[data-conflict]")).to_be_visible(timeout=8000)

    # Typed on into the open conflict, chose neither text, and closed the tab before the next autosave.
    second.locator("#id_completion").press_sequentially(" a decade with daily use.", delay=5)
    second.close(run_before_unload=True)
    wait_until(
        lambda: Revision.objects.filter(example=example, text="Roughly a decade with daily use.").first(),
        "the text typed into the open conflict",
    )
    assert Example.objects.get(pk=example.pk).completion == "About ten years."
    assert_every_word_stored(example, "About ten years. Roughly a decade with daily use.")


def test_back_after_a_submit_shows_the_submitted_example_not_a_live_editor(page, screenshot, task, annotator):
    first = ExampleFactory(task=task, instruction="My thermostat blinks amber after the update. What now?")
    ExampleFactory(task=task, instruction="Can I move my Skylark to a new house?")
    login(page, annotator.username)
    claim_and_open(page, task)
    page.locator("#id_completion").press_sequentially("Hold the button for ten seconds.", delay=5)
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Submitted for review.")).to_be_visible()
    expect(page.locator("[data-field=instruction]")).to_have_text("Can I move my Skylark to a new house?")

    page.go_back()
    expect(page).to_have_url(re.compile(rf"/examples/{first.uuid}/edit/$"))
    expect(page.get_by_text("Submitted: waiting for review.")).to_be_visible()
    expect(page.locator("form#editor")).to_have_count(0)
    expect(page.locator("[data-submit]")).to_have_count(0)
    screenshot("back-after-submit")
    first.refresh_from_db()
    assert (first.status, first.completion) == ("submitted", "Hold the button for ten seconds.")
    assert_every_word_stored(first, "Hold the button for ten seconds.")


def test_an_older_save_answering_while_newer_typing_waits_never_shows_saved(page, task, annotator):
    """The race of the tab test (test_browser_annotate): an autosave of "Yes, th" is in flight, the annotator types
    on and the page queues a save of "Yes, through" behind it. When the older save answers, the status must not say
    "Saved" (the box holds text the server does not have) until the newer save is stored. The row lock holds the
    first save, so the order is pinned; every text the status shows is recorded as it is swapped in."""
    ExampleFactory(task=task, instruction="Does the Skylark work with solar panels?")
    login(page, annotator.username)
    example = claim_and_open(page, task)
    box = page.locator("#id_completion")
    page.evaluate(
        """() => {
            window.statuses = [];
            new MutationObserver(() => {
                const status = document.getElementById("save-status");
                if (status) window.statuses.push(status.textContent.trim());
            }).observe(document.body, {childList: true, subtree: true, characterData: true});
        }"""
    )
    hide = (
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    show = hide.replace("'hidden'", "'visible'")
    lock = RowLock(example)
    try:
        box.press_sequentially("Yes, th", delay=5)
        page.evaluate(hide)  # saved at once: this save waits for the row lock
        wait_until(lambda: lock.waiting() >= 1, "the first save reaching the database")
        page.evaluate(show)
        box.press_sequentially("rough", delay=5)
        page.evaluate(hide)  # queued behind the first (hx-sync "queue last")
    finally:
        lock.release()
    expect(page.locator("#save-status")).to_contain_text("version 3", timeout=8000)
    statuses = page.evaluate("window.statuses")
    assert any("Changes since version 2" in text for text in statuses), statuses
    assert not any(text.startswith("Saved") and "version 2" in text for text in statuses), statuses
    expect(page.locator("#save-status")).to_have_class(re.compile(r"\bok\b"))
    assert Example.objects.get(pk=example.pk).completion == "Yes, through"
    assert stored_texts(example)[-1] == "Yes, through"  # autosaves of one editor share a revision (revisions.py)
