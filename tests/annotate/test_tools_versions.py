# ruff: noqa: E501
"""The tool set is versioned with the template: an example is checked against the tools of its own template version
(inline feedback, save and submit, the task-wide scan), not against the task's current ones. Version 2 here drops
send_message and makes get_weather require a country: a version 1 example calling send_message, or get_weather
with a city alone, is fine; a version 2 example doing the same is not."""

import copy
import json

import pytest
from django.urls import reverse

from annotate import quality, services
from annotate.models import Example, Role
from annotate.scans import example_warnings
from annotate.tools import completion_text
from tests.conftest import _member
from tests.tool_fixtures import TOOLS

from .test_scans import run_scan

pytestmark = pytest.mark.django_db

PRIOR = [
    {"role": "user", "content": "Text Ana the weather in Lyon."},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": '{"city": "Lyon"}'}]},
    {"role": "tool", "tool_call_id": "c1", "content": "18 °C"},
]  # fmt: skip
OLD_CALL = completion_text(
    "", [{"id": "c2", "name": "send_message", "arguments": '{"to": "Ana", "text": "Lyon 18 °C"}'}]
)


def tools_v2() -> list:
    """Version 2 of the tool set: send_message removed, get_weather's parameters changed (country required)."""
    tools = copy.deepcopy([t for t in TOOLS if t["function"]["name"] != "send_message"])
    weather = tools[0]["function"]["parameters"]
    weather["properties"]["country"] = {"type": "string"}
    weather["required"] = ["city", "country"]
    return tools


@pytest.fixture(autouse=True)
def _inline(inline_celery):
    pass


@pytest.fixture
def versions(db):
    """A tools task whose template v1 (the four functions) is used by examples, and v2 (the changed tool set)."""
    task = services.task_create(slug="concierge", name="Concierge", output_format="tools", tools=TOOLS)
    lead = _member(task, "lena", Role.LEAD)
    annotator = _member(task, "anna", Role.ANNOTATOR)
    v1 = task.current_template
    old = services.example_create(task=task, fields={"instruction": "Text Ana the weather in Lyon."},
                                  messages=PRIOR, external_id="old")  # fmt: skip
    v2 = services.template_save(task=task, values={"tools": json.dumps(tools_v2())}, user=lead)
    assert (v1.version, v2.version) == (1, 2)
    new = services.example_create(task=task, fields={"instruction": "Text Ana the weather in Lyon."},
                                  messages=PRIOR, external_id="new")  # fmt: skip
    assert (old.template_id, new.template_id) == (v1.pk, v2.pk)
    return {"task": task, "lead": lead, "annotator": annotator, "old": old, "new": new}


def _codes(found) -> list[str]:
    return sorted({(f.code if hasattr(f, "code") else f["code"]) for f in found})


def test_an_example_is_checked_against_the_tools_of_its_template_version(versions):
    task, old, new = versions["task"], versions["old"], versions["new"]
    assert _codes(example_warnings(old, completion=OLD_CALL)["warnings"]) == []
    found = example_warnings(new, completion=OLD_CALL)["warnings"]
    assert _codes(found) == ["tool_arguments", "unknown_tool"]
    messages = " ".join(w["message"] for w in found)
    assert "the final turn calls “send_message”" in messages
    assert "get_weather" in messages and "'country' is a required property" in messages
    # the library itself: the template named, its tools used; none named, the task's current ones
    assert (
        quality.check_example(task, template=old.template, instruction="x", messages=PRIOR, completion=OLD_CALL) == []
    )
    assert _codes(quality.check_example(task, instruction="x", messages=PRIOR, completion=OLD_CALL)) == [
        "tool_arguments", "unknown_tool",
    ]  # fmt: skip


def test_inline_feedback_uses_the_examples_template_version(client, versions):
    annotator = versions["annotator"]
    client.force_login(annotator)
    for example in (versions["old"], versions["new"]):
        Example.objects.filter(pk=example.pk).update(status="draft", author=annotator)
    url = lambda example: reverse("annotate:feedback", args=["concierge", example.uuid])  # noqa: E731
    response = client.post(url(versions["old"]), {"completion": OLD_CALL})
    assert "does not define" not in response.content.decode()
    assert "not valid" not in response.content.decode()
    response = client.post(url(versions["new"]), {"completion": OLD_CALL})
    assert "A call names a function the tool set does not define" in response.content.decode()


def test_submit_with_blocking_tool_checks_takes_the_old_call_and_refuses_the_new(versions):
    task, annotator = versions["task"], versions["annotator"]
    task.blocking_checks = ["unknown_tool", "tool_arguments"]
    task.save(update_fields=["blocking_checks"])
    for example in (versions["old"], versions["new"]):
        Example.objects.filter(pk=example.pk).update(status="draft", author=annotator)
        example.refresh_from_db()
    old, new = (Example.objects.get(pk=versions[k].pk) for k in ("old", "new"))
    submitted = services.example_submit(example=old, user=annotator, completion=OLD_CALL, kind="happy",
                                        expected_version=old.version)  # fmt: skip
    assert submitted.status == "submitted" and submitted.warning_codes == ""
    with pytest.raises(Exception, match="Fix these before submitting") as refused:
        services.example_submit(example=new, user=annotator, completion=OLD_CALL, kind="happy",
                                expected_version=new.version)  # fmt: skip
    assert "send_message" in str(refused.value)
    assert Example.objects.get(pk=new.pk).status == "draft"


def test_the_task_scan_checks_each_example_against_its_versions_tools(versions, django_capture_on_commit_callbacks):
    task = versions["task"]
    for key in ("old", "new"):
        Example.objects.filter(pk=versions[key].pk).update(status="approved", completion=OLD_CALL)
    scan = run_scan(task, versions["lead"], django_capture_on_commit_callbacks)
    old, new = (Example.objects.get(pk=versions[k].pk) for k in ("old", "new"))
    assert "unknown_tool" not in old.warning_codes and "tool_arguments" not in old.warning_codes
    assert ",tool_arguments," in new.warning_codes and ",unknown_tool," in new.warning_codes
    # coverage is the current tool set's: send_message is no longer one to cover, book_table is
    assert set(scan.report["totals"]["tools"]["tool_calls"]) == {"get_weather", "book_table", "list_orders"}
    coverage = [f["detail"]["function"] for f in scan.report["task_findings"] if f["code"] == "tool_coverage"]
    assert coverage == ["book_table", "list_orders"]
