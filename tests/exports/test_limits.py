"""An export never writes a huge file: a record over MAX_RENDERED_RECORD_BYTES, or a template over the template limits
(saved before they existed), fails the export with the examples named, like any other per-record problem."""

import pytest

from annotate.models import PromptTemplate
from pairsmith.jobs import JobState

from .conftest import approve, build, read_lines, version_folder

pytestmark = pytest.mark.django_db


def _nothing_written(export) -> None:
    task_dir = version_folder(export).parent
    assert not version_folder(export).exists()
    assert not task_dir.exists() or not list(task_dir.iterdir())  # no partial folder left either
    assert export.files == {}


def test_a_record_over_the_size_limit_fails_the_export_naming_its_example(task, lead, settings):
    settings.MAX_RENDERED_RECORD_BYTES = 3_000
    good = approve(task, 5)
    big = approve(task, 2, start=50, input="x" * 4_000)  # the default template puts the input into the prompt once
    export = build(task, export_format="prompt-completion", user=lead)
    assert export.state == JobState.FAILED
    assert "2 records failed the format checks; nothing was written" in export.error
    reasons = {p["example"]: p["reason"] for p in export.problems}
    assert set(reasons) == {example.pk for example in big}
    for reason in reasons.values():
        assert reason.startswith("the record is 4,")
        assert reason.endswith("bytes, over the limit of 3,000 bytes (MAX_RENDERED_RECORD_BYTES)")
    assert str(big[0].uuid) in export.error and str(good[0].uuid) not in export.error
    _nothing_written(export)


def test_records_at_the_size_limit_are_exported(task, lead, settings):
    approve(task, 3, input="x" * 1_000)
    first = build(task, export_format="prompt-completion", user=lead)
    folder = version_folder(first)
    longest = max(len(line) for name in ("train.jsonl", "validation.jsonl") for line in
                  (folder / name).read_bytes().split(b"\n"))  # fmt: skip
    settings.MAX_RENDERED_RECORD_BYTES = longest
    again = build(task, export_format="prompt-completion", user=lead)
    assert again.state == JobState.SUCCEEDED, again.error
    assert len(read_lines(version_folder(again) / "train.jsonl")) + again.counts["validation"] == 3


def test_a_template_with_thousands_of_placeholders_cannot_blow_up_an_export(task, lead):
    """The issue: `{input}` 10,000 times turned a 100 KB import into a 100 MB train.jsonl. Such a template can no
    longer be saved; one saved before the limit existed fails the export of every example that uses it."""
    PromptTemplate.objects.filter(task=task).update(prompt_format="{input}" * 10_000)  # as stored before the limit
    examples = approve(task, 10, input="x" * 100)
    export = build(task, export_format="prompt-completion", user=lead)
    assert export.state == JobState.FAILED
    assert {p["example"] for p in export.problems} == {example.pk for example in examples}
    assert export.problems[0]["reason"] == (
        "template version 1 cannot be used: The prompt format is 70,000 characters long, over the limit of 20,000 "
        "characters (MAX_TEMPLATE_CHARS). The prompt format has 10,000 placeholders, over the limit of 20 "
        "(MAX_TEMPLATE_PLACEHOLDERS): each one copies a whole field into every record."
    )
    _nothing_written(export)


def test_an_over_limit_template_only_matters_to_the_formats_that_fill_it(task, lead):
    PromptTemplate.objects.filter(task=task).update(prompt_format="{input}" * 30)  # prompt-completion's text
    approve(task, 4)
    assert build(task, export_format="prompt-completion", user=lead).state == JobState.FAILED
    export = build(task, export_format="alpaca", user=lead)  # fills alpaca_input_format, which is fine
    assert export.state == JobState.SUCCEEDED, export.error


def test_an_over_limit_template_no_approved_example_uses_does_not_stop_an_export(task, lead):
    old = task.current_template
    PromptTemplate.objects.filter(pk=old.pk).update(prompt_format="{input}" * 30)
    PromptTemplate.objects.create(task=task, version=2, prompt_format="Q: {instruction}\nA: ")
    task.refresh_from_db()
    examples = approve(task, 4)  # on the current template, version 2
    assert {example.template.version for example in examples} == {2}
    export = build(task, export_format="prompt-completion", user=lead)
    assert export.state == JobState.SUCCEEDED, export.error
