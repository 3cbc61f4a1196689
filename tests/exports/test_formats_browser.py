"""Real chromium and a real worker: the lead picks a format and a test share, and sees the contamination warning."""

import pytest
from playwright.sync_api import expect

from exports.models import Export
from tests.browser import login
from tests.conftest import redis_available

from .conftest import approve

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_lead_exports_sharegpt_with_a_test_share_and_sees_the_contamination_warning(
    page, screenshot, task, lead, worker_factory
):
    redis_available()
    from pairsmith.celery import app

    approve(task, 40)
    approve(task, 40, start=100, instruction="Where is my parcel?")  # one prompt, many times: it leaks into train
    worker = worker_factory()
    worker.start()
    worker.wait_ready(app)

    login(page, "leo", "pw-for-tests-1")
    page.goto(f"/tasks/{task.slug}/exports/")
    page.get_by_label("Format").select_option("sharegpt")
    page.get_by_label("Validation share").fill("0.1")
    page.get_by_label("Test share").fill("0.2")
    screenshot("form")
    page.get_by_role("button", name="Start export").click()

    card = page.locator("#export-1")
    expect(card.get_by_test_id("export-state")).to_have_text("Succeeded", timeout=30_000)
    export = Export.objects.get(task=task)
    assert (export.format, export.test_ratio) == ("sharegpt", 0.2)
    expect(card.get_by_test_id("test-count")).to_have_text(str(export.counts["test"]))
    warning = card.get_by_test_id("contamination")
    expect(warning).to_contain_text(f"{export.contamination['exact']} train examples repeat a validation or test")
    expect(card.get_by_role("link", name="dataset_info.json")).to_be_visible()
    expect(card.get_by_role("link", name="test.jsonl")).to_be_visible()
    assert export.contamination["exact"] > 0
    screenshot("contamination")
