"""Trainer preflight of a tools task: each example goes through the chat template with `tools=` (the tool set of its
template version) and its calls and results in the shape transformers documents for apply_chat_template, so a tool
template renders what the trainer will see, and the counts are those of that text."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from tokenizers import Tokenizer

from annotate.models import Example, Role, Task
from annotate.rendering import TemplateSpec
from exports import preflight
from exports.chat_template import ChatTemplate
from tests.factories import MembershipFactory, UserFactory
from tests.tool_fixtures import RECORDS, TOOLS, function, jsonl

from .conftest import build
from .small_tokenizer import TOOLS_TEMPLATE, config_json, rendered_tools, tokenizer_json
from .test_preflight import set_tokenizer

pytestmark = pytest.mark.django_db


def tools_task(tmp_path, records=RECORDS, status="approved") -> Task:
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    (tmp_path / "data.jsonl").write_bytes(jsonl(records))
    out = io.StringIO()
    call_command("create_task", "concierge", "--name", "C", "--output-format", "tools", "--tools",
                 str(tmp_path / "tools.json"), stdout=out)  # fmt: skip
    call_command("import_examples", "concierge", str(tmp_path / "data.jsonl"), "--status", status, stdout=out)
    return Task.objects.get(slug="concierge")


def rendered_by_preflight(example: Example) -> str:
    spec = TemplateSpec.of(example.template)
    messages, tools = preflight.conversation(spec)(example.prompt_fields(), example.completion, example.messages)
    text, _ = ChatTemplate(TOOLS_TEMPLATE, json.loads(config_json(TOOLS_TEMPLATE))).render(messages, tools=tools)
    return text


def test_each_tool_example_renders_with_its_tools_calls_and_results_as_a_tool_template_reads_them(tmp_path):
    task = tools_task(tmp_path)
    examples = {e.external_id or e.instruction: e for e in task.examples.select_related("template")}
    assert len(examples) == len(RECORDS)
    for record in RECORDS:
        user = next(m["content"] for m in record["messages"] if m["role"] == "user")
        example = next(e for e in examples.values() if user in (e.instruction, *(m.get("content") for m in e.messages)))
        text, _ = rendered_tools(record)
        assert rendered_by_preflight(example) == text


def test_the_export_preflight_counts_the_text_rendered_with_the_tools(tmp_path, lead):
    task = tools_task(tmp_path)
    set_tokenizer(task, TOOLS_TEMPLATE)
    export = build(task, export_format="openai-chat", user=lead, validation_ratio=0)
    assert export.state == "succeeded", export.error  # the template raises when no tools are passed
    tokenizer = Tokenizer.from_str(tokenizer_json().decode())
    tokens = trained = 0
    for record in RECORDS:
        text, parts = rendered_tools(record)
        tokens += len(tokenizer.encode(text, add_special_tokens=False).ids)
        trained += sum(len(tokenizer.encode(part, add_special_tokens=False).ids) for part in parts)
    report = export.preflight
    assert report["splits"]["train"]["examples"] == len(RECORDS)
    assert (report["tokens"], report["trained_tokens"]) == (tokens, trained)


def test_a_newer_template_version_passes_its_own_tool_set(tmp_path):
    task = tools_task(tmp_path)
    example = task.examples.select_related("template").first()
    template = example.template
    template.pk = None
    template.version += 1
    extra = function("cancel_order", "Cancel an order.", {"order": {"type": "string"}}, ["order"])
    template.tools = json.dumps([*TOOLS, extra])
    template.save()
    example.template = template
    assert "cancel_order" in rendered_by_preflight(example)


def test_the_editors_exact_count_renders_a_tool_example_with_its_tools(tmp_path, client):
    record = RECORDS[2]  # system, a call, its result, the final answer
    task = tools_task(tmp_path, records=[record], status="new")
    annotator = UserFactory(username="anna")
    MembershipFactory(task=task, user=annotator, role=Role.ANNOTATOR)
    set_tokenizer(task, TOOLS_TEMPLATE)  # it raises when no tools are passed
    client.force_login(annotator)
    assert client.post(reverse("annotate:work", args=[task.slug])).status_code == 302
    example = Example.objects.get(task=task)
    response = client.post(
        reverse("annotate:feedback", args=[task.slug, example.uuid]),
        {"completion": example.completion},
        headers={"HX-Request": "true"},
    )
    tokenizer = Tokenizer.from_str(tokenizer_json().decode())
    text, _ = rendered_tools(record)
    whole = len(tokenizer.encode(text, add_special_tokens=False).ids)
    assert f"({whole} with the prompt, tiny/word-level)" in response.text
    assert "≈" not in response.text


def test_without_generation_markers_the_calls_count_as_trained_from_the_name_to_the_arguments(tmp_path, lead):
    task = tools_task(tmp_path)
    set_tokenizer(task, TOOLS_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", ""))
    export = build(task, export_format="openai-chat", user=lead, validation_ratio=0)
    assert export.state == "succeeded", export.error
    tokenizer = Tokenizer.from_str(tokenizer_json().decode())

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    # Read independently from the imported records: each answer's text, and each call's "name {arguments}".
    trained = 0
    for record in RECORDS:
        for message in record["messages"]:
            if message["role"] != "assistant":
                continue
            trained += count(message.get("content") or "")
            for c in message.get("tool_calls", []):
                arguments = json.dumps(json.loads(c["function"]["arguments"]), ensure_ascii=False)
                trained += count(f"{c['function']['name']} {arguments}")
    report = export.preflight
    assert report["masks_prompt"] is False and report["warning"]
    assert report["trained_tokens"] == trained
