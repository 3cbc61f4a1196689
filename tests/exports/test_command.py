"""`manage.py export_dataset`: the stable command-line interface of exports."""

import json
from hashlib import sha256
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from kombu.exceptions import OperationalError

from exports.models import Export
from exports.tasks import export_build_task
from pairsmith.jobs import QUEUE_UNREACHABLE

from .conftest import approve, stored_bytes

pytestmark = pytest.mark.django_db
# The tests that run an export need their transaction committed: the job is sent after commit, as in production.
committed = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inline_celery(settings):
    """Run the job inline, as without REDIS_URL, even when the suite runs against a real Redis."""
    from pairsmith.celery import app

    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


def run(*args) -> str:
    out = StringIO()
    call_command("export_dataset", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@committed
def test_wait_json_prints_one_object_with_paths_checksums_and_counts(task, inline_celery):
    approve(task, 20)
    summary = json.loads(run(task.slug, "--format", "openai-chat", "--validation-ratio", "0.25", "--wait", "--json"))
    assert set(summary) == {"version", "state", "files", "sha256", "counts"}
    assert summary["version"] == 1 and summary["state"] == "succeeded"
    assert set(summary["files"]) == {"train", "validation", "manifest", "card"}
    for key, path in summary["files"].items():
        assert sha256(stored_bytes(path)).hexdigest() == summary["sha256"][key]
    assert Path(summary["files"]["train"]).name == "train.jsonl"
    assert Path(summary["files"]["card"]).name == "README.md"
    assert summary["counts"]["total"] == 20
    assert Export.objects.get().validation_ratio == 0.25


@committed
def test_plain_output_says_what_it_did(task, inline_celery):
    approve(task, 5)
    out = run(task.slug, "--format", "alpaca", "--wait")
    assert "Export v1 of support (alpaca, validation ratio 0.1) succeeded." in out
    assert "Wrote " in out and "/support/v1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--format", "alpaca"], "No task with slug 'nope'."),
        (["support", "--format", "csv"], "argument --format: invalid choice: 'csv'"),
        (["support"], "the following arguments are required: --format"),
        (["support", "--format", "alpaca", "--validation-ratio", "abc"], "--validation-ratio 'abc' is not a number"),
        (["support", "--format", "alpaca", "--validation-ratio", "1"], "must be at least 0 and below 1, not 1."),
        (["support", "--format", "alpaca", "--validation-ratio", "-0.2"], "must be at least 0 and below 1"),
        (["support", "--format", "alpaca", "--validation-ratio", "nan"], "must be at least 0 and below 1"),
    ],
)
def test_bad_input_is_a_command_error_and_changes_nothing(task, inline_celery, args, message):
    approve(task, 3)
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(*args)
    assert not Export.objects.exists()


def test_nothing_approved_is_a_clear_error(task, inline_celery):
    with pytest.raises(CommandError, match="Nothing to export: no approved examples yet."):
        run(task.slug, "--format", "alpaca")
    assert not Export.objects.exists()


@committed
def test_wait_on_a_failing_export_exits_non_zero_with_the_reason(task, inline_celery):
    approve(task, 2, completion="")
    with pytest.raises(CommandError, match=r"Export v1 failed: 2 records failed the format checks"):
        run(task.slug, "--format", "prompt-completion", "--wait")


@committed
def test_queue_unreachable_leaves_it_queued_with_the_notice(task, monkeypatch):
    approve(task, 2)

    def unreachable(**kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(export_build_task, "apply_async", unreachable)
    out = run(task.slug, "--format", "alpaca")
    assert "Export v1 of support (alpaca, validation ratio 0.1) queued." in out and QUEUE_UNREACHABLE in out
    summary = json.loads(run(task.slug, "--format", "alpaca", "--json"))
    assert summary["state"] == "queued" and summary["sha256"] == {} and summary["version"] == 2


@committed
def test_test_ratio_writes_test_jsonl_and_json_names_it(task, inline_celery):
    approve(task, 60)
    out = run(task.slug, "--format", "sharegpt", "--validation-ratio", "0.1", "--test-ratio", "0.2", "--wait")
    export = Export.objects.get()
    assert "(sharegpt, validation ratio 0.1, test ratio 0.2) queued." in out or "test ratio 0.2) succeeded." in out
    assert f"{export.counts['test']} test records to" in out and export.counts["test"] > 0
    summary = json.loads(run(task.slug, "--format", "sharegpt", "--test-ratio", "0.2", "--wait", "--json"))
    assert set(summary["files"]) == {"train", "validation", "test", "manifest", "card", "dataset_info"}
    assert Path(summary["files"]["test"]).name == "test.jsonl"
    assert sha256(stored_bytes(summary["files"]["test"])).hexdigest() == summary["sha256"]["test"]
    assert summary["counts"]["test"] == export.counts["test"]  # the same examples held out in v2 as in v1


@committed
def test_contamination_is_a_warning_in_the_plain_output(task, inline_celery):
    approve(task, 40, instruction="Where is my parcel?")  # every prompt the same: held-out ones repeat in train
    out = run(task.slug, "--format", "messages", "--test-ratio", "0.2", "--wait")
    export = Export.objects.get()
    assert export.contamination["exact"] == export.counts["train"] > 0
    assert f"Warning: {export.counts['train']} exact and 0 near duplicate(s) of validation or test prompts" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--test-ratio", "x"], "--test-ratio 'x' is not a number"),
        (["--test-ratio", "1"], "--test-ratio must be at least 0 and below 1, not 1."),
        (["--validation-ratio", "0.5", "--test-ratio", "0.5"], "add up to 1 or more: nothing would be left to train"),
    ],
)
def test_bad_test_ratio_is_a_command_error_and_changes_nothing(task, inline_celery, args, message):
    approve(task, 3)
    with pytest.raises(CommandError, match=message):
        run(task.slug, "--format", "alpaca", *args)
    assert not Export.objects.exists()
