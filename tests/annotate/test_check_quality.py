"""`manage.py check_quality SLUG [--json] [--fail-on CHECKS]`: the task-wide check, now, for people and pipelines."""

import io

import orjson
import pytest
from django.core.management import CommandError, call_command

from annotate.models import Example, QualityScan
from tests.factories import ExampleFactory, TaskFactory

pytestmark = pytest.mark.django_db
PROMPT = "How do I change the schedule on my thermostat so that it heats the living room earlier in the morning"


@pytest.fixture
def planted(task):
    """Two duplicates (one with an external id), a contradiction pair, and a clean example."""
    a = ExampleFactory(task=task, instruction=PROMPT, external_id="seed_task_1")
    b = ExampleFactory(task=task, instruction=PROMPT.upper() + "?!")
    yes = ExampleFactory(task=task, instruction="Is the T3 compatible with a heat pump?", status="approved",
                         completion="Yes, it is.")  # fmt: skip
    no = ExampleFactory(task=task, instruction="is the t3 compatible with a heat pump", status="approved",
                        completion="No, it is not.")  # fmt: skip
    clean = ExampleFactory(task=task, instruction="Where is my invoice for order 1042?")
    return {"a": a, "b": b, "yes": yes, "no": no, "clean": clean}


def run(*args) -> str:
    out = io.StringIO()
    call_command("check_quality", *args, stdout=out)
    return out.getvalue()


def test_text_output_counts_each_check_and_the_check_runs_now(task, planted):
    out = run(task.slug)
    assert out.startswith(f"Checked 5 examples of {task.slug}.")
    assert "duplicate" in out and "Duplicate prompt" in out
    lines = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()[1:] if line.startswith("  ")}
    assert lines["duplicate"] == 4 and lines["contradiction"] == 2  # yes/no share a prompt too
    assert QualityScan.objects.get(task=task).state == "succeeded"  # the dashboard gets these figures too
    assert ",duplicate," in Example.objects.get(pk=planted["a"].pk).warning_codes  # stored on the examples


def test_json_output_has_the_counts_and_every_warned_example(task, planted):
    data = orjson.loads(run(task.slug, "--json"))
    assert data["counts"]["duplicate"] == 4 and data["counts"]["contradiction"] == 2
    by_uuid = {item["uuid"]: item for item in data["examples"]}
    assert str(planted["clean"].uuid) not in by_uuid
    first = by_uuid[str(planted["a"].uuid)]
    assert first["external_id"] == "seed_task_1" and "duplicate" in first["checks"]
    assert "contradiction" in by_uuid[str(planted["no"].uuid)]["checks"]
    assert sum(len(item["checks"]) for item in data["examples"]) == sum(data["counts"].values())


def test_a_task_with_no_examples(task):
    assert run(task.slug).splitlines() == [
        f"Checked 0 examples of {task.slug}.",
        "No warnings: every example passed every check.",
    ]
    data = orjson.loads(run(task.slug, "--json"))
    assert (data["counts"], data["examples"]) == ({}, [])


def test_fail_on_makes_a_ci_gate(task, planted):
    with pytest.raises(SystemExit) as exit_:
        run(task.slug, "--fail-on", "contradiction")
    assert exit_.value.code == 1
    run(task.slug, "--fail-on", "leak,empty")  # none flagged: exit 0
    with pytest.raises(SystemExit):
        run(task.slug, "--fail-on", "any")


def test_bad_input_is_named_and_changes_nothing(task):
    with pytest.raises(CommandError, match="No task with slug 'nope'"):
        run("nope")
    with pytest.raises(CommandError, match="--fail-on: unknown check bogus"):
        run(task.slug, "--fail-on", "bogus,leak")
    assert not QualityScan.objects.exists()


def test_a_running_check_is_not_doubled(task):
    QualityScan.objects.create(task=task, state="running")
    with pytest.raises(CommandError, match="already running"):
        run(task.slug)
    assert QualityScan.objects.count() == 1
    other = TaskFactory(slug="other")
    assert run(other.slug).startswith("Checked 0 examples of other.")
