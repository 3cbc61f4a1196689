"""Real chromium: a lead imports a file of nested records (`instances: [{input, output}]`) with paths, after the page
has listed the keys it would not store and refused to commit until the lead chose what to do with them."""

import json
import re

import pytest
from playwright.sync_api import expect

from annotate.models import Example, ImportJob
from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Seed tasks, shaped as instruction-tuning seed files are: one instance each, some without an input.
RECORDS = [
    {
        "id": "seed_task_0",
        "name": "breakfast_suggestion <b>",
        "instruction": "Is there anything I can eat for a breakfast that doesn't include eggs?",
        "instances": [{"input": "", "output": "Yes: oatmeal, fruit with yogurt, or toast with peanut butter."}],
        "is_classification": False,
    },
    {
        "id": "seed_task_1",
        "name": "antonym_relation",
        "instruction": "What is the relation between the given pairs?",
        "instances": [{"input": "Night : Day :: Right : Left", "output": "The words in the pairs are antonyms."}],
        "is_classification": False,
    },
    {
        "id": "seed_task_2",
        "name": "one_sentence_description",
        "instruction": "Generate a one-sentence description for each of the following people.",
        "instances": [{"input": "- Brack Obama\n- Elon Musk", "output": "Barack Obama was the 44th president."}],
        "is_classification": True,
    },
]


@pytest.fixture
def seed_file(tmp_path):
    path = tmp_path / "seed_tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


def open_mapping(page, task, path) -> None:
    page.goto(f"/tasks/{task.slug}/import/")
    page.get_by_label("File").set_input_files(str(path))
    page.get_by_role("button", name="Upload and preview").click()
    page.wait_for_url(re.compile(r"/import/[0-9a-f-]{36}/$"))


def test_lead_imports_nested_records_with_paths_and_keeps_the_rest_as_metadata(
    page, screenshot, lead, task, settings, tmp_path, seed_file
):
    settings.VAR_DIR = tmp_path / "var"
    login(page, lead.username)
    open_mapping(page, task, seed_file)

    unstored = page.get_by_test_id("unstored")
    expect(unstored).to_contain_text("instances")
    page.get_by_label("Completion (or output), from the path").fill("instances[0].output")
    page.get_by_label("Input, from the path").fill("instances[0].input")
    page.get_by_label("Input, from the path").blur()  # "change": htmx redraws the preview and the picks
    picks = page.get_by_test_id("picks-completion")
    expect(picks).to_contain_text("line 1: Yes: oatmeal, fruit with yogurt")
    expect(picks).to_contain_text("line 2: The words in the pairs are antonyms.")
    expect(page.get_by_test_id("picks-input")).to_contain_text("line 2: Night : Day :: Right : Left")
    expect(page.get_by_test_id("picks-input")).to_contain_text("line 1: (nothing)")
    preview = page.get_by_test_id("preview-table")
    expect(preview.locator("tbody tr").nth(1)).to_contain_text("The words in the pairs are antonyms.")
    expect(preview.locator("tbody tr").nth(1)).to_contain_text("Night : Day :: Right : Left")
    # Every key the paths now take is gone from the list; the two left are named.
    expect(unstored.locator("tbody tr")).to_have_count(2)
    expect(unstored).to_contain_text("name")
    expect(unstored).to_contain_text("is_classification")
    expect(unstored).not_to_contain_text("instances")
    page.get_by_label("Keep them on each example as metadata").check()
    expect(page.get_by_label("Keep them on each example as metadata")).to_be_checked()  # kept through the redraw
    screenshot("nested-mapping")
    assert Example.objects.count() == 0

    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-summary")).to_have_text("Imported 3 examples (status new): 3 with completions.")
    expect(page.get_by_test_id("import-kept")).to_have_text("Kept on each example as metadata: is_classification, name")
    screenshot("nested-imported")
    example = Example.objects.get(external_id="seed_task_1")
    assert (example.input, example.completion) == (
        "Night : Day :: Right : Left",
        "The words in the pairs are antonyms.",
    )
    assert example.metadata == {"name": "antonym_relation", "is_classification": False}

    first = Example.objects.get(external_id="seed_task_0")
    page.goto(f"/tasks/{task.slug}/examples/{first.uuid}/")
    metadata = page.get_by_test_id("example-metadata")
    expect(metadata).to_contain_text("breakfast_suggestion <b>")  # text, not markup
    expect(metadata.locator("b")).to_have_count(0)
    expect(metadata).to_contain_text("false")
    screenshot("example-metadata")


def test_the_unstored_keys_are_listed_and_the_import_waits_until_they_are_confirmed(
    page, screenshot, lead, task, settings, tmp_path, seed_file
):
    settings.VAR_DIR = tmp_path / "var"
    login(page, lead.username)
    open_mapping(page, task, seed_file)

    unstored = page.get_by_test_id("unstored")
    for key in ("name", "instances", "is_classification"):
        expect(unstored.locator("code", has_text=re.compile(f"^{key}$"))).to_have_count(1)
    expect(unstored.locator("tbody tr").first).to_contain_text("3")  # in all 3 records
    page.get_by_label("Completion (or output), from the path").fill("instances[0].output")
    page.get_by_label("Completion (or output), from the path").blur()
    expect(unstored).to_contain_text("instances[0].input")  # the part of instances no path takes
    screenshot("unstored-listed")

    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text(
        "These keys would not be stored: name, instances, is_classification."
    )
    assert Example.objects.count() == 0 and ImportJob.objects.count() == 0
    screenshot("refused-until-confirmed")

    page.get_by_label("Drop them: they are not imported").check()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-summary")).to_have_text("Imported 3 examples (status new): 3 with completions.")
    expect(page.locator("#import-job")).to_contain_text(
        "Ignored keys (no matching field): instances, is_classification, name"
    )
    assert sorted(Example.objects.values_list("input", flat=True)) == ["", "", ""]  # dropped, as confirmed
    assert Example.objects.get(external_id="seed_task_2").completion == "Barack Obama was the 44th president."
