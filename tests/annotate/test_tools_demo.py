"""The demo's tool-calling task: written by the project, valid by the task's own checks, idempotent, and it exports."""

import io

import orjson
import pytest
from django.core.management import call_command

from annotate import quality
from annotate.models import Example, Task
from annotate.tools import completion_parts
from exports import services

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_a_tool_calling_task_that_passes_its_checks_and_exports(tmp_path):
    out = io.StringIO()
    call_command("seed_demo", "--quiet-accounts", stdout=out)
    assert "Created demo task 'skylark-tools'" in out.getvalue()
    task = Task.objects.get(slug="skylark-tools")
    examples = list(task.examples.all())
    assert len(examples) >= 20
    for example in examples:
        found = quality.check_example(task, instruction=example.instruction, messages=example.messages,
                                      completion=example.completion)  # fmt: skip
        assert found == [], (example.external_id, found)
    finals = {e.external_id: completion_parts(e.completion) for e in examples}
    assert len(finals["tools-parallel-1"][1]) == 2  # a parallel call
    assert any(m.get("role") == "tool" for m in Example.objects.get(external_id="tools-trajectory-3").messages)
    refusals = [e for e in examples if e.kind == "negative"]
    assert refusals and all(not finals[e.external_id][1] for e in refusals)  # refused without calling
    assert set(task.memberships.values_list("user__username", flat=True)) == {"annotator", "reviewer", "lead"}
    counts = (Example.objects.count(), Task.objects.count())
    call_command("seed_demo", "--quiet-accounts", stdout=io.StringIO())
    assert (Example.objects.count(), Task.objects.count()) == counts

    from tests.exports.conftest import build

    for export_format in ("openai-chat", "messages", "sharegpt"):
        export = build(task, export_format=export_format, validation_ratio=0)
        assert export.state == "succeeded", export.error
        lines = (services.export_dir(export) / "train.jsonl").read_bytes().splitlines()
        assert len(lines) == task.examples.filter(status="approved").count()
        assert all(services.record_problem(export_format, orjson.loads(line)) is None for line in lines)
