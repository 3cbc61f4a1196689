# ruff: noqa: E501
"""The tools task's pages: the lead's tool set (validated, versioned, read from a file in the browser), the editor
with the tool list and builder data, the review page with readable calls, the diff of arguments and the tool reason
codes; roles and escaping as everywhere."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import services
from annotate.models import Example, Role, Task
from annotate.tools import completion_text
from tests.conftest import _member
from tests.tool_fixtures import RECORDS, TOOLS, jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def tool_task(tmp_path, other_task):
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    (tmp_path / "data.jsonl").write_bytes(jsonl(RECORDS))
    out = io.StringIO()
    call_command("create_task", "concierge", "--name", "Concierge", "--output-format", "tools", "--tools",
                 str(tmp_path / "tools.json"), stdout=out)  # fmt: skip
    call_command("import_examples", "concierge", str(tmp_path / "data.jsonl"), "--status", "submitted", stdout=out)
    return Task.objects.get(slug="concierge")


@pytest.fixture
def people(tool_task):
    return {
        "lead": _member(tool_task, "lena", Role.LEAD),
        "annotator": _member(tool_task, "anna", Role.ANNOTATOR),
        "reviewer": _member(tool_task, "rita", Role.REVIEWER),
    }


def test_lead_sees_the_tool_set_as_json_and_as_a_readable_list(client, tool_task, people):
    client.force_login(people["lead"])
    response = client.get(reverse("annotate:tools_edit", args=[tool_task.slug]))
    assertContains(response, "book_table")
    assertContains(response, "<code>party.adults</code>", html=False)
    assertContains(response, "&quot;celsius&quot;, &quot;fahrenheit&quot;")
    assertContains(response, "data-tools-file")


def test_a_bad_tool_set_is_refused_naming_the_function_and_nothing_changes(client, tool_task, people):
    client.force_login(people["lead"])
    bad = json.loads(json.dumps(TOOLS))
    bad[1]["function"]["parameters"]["properties"]["time"] = {"type": "strin"}
    before = tool_task.current_template.tools
    response = client.post(reverse("annotate:tools_edit", args=[tool_task.slug]), {"tools": json.dumps(bad)})
    assertContains(response, "tools[1] (function &quot;book_table&quot;): function.parameters: Not a valid JSON Schema")
    assert Task.objects.get(pk=tool_task.pk).current_template.tools == before
    response = client.post(reverse("annotate:tools_edit", args=[tool_task.slug]), {"tools": "[{"})
    assertContains(response, "The tool set is not valid JSON")


def test_saving_the_tool_set_makes_a_new_version_once_examples_use_it(client, tool_task, people):
    client.force_login(people["lead"])
    response = client.post(reverse("annotate:tools_edit", args=[tool_task.slug]),
                           {"tools": json.dumps(TOOLS[:3]), "parallel_tool_calls": ""}, follow=True)  # fmt: skip
    assertContains(response, "saved as template version 2")
    template = Task.objects.get(pk=tool_task.pk).current_template
    assert (template.version, json.loads(template.tools), template.parallel_tool_calls) == (2, TOOLS[:3], False)


@pytest.mark.parametrize(("who", "status"), [("annotator", 403), ("reviewer", 403), ("outsider", 404)])
def test_only_the_lead_edits_the_tool_set(client, tool_task, people, outsider, who, status):
    client.force_login(people.get(who) or outsider)
    assert client.get(reverse("annotate:tools_edit", args=[tool_task.slug])).status_code == status
    response = client.post(reverse("annotate:tools_edit", args=[tool_task.slug]), {"tools": "[]"})
    assert response.status_code == status
    assert json.loads(Task.objects.get(pk=tool_task.pk).current_template.tools) == TOOLS


def test_a_task_of_another_format_has_no_tool_set_page(client, task, lead):
    client.force_login(lead)
    assert client.get(reverse("annotate:tools_edit", args=[task.slug])).status_code == 404


def test_the_editor_shows_the_tools_and_hands_the_builder_its_tool_set(client, tool_task, people):
    example = Example.objects.order_by("id").last()
    Example.objects.filter(pk=example.pk).update(status="new", author=None)
    client.force_login(people["annotator"])
    response = client.post(reverse("annotate:work", args=[tool_task.slug]), follow=True)
    assertContains(response, 'id="tool-set"')
    assertContains(response, "data-tool-builder")
    assertContains(response, "tools_editor.js")
    assertContains(response, 'data-testid="tool-list"')
    assertContains(response, "get_weather(city=&quot;Lyon&quot;)")  # a prior call, readable
    assertContains(response, "answers call_e1")


def test_review_shows_calls_readably_the_argument_diff_and_tool_reasons(client, tool_task, people):
    example = Example.objects.order_by("id").first()  # Paris, celsius
    edited = completion_text(
        "", [{"id": "call_a1", "name": "get_weather", "arguments": '{"city": "Paris", "unit": "fahrenheit"}'}]
    )
    services_example_resubmit(example, edited, people["annotator"])
    client.force_login(people["reviewer"])
    response = client.get(reverse("reviews:review", args=[tool_task.slug, example.uuid]))
    assertContains(response, "get_weather(city=&quot;Paris&quot;, unit=&quot;fahrenheit&quot;)")
    assertContains(response, 'data-testid="tool-diff"')
    assertContains(response, "<code>get_weather.unit</code>", html=False)
    assertContains(response, "&quot;celsius&quot;")
    body = response.content.decode()
    assert body.index('value="wrong_tool"') < body.index('value="inaccurate"')
    for code in ("wrong_arguments", "should_not_call", "missing_call"):
        assertContains(response, f'value="{code}"')


def test_tool_reason_codes_are_not_offered_on_other_tasks(client, task, reviewer):
    from tests.exports.conftest import approve

    [example] = approve(task, 1, status=Example.Status.SUBMITTED)
    client.force_login(reviewer)
    response = client.get(reverse("reviews:review", args=[task.slug, example.uuid]))
    assert response.status_code == 200
    assertNotContains(response, 'value="wrong_tool"')


def test_user_text_in_calls_is_escaped(client, tool_task, people):
    example = Example.objects.order_by("id").first()
    hostile = completion_text(
        "<script>alert(1)</script>",
        [{"id": "c", "name": "get_weather", "arguments": '{"city": "<img src=x onerror=alert(1)>"}'}],
    )
    services_example_resubmit(example, hostile, people["annotator"])
    client.force_login(people["reviewer"])
    response = client.get(reverse("reviews:review", args=[tool_task.slug, example.uuid]))
    assertNotContains(response, "<img src=x")
    assertNotContains(response, "<script>alert(1)")
    assertContains(response, "&lt;img src=x onerror=alert(1)&gt;")


def services_example_resubmit(example, completion: str, annotator) -> None:
    """The annotator's edit of a submitted example, submitted again through the service (as the editor's submit)."""
    Example.objects.filter(pk=example.pk).update(author=annotator, status="draft")
    example.refresh_from_db()
    services.example_submit(example=example, user=annotator, completion=completion, kind=example.kind,
                            expected_version=example.version)  # fmt: skip


def test_the_lead_imports_a_tool_file_through_the_web_and_tools_keys_are_not_unstored(client, tmp_path, people):
    from django.core.files.uploadedfile import SimpleUploadedFile

    task = Task.objects.get(slug="concierge")
    Example.objects.all().delete()
    client.force_login(people["lead"])
    response = client.post(
        reverse("imports:upload", args=[task.slug]), {"file": SimpleUploadedFile("t.jsonl", jsonl(RECORDS))}
    )
    page = client.get(response.url)
    assertContains(page, "get_weather")  # the preview reads the records as the import will
    assertNotContains(page, "no field takes")
    response = client.post(
        response.url, {"map_0": "messages", "map_1": "", "map_2": "", "status": "approved", "action": "import"}
    )
    assert task.examples.count() == 6, response.content.decode()[:2000]


def test_the_review_edit_and_the_new_example_page_use_the_builder_with_the_right_tool_set(client, tool_task, people):
    """The reviewer's fix gets the tool set of the example's template version; a new example, the current one's."""
    example = Example.objects.order_by("id").first()
    services.template_save(task=tool_task, values={"tools": json.dumps(TOOLS[:2])})
    client.force_login(people["reviewer"])
    response = client.get(reverse("reviews:review", args=[tool_task.slug, example.uuid]))
    assertContains(response, 'data-tool-builder data-for="id_edit_completion"')
    assertContains(response, "tools_editor.js")
    assert response.context["tool_set"] == TOOLS
    tool_task.allow_new_examples = True
    tool_task.save(update_fields=["allow_new_examples"])
    client.force_login(people["annotator"])
    response = client.get(reverse("annotate:write_new", args=[tool_task.slug]))
    assertContains(response, 'data-tool-builder data-for="id_completion"')
    assertContains(response, 'id="tool-set"')
    assert response.context["tool_set"] == TOOLS[:2]


def test_a_refused_edit_comes_back_in_the_builder_with_what_the_reviewer_wrote(client, tool_task, people):
    """htmx swaps the decision form in again (tools_editor.js mounts builders that htmx loads): the text is kept."""
    example = Example.objects.order_by("id").first()
    client.force_login(people["reviewer"])
    mine = completion_text("", [{"id": "x", "name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    response = client.post(
        reverse("reviews:decide", args=[tool_task.slug, example.uuid]),
        {"decision": "edit", "version": example.version + 5, "completion": mine},
        headers={"HX-Request": "true"},
    )
    assertNotContains(response, "<html")
    assertContains(response, 'data-tool-builder data-for="id_edit_completion"')
    assertContains(response, "Oslo")
    assert Example.objects.get(pk=example.pk).completion == example.completion
