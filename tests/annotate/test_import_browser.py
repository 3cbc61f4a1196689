"""Real chromium: a lead uploads a CSV whose columns have other names, maps them, previews, imports."""

import re

import pytest
from playwright.sync_api import expect

from annotate.models import Example
from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = (
    "question,answer,type\n"
    'How do I reset the thermostat?,"Hold the button for ten seconds, then wait.",happy\n'
    "Can it run on 9V batteries?,No: it needs two AA batteries.,edge\n"
    "Write me a poem about tax law,,negative\n"
)


def test_lead_maps_csv_columns_previews_and_imports(page, screenshot, lead, task, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    path = tmp_path / "support-faq.csv"
    path.write_text(CSV)
    login(page, lead.username)

    page.goto(task.get_absolute_url())
    page.get_by_role("link", name="Import").click()
    page.get_by_label("File").set_input_files(str(path))
    page.get_by_role("button", name="Upload and preview").click()
    page.wait_for_url(re.compile(r"/import/[0-9a-f-]{36}/$"))
    expect(page.get_by_test_id("upload-name")).to_have_text("support-faq.csv")

    preview = page.get_by_test_id("preview-table")
    expect(preview).to_contain_text('field "instruction": missing')  # no column is named like a field
    page.get_by_label("question").select_option("instruction")  # htmx posts the mapping on change
    expect(preview).to_contain_text("How do I reset the thermostat?")
    page.get_by_label("answer").select_option("completion")
    page.get_by_label("type").select_option("kind")
    second = preview.locator("tbody tr").nth(1)
    expect(second).to_contain_text("No: it needs two AA batteries.")
    expect(second).to_contain_text("edge")
    assert Example.objects.count() == 0  # a preview stores nothing
    screenshot("mapping")

    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-summary")).to_have_text("Imported 3 examples (status new): 2 with completions.")
    screenshot("imported")
    page.get_by_role("link", name="Back to the task").click()
    counts = page.locator(".counts")
    expect(counts.locator("div", has_text="New").locator("dd")).to_have_text("3")
    expect(counts.locator("div", has_text="Total").locator("dd")).to_have_text("3")
    screenshot("task")
    assert sorted(task.examples.values_list("kind", flat=True)) == ["edge", "happy", "negative"]

    # A large import in flight: the job page shows a progress bar that follows the row.
    from annotate.importing import LISTING_PROBLEMS
    from annotate.models import ImportJob
    from pairsmith.jobs import JobState

    job = ImportJob.objects.create(task=task, filename="big <1>.jsonl", path="/nowhere", file_format="jsonl",
                                   size=100, state=JobState.RUNNING, progress=60, total=200)  # fmt: skip
    page.goto(f"/tasks/{task.slug}/imports/{job.pk}/")
    expect(page.locator("#import-job progress")).to_have_attribute("value", "30")
    expect(page.locator("#import-job")).to_contain_text("Checking and importing every record: 30%")
    ImportJob.objects.filter(pk=job.pk).update(progress=150)
    expect(page.locator("#import-job")).to_contain_text("every record: 75%", timeout=5_000)  # the next poll
    screenshot("job-running")
    ImportJob.objects.filter(pk=job.pk).update(progress=40, notice=LISTING_PROBLEMS)  # a bad record: rolled back
    expect(page.locator("#import-job")).to_contain_text(f"{LISTING_PROBLEMS} 20%", timeout=5_000)
    screenshot("job-listing-problems")
    ImportJob.objects.filter(pk=job.pk).update(state=JobState.FAILED, error='line 3, field "kind": unknown')
    expect(page.get_by_test_id("import-problems")).to_contain_text('line 3, field "kind": unknown', timeout=5_000)
    expect(page.locator("#import-job")).not_to_have_attribute("hx-trigger", "every 2s")
