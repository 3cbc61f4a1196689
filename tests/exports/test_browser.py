"""Real chromium and a real worker: the lead starts an export, watches its progress bar, downloads train.jsonl."""

import re

import pytest
from playwright.sync_api import expect

from annotate.models import Example
from exports.services import split_of
from tests.browser import login
from tests.conftest import redis_available

from .conftest import approve, read_lines
from .test_build import expected_records

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_lead_starts_an_export_watches_progress_and_downloads_train(
    page, screenshot, task, lead, worker_factory, tmp_path
):
    redis_available()
    from pairsmith.celery import app

    approved = approve(task, 300)
    approve(task, 20, start=1000, status=Example.Status.SUBMITTED)  # not exported
    worker = worker_factory()
    worker.start(PAIRSMITH_EXPORT_THROTTLE="0.012")  # ~4 s: long enough to watch the bar move
    worker.wait_ready(app)

    login(page, "leo", "pw-for-tests-1")
    page.goto(f"/tasks/{task.slug}/")
    page.get_by_role("link", name="Exports").click()
    page.get_by_label("Format").select_option("openai-chat")
    page.get_by_label("Validation share").fill("0.2")
    page.get_by_role("button", name="Start export").click()

    card = page.locator("#export-1")
    expect(card.get_by_test_id("export-state")).to_have_text(re.compile("Queued|Running"))
    progress = card.locator("progress")
    expect(progress).to_have_attribute("value", re.compile(r"^[1-9][0-9]*$"), timeout=15_000)  # moved on a poll
    expect(card.get_by_test_id("export-progress")).to_contain_text("of 300 records")
    screenshot("progress")
    expect(card.get_by_test_id("export-state")).to_have_text("Succeeded", timeout=30_000)
    expect(progress).to_have_count(0)
    screenshot("done")

    with page.expect_download() as download:
        card.get_by_role("link", name="train.jsonl").click()
    path = tmp_path / "train.jsonl"
    download.value.save_as(path)
    train = [e for e in approved if split_of(seed=task.split_seed, uuid=str(e.uuid), ratio=0.2) == "train"]
    assert read_lines(path) == expected_records(train, "openai-chat")
    assert len(train) > 200
