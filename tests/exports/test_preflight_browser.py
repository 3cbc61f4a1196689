"""Real chromium and a real worker: the lead sets the tokenizer for the trainer preflight, picks the format, the test
share and the maximum length, and sees the exact token figures, the over-length list and the contamination warning."""

import pytest
from playwright.sync_api import expect

from exports.models import Export, TaskTokenizer
from tests.browser import login
from tests.conftest import ARTIFACTS, redis_available

from .conftest import approve
from .small_tokenizer import UNMARKED, config_json, tokenizer_json

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_lead_uploads_a_tokenizer_exports_and_sees_preflight_and_contamination(
    page, screenshot, task, lead, worker_factory
):
    redis_available()
    from pairsmith.celery import app

    approve(task, 40)
    approve(task, 30, start=100, instruction="Where is my parcel?")  # one prompt, many times: it leaks into train
    approve(task, 2, start=200, completion="It arrives in 5 days. " * 30)  # longer than the maximum length
    ARTIFACTS.mkdir(exist_ok=True)
    tokenizer_path = ARTIFACTS / "tokenizer.json"
    tokenizer_path.write_bytes(tokenizer_json())
    config_path = ARTIFACTS / "tokenizer_config.json"
    config_path.write_bytes(config_json(UNMARKED))
    worker = worker_factory()
    worker.start()
    worker.wait_ready(app)

    login(page, "leo", "pw-for-tests-1")
    page.goto(f"/tasks/{task.slug}/exports/")
    expect(page.get_by_test_id("tokenizer-unset")).to_contain_text("token counts in Pairsmith are estimates")
    # A broken file first: the error names it, nothing is set.
    bad = ARTIFACTS / "broken-tokenizer.json"
    bad.write_bytes(b"{not a tokenizer")
    page.get_by_label("tokenizer.json").set_input_files(str(bad))
    page.get_by_label("tokenizer_config.json").set_input_files(str(config_path))
    page.get_by_role("button", name="Set tokenizer").click()
    expect(page.locator("#tokenizer")).to_contain_text("tokenizer.json could not be read as a tokenizer")
    assert not TaskTokenizer.objects.filter(task=task).exists()
    page.get_by_label("tokenizer.json").set_input_files(str(tokenizer_path))
    page.get_by_label("tokenizer_config.json").set_input_files(str(config_path))
    page.get_by_role("button", name="Set tokenizer").click()
    expect(page.get_by_test_id("tokenizer-set")).to_contain_text("tiny/word-level")
    expect(page.get_by_test_id("tokenizer-mask-warning")).to_be_visible()

    page.get_by_label("Format").select_option("messages")
    page.get_by_label("Validation share").fill("0.1")
    page.get_by_label("Test share").fill("0.2")
    page.get_by_label("Maximum length").fill("100")
    screenshot("form")
    page.get_by_role("button", name="Start export").click()

    card = page.locator("#export-1")
    expect(card.get_by_test_id("export-state")).to_have_text("Succeeded", timeout=30_000)
    export = Export.objects.get(task=task)
    assert (export.format, export.test_ratio, export.max_length) == ("messages", 0.2, 100)
    report = export.preflight
    for split in ("train", "validation", "test"):
        row = card.get_by_test_id(f"preflight-{split}")
        expect(row).to_contain_text(f"{report['splits'][split]['tokens']}")
    assert report["over_length"] == 2
    over = card.get_by_test_id("preflight-over")
    expect(over).to_contain_text("2 examples longer than 100 tokens")
    first = report["over_length_examples"][0]
    link = over.get_by_role("link", name=f"Example {first['id']}")
    expect(link).to_have_attribute("href", f"/tasks/{task.slug}/examples/{first['uuid']}/")
    expect(card.get_by_test_id("preflight-mask-warning")).to_contain_text("no {% generation %} markers")
    expect(card.get_by_test_id("preflight-trained")).to_contain_text(f"of the {report['tokens']} tokens")
    warning = card.get_by_test_id("contamination")
    expect(warning).to_contain_text("train examples repeat a validation or test")
    assert export.contamination["exact"] > 0
    screenshot("preflight")
    link.click()
    page.wait_for_url(f"**/tasks/{task.slug}/examples/{first['uuid']}/")
    expect(page.get_by_text("It arrives in 5 days.").first).to_be_visible()
