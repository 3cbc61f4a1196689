"""Real chromium: the lead sets how many export versions the task keeps, sees the pruned one, and deletes another by
hand through the confirmation."""

import pytest
from playwright.sync_api import expect

from exports.models import Export
from tests.browser import login

from .conftest import approve, build, version_folder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_lead_sets_the_versions_kept_and_deletes_a_version(page, screenshot, task, lead):
    approve(task, 8)
    login(page, "leo")
    page.goto(f"/tasks/{task.slug}/settings/")
    page.get_by_label("Export versions kept").fill("2")
    screenshot("settings")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Task settings saved.")).to_be_visible()

    for _ in range(3):
        build(task, user=lead)  # in this process, outside any test transaction: v1 is pruned after v3 commits
    assert not version_folder(Export.objects.get(task=task, version=1)).exists()

    page.goto(f"/tasks/{task.slug}/exports/")
    expect(page.get_by_test_id("retention")).to_contain_text("This task keeps its 2 newest succeeded versions")
    first = page.locator("#export-1")
    expect(first.get_by_test_id("export-deleted")).to_contain_text("older than the 2 newest versions this task keeps")
    expect(first.get_by_role("link", name="train.jsonl")).to_have_count(0)
    second = page.locator("#export-2")
    second.get_by_text("Delete…").click()
    expect(second.get_by_text("Delete the files of v2 for good?")).to_be_visible()
    screenshot("confirm")
    second.get_by_role("button", name="Delete v2").click()

    expect(page.get_by_text("Export v2 deleted: its files are gone; its number is not reused.")).to_be_visible()
    expect(page.locator("#export-2").get_by_test_id("export-deleted")).to_contain_text("Deleted by leo")
    expect(page.locator("#export-3").get_by_role("link", name="train.jsonl")).to_be_visible()
    screenshot("deleted")
    second_row = Export.objects.get(task=task, version=2)
    assert second_row.deletion == Export.Deletion.DELETED and not version_folder(second_row).exists()
    assert page.request.get(f"/tasks/{task.slug}/exports/v2/files/train.jsonl").status == 404
