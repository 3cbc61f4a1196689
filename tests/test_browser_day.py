"""Real chromium: a day of a lead, an annotator and a reviewer on the pages issue #13 changed, each looked at 1400
and 1024 px wide (screenshots in test-artifacts/): the task form, flagged work, the examples browser and timeline,
the dashboard's live and dated figures, and moving examples to the current template."""

import re

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from annotate.models import Example, Task
from annotate.services import template_save
from reviews import services as review_services
from tests.browser import login, logout
from tests.factories import ExampleFactory
from tests.reviews.conftest import submit_new

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = (1400, 1024)


def shoot(page, screenshot, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(f"{name}-{width}")
        # nothing may widen the page beyond the window (a wide table scrolls inside its card)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} overflows at {width} px"


def test_the_task_form_proposes_a_slug_and_shows_only_the_fields_of_its_format(page, screenshot, lead):
    login(page, lead.username)
    page.goto("/tasks/new/")
    page.get_by_label("Name", exact=True).fill("Refund replies (Été 2026)")
    expect(page.get_by_label("Slug")).to_have_value("refund-replies-ete-2026")
    page.get_by_label("Output format").select_option("label")
    expect(page.get_by_label("Labels")).to_be_visible()
    expect(page.get_by_label("JSON Schema")).to_be_hidden()
    page.get_by_label("Output format").select_option("json")
    expect(page.get_by_label("JSON Schema")).to_be_visible()
    expect(page.get_by_label("Labels")).to_be_hidden()
    page.get_by_label("Slug").fill("refunds")  # the lead's own slug stays
    page.get_by_label("Name", exact=True).fill("Refund replies")
    expect(page.get_by_label("Slug")).to_have_value("refunds")
    shoot(page, screenshot, "task-form")
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r"/tasks/refunds/template/"))
    assert Task.objects.get(slug="refunds").output_format == "json"


def test_flagged_work_is_shown_first_to_its_annotator(page, screenshot, task, annotator, reviewer):
    example = submit_new(task, annotator, "Yes.", instruction="Can I move my thermostat to a new house?")
    review_services.verdict_record(
        example=example, reviewer=reviewer, decision="flag", version=example.version, reasons=["unclear"],
        comment="Say how: unpair it first.",
    )  # fmt: skip
    ExampleFactory(task=task, instruction="A new prompt")
    login(page, annotator.username)
    badge = page.get_by_test_id("flagged-badge")
    expect(badge).to_have_text("1 flagged back")
    page.goto(f"/tasks/{task.slug}/")
    expect(page.get_by_test_id("flagged-notice")).to_contain_text("1 of your examples was flagged back")
    shoot(page, screenshot, "task-flagged")
    badge.click()
    expect(page.get_by_text("Say how: unpair it first.")).to_be_visible()
    shoot(page, screenshot, "my-work-flagged")


@override_settings(CELERY_TASK_ALWAYS_EAGER=True)
def test_a_lead_browses_examples_reads_the_dashboard_and_moves_examples_to_the_new_template(
    page, screenshot, task, lead, annotator, reviewer, inline_celery
):
    for i in range(3):
        ExampleFactory(task=task, instruction=f"Where is order {i}? " + "It was due last week. " * 8,
                       external_id=f"seed_task_{30 + i}")  # fmt: skip
    example = submit_new(task, annotator, "It ships today.", instruction="When does my order ship?")
    review_services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=example.version)
    template_save(
        task=task, values={"prompt_format": "### Customer message:\n{instruction}\n\n### Reply:\n"}, user=lead
    )

    login(page, lead.username)
    page.goto(f"/tasks/{task.slug}/examples/")
    page.get_by_test_id("search").fill("seed_task_31")
    page.get_by_test_id("search").press("Enter")
    expect(page.locator("tr[data-example]")).to_have_count(1)
    shoot(page, screenshot, "examples-search")
    page.get_by_role("link", name="seed_task_31").click()
    expect(page.get_by_test_id("timeline")).to_be_visible()
    expect(page.get_by_text("Where is order 1?")).to_be_visible()

    page.goto(f"/tasks/{task.slug}/dashboard/")
    expect(page.get_by_test_id("live-reviewed")).to_have_text("1")
    expect(page.get_by_test_id("verdicts")).to_have_text("—")
    shoot(page, screenshot, "dashboard-before-check")
    page.get_by_role("button", name="Check the whole task now").click()
    expect(page.get_by_test_id("verdicts")).to_have_text("1")
    expect(page.locator(".pill.snapshot").first).to_contain_text("as of ")
    shoot(page, screenshot, "dashboard-after-check")

    page.goto(f"/tasks/{task.slug}/template/")
    page.get_by_role("link", name=re.compile("Preview moving them")).click()
    expect(page.get_by_role("heading", name=re.compile(r"Version 1: 4 examples"))).to_be_visible()
    shoot(page, screenshot, "template-move-preview")
    page.get_by_role("button", name=re.compile("Move 4 examples")).click()
    expect(page.get_by_test_id("move-done")).to_have_text("Moved 4 examples to template version 2.")
    shoot(page, screenshot, "template-move-done")
    assert set(Example.objects.filter(task=task).values_list("template__version", flat=True)) == {2}
    logout(page)


def test_autosave_and_feedback_cause_no_content_security_policy_violation(page, task, annotator):
    ExampleFactory(task=task, instruction="Does the Skylark work with solar panels?")
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'Content Security Policy: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    login(page, annotator.username)
    page.goto(f"/tasks/{task.slug}/annotate/")
    page.get_by_role("button", name="Start annotating").click()
    page.locator("#id_completion").press_sequentially("Yes, through the battery inverter.", delay=5)
    expect(page.locator("#save-status")).to_contain_text("Saved", timeout=8000)
    page.keyboard.press("Alt+2")  # the kind: another autosave and a feedback round
    expect(page.locator("#save-status")).to_contain_text("version 3", timeout=8000)
    assert violations == []
