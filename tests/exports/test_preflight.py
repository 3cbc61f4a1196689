"""Trainer preflight: the task's tokenizer and chat template count each export's tokens exactly; hostile templates
and bad files are refused in bounded time, naming what is wrong."""

import json
import time

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from tokenizers import Tokenizer

from exports import preflight
from exports.models import TaskTokenizer
from pairsmith.jobs import JobState

from .conftest import approve, build, read_lines, version_folder
from .small_tokenizer import MARKED, UNMARKED, config_json, rendered, tokenizer_json

pytestmark = pytest.mark.django_db


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/json")


def set_tokenizer(task, template: str = MARKED, user=None) -> TaskTokenizer:
    return preflight.tokenizer_set(
        task=task,
        tokenizer_file=upload("tokenizer.json", tokenizer_json()),
        config_file=upload("tokenizer_config.json", config_json(template)),
        user=user,
    )


def count_by_hand(records: list[dict]) -> tuple[list[int], int]:
    """Tokens of each record and trained tokens in all, read independently: the template written out by hand,
    the trained parts encoded on their own (word-level: a part's tokens are the same inside the text)."""
    tokenizer = Tokenizer.from_str(tokenizer_json().decode())
    counts, trained = [], 0
    for record in records:
        text, parts = rendered(record["messages"])
        counts.append(len(tokenizer.encode(text, add_special_tokens=False).ids))
        trained += sum(len(tokenizer.encode(part, add_special_tokens=False).ids) for part in parts)
    return counts, trained


def test_exact_tokens_per_split_over_length_list_and_trained_share(task, lead):
    approve(task, 30)
    approve(task, 3, start=100, completion="It arrives in 5 days. " * 40)  # long ones
    set_tokenizer(task, user=lead)
    export = build(task, user=lead, validation_ratio=0.2, test_ratio=0.2, max_length=60)
    assert export.state == JobState.SUCCEEDED, export.error
    report = export.preflight
    folder = version_folder(export)
    total_tokens = total_trained = 0
    over = set()
    for split in ("train", "validation", "test"):
        records = read_lines(folder / f"{split}.jsonl")
        counts, trained = count_by_hand(records)
        assert report["splits"][split]["examples"] == len(records)
        assert report["splits"][split]["tokens"] == sum(counts)
        assert report["splits"][split]["trained"] == trained
        assert report["splits"][split]["longest"] == max(counts)
        total_tokens += sum(counts)
        total_trained += trained
        manifest_rows = json.loads((folder / "manifest.json").read_text())["examples"][f"{split}.jsonl"]
        over |= {row[1] for row, n in zip(manifest_rows, counts, strict=True) if n > 60}
    assert len(over) == 3
    assert {item["uuid"] for item in report["over_length_examples"]} == over
    assert report["over_length"] == 3
    assert report["tokens"] == total_tokens
    assert report["trained_share"] == round(total_trained / total_tokens, 4)
    assert report["masks_prompt"] is True and report["warning"] == ""
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["preflight"] == report
    card = (folder / "README.md").read_text()
    assert "## Tokens (trainer preflight)" in card
    assert f"| train | {report['splits']['train']['examples']:,} | {report['splits']['train']['tokens']:,} |" in card
    assert "tiny/word-level" in card
    for uuid in over:
        assert uuid in card


def test_a_template_without_generation_markers_warns_and_counts_the_assistant_text(task, lead):
    approve(task, 12)
    set_tokenizer(task, template=UNMARKED)
    export = build(task, validation_ratio=0.0)
    report = export.preflight
    records = read_lines(version_folder(export) / "train.jsonl")
    tokenizer = Tokenizer.from_str(tokenizer_json().decode())
    trained = sum(
        len(tokenizer.encode(m["content"], add_special_tokens=False).ids)
        for record in records
        for m in record["messages"]
        if m["role"] == "assistant"
    )
    assert report["trained_tokens"] == trained
    assert report["masks_prompt"] is False
    assert "no {% generation %} markers" in report["warning"]
    card = (version_folder(export) / "README.md").read_text()
    assert "**Warning:**" in card and "mask the prompt" in card


def test_without_a_tokenizer_the_card_says_counts_are_not_exact(task, lead):
    approve(task, 5)
    export = build(task)
    assert export.preflight == {}
    card = (version_folder(export) / "README.md").read_text()
    assert "No tokenizer was set for this task: no exact token counts" in card
    assert "estimate" in card


HOSTILE = {
    "nested loops": "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}",
    "loops over a long string": "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "endless recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "huge output": "{% for i in range(9999) %}{{ 'y' * 9999 }}{% endfor %}",
    "string doubling": "{% set ns = namespace(s='x') %}{% for i in range(80) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",  # noqa: E501
    "padding": "{{ 'x'.center(1000000000) }}",
    "format width": "{{ '{:>999999999}'.format('x') }}",
    "percent width": "{{ '%999999999s' % 'x' }}",
    "replace blow-up": "{{ ('x' * 100000)|replace('x', 'y' * 100000) }}",
    "join of repeats": "{{ (['x' * 1000000] * 1000)|join('') }}",
    "internals": "{{ messages.__class__.__mro__[1].__subclasses__() }}",
    "mutation": "{% set l = [] %}{{ l.append(1) }}",
    "big power": "{{ 10 ** 100000000 }}",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_template_is_refused_in_bounded_time_and_nothing_is_stored(task, name):
    started = time.monotonic()
    with pytest.raises(ValidationError) as caught:
        set_tokenizer(task, template=HOSTILE[name])
    assert time.monotonic() - started < 5
    assert "The chat template cannot be used" in str(caught.value)
    assert not TaskTokenizer.objects.filter(task=task).exists()


def test_a_template_that_fails_on_one_example_fails_the_export_naming_it(task, lead):
    approve(task, 5)
    (bad,) = approve(task, 1, start=50, completion="the BOOM answer")
    template = "{% for m in messages %}{% if 'BOOM' in m['content'] %}{{ raise_exception('no boom') }}{% endif %}"
    set_tokenizer(task, template=template + "{{ m['content'] }}{% endfor %}")
    export = build(task)
    assert export.state == JobState.FAILED
    assert f"failed on example {bad.pk} ({bad.uuid}): the template raised: no boom" in export.error
    assert not version_folder(export).exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"tokenizer": b"{not json"}, "tokenizer.json could not be read as a tokenizer"),
        ({"config": b"[1, 2]"}, "tokenizer_config.json must hold a JSON object"),
        ({"config": b'{"chat_template": "{% for %}"}'}, "does not compile: line 1"),
        ({"config": b'{"eos_token": "</s>"}'}, "tokenizer_config.json has no chat_template"),
        ({"config": b"\xff\xfe"}, "tokenizer_config.json is not JSON"),
    ],
)
def test_bad_files_are_refused_with_a_clear_error_and_nothing_changes(task, files, message):
    kept = set_tokenizer(task)
    with pytest.raises(ValidationError) as caught:
        preflight.tokenizer_set(
            task=task,
            tokenizer_file=upload("tokenizer.json", files.get("tokenizer", tokenizer_json())),
            config_file=upload("tokenizer_config.json", files.get("config", config_json())),
        )
    assert message in str(caught.value)
    assert TaskTokenizer.objects.get(task=task).sha256 == kept.sha256


def test_a_tokenizer_with_a_backtracking_regex_is_refused(task):
    from tokenizers import Regex, pre_tokenizers

    tokenizer = Tokenizer.from_str(tokenizer_json().decode())
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("(a?)+$"), "isolated")
    with pytest.raises(ValidationError) as caught:
        preflight.tokenizer_set(
            task=task,
            tokenizer_file=upload("tokenizer.json", tokenizer.to_str().encode()),
            config_file=upload("tokenizer_config.json", config_json()),
        )
    assert "repeats a repeated group ('(a?)+$')" in str(caught.value)
    assert not TaskTokenizer.objects.filter(task=task).exists()


def test_files_over_the_size_limit_are_refused_before_they_are_read(task, monkeypatch):
    monkeypatch.setattr(preflight, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(ValidationError) as caught:
        set_tokenizer(task)
    assert "over the limit of 100 bytes" in str(caught.value)


def test_lead_uploads_the_tokenizer_on_the_exports_page(client, task, lead):
    client.force_login(lead)
    url = reverse("exports:tokenizer", args=[task.slug])
    files = {"tokenizer": upload("tokenizer.json", tokenizer_json()), "config": upload("c.json", config_json())}
    response = client.post(url, files)
    assert response.status_code == 302
    page = client.get(reverse("exports:list", args=[task.slug]))
    assert "tiny/word-level" in page.text and 'data-testid="tokenizer-set"' in page.text
    client.post(reverse("exports:tokenizer_remove", args=[task.slug]))
    assert not TaskTokenizer.objects.filter(task=task).exists()


def test_a_bad_upload_shows_the_error_on_the_form(client, task, lead):
    client.force_login(lead)
    files = {"tokenizer": upload("tokenizer.json", b"nonsense"), "config": upload("c.json", config_json())}
    response = client.post(reverse("exports:tokenizer", args=[task.slug]), files)
    assert response.status_code == 200
    assert "tokenizer.json could not be read as a tokenizer" in response.text
    assert not TaskTokenizer.objects.filter(task=task).exists()


def test_reviewer_gets_403_and_outsider_404_on_upload(client, task, reviewer, outsider):
    url = reverse("exports:tokenizer", args=[task.slug])
    files = {"tokenizer": upload("tokenizer.json", tokenizer_json()), "config": upload("c.json", config_json())}
    client.force_login(reviewer)
    assert client.post(url, files).status_code == 403
    client.force_login(outsider)
    assert client.post(url, files).status_code == 404
    assert not TaskTokenizer.objects.filter(task=task).exists()


def test_the_editor_counts_exact_tokens_with_the_tasks_tokenizer(client, task, annotator):
    from tests.factories import ExampleFactory

    example = ExampleFactory(task=task, instruction="Where is my parcel?", context="", input="")
    set_tokenizer(task)
    client.force_login(annotator)
    assert client.post(reverse("annotate:work", args=[task.slug])).status_code == 302
    completion = "It arrives in 3 days."
    response = client.post(
        reverse("annotate:feedback", args=[task.slug, example.uuid]),
        {"completion": completion},
        headers={"HX-Request": "true"},
    )
    tokenizer = Tokenizer.from_str(tokenizer_json().decode())
    own = len(tokenizer.encode(completion, add_special_tokens=False).ids)
    records = read_lines(version_folder(build_one(task)) / "train.jsonl")
    text, _ = rendered(records[0]["messages"][:-1] + [{"role": "assistant", "content": completion}])
    whole = len(tokenizer.encode(text, add_special_tokens=False).ids)
    body = response.text
    assert f">{own} tokens</span>" in body
    assert f"({whole} with the prompt, tiny/word-level)" in body
    assert "≈" not in body


def build_one(task):
    """The task's one example, approved and exported: its conversation as the trainer sees it."""
    from annotate.models import Example

    Example.objects.filter(task=task).update(status=Example.Status.APPROVED, completion="x")
    return build(task, validation_ratio=0.0)


def test_the_dashboard_shows_the_exact_tokens_of_the_newest_counted_export(client, task, lead):
    approve(task, 6)
    set_tokenizer(task)
    export = build(task, validation_ratio=0.0)
    client.force_login(lead)
    response = client.get(reverse("annotate:dashboard", args=[task.slug]))
    assert f"<strong>{export.preflight['tokens']}</strong> tokens in its records" in response.text
    assert "with the tokenizer of tiny/word-level" in response.text


def test_without_a_tokenizer_the_editor_and_dashboard_say_estimate(client, task, lead, annotator):
    from tests.factories import ExampleFactory

    example = ExampleFactory(task=task, instruction="Where is my parcel?")
    client.force_login(annotator)
    client.post(reverse("annotate:work", args=[task.slug]))
    response = client.post(
        reverse("annotate:feedback", args=[task.slug, example.uuid]),
        {"completion": "Soon."},
        headers={"HX-Request": "true"},
    )
    assert "with the prompt, estimated)" in response.text and "≈" in response.text
    client.force_login(lead)
    page = client.get(reverse("annotate:dashboard", args=[task.slug]))
    assert "are an estimate" in page.text and 'data-testid="exact-tokens"' not in page.text


@pytest.mark.django_db(transaction=True)  # the job is sent on commit
def test_the_command_takes_a_maximum_length_and_prints_the_preflight(task, inline_celery):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    approve(task, 4)
    approve(task, 1, start=50, completion="It arrives in 5 days. " * 20)
    set_tokenizer(task)
    out = StringIO()
    call_command("export_dataset", task.slug, "--format", "messages", "--max-length", "50", "--wait", stdout=out)
    printed = out.getvalue()
    assert "Counted with the tokenizer and chat template of tiny/word-level (exact, not an estimate)." in printed
    assert "Longer than 50 tokens (truncated by the trainer): 1." in printed
    with pytest.raises(CommandError, match="maximum length must be a whole number from 1"):
        call_command("export_dataset", task.slug, "--format", "messages", "--max-length", "0")
