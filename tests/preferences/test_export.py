"""Exports of preference pairs: trl-preference and openai-preference, the round trip of imported pairs, the split,
the manifest's sources, the changes between versions, pairs from reviewers' edits, and loading with `datasets`."""

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.importing import examples_import
from annotate.models import Example, Revision
from exports import services
from exports.services import record_problem
from exports.splits import split_of
from preferences.models import PreferencePair, Source
from tests.exports.conftest import build, read_lines

from .test_import import jsonl

pytestmark = pytest.mark.django_db


def trl(i: int) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"Question {i}: where is my parcel?"}],
        "chosen": [{"role": "assistant", "content": f"It arrives in {i % 5 + 1} days."}],
        "rejected": [{"role": "assistant", "content": "No idea ✗"}],
    }


def openai(i: int) -> dict:
    return {
        "input": {"messages": [{"role": "user", "content": f"Question {i}?"}]},
        "preferred_output": [{"role": "assistant", "content": f"Answer {i}"}],
        "non_preferred_output": [{"role": "assistant", "content": "Bad\nanswer"}],
    }


@pytest.mark.parametrize(("export_format", "make"), [("trl-preference", trl), ("openai-preference", openai)])
def test_imported_pairs_round_trip_exactly(task, lead, tmp_path, export_format, make):
    records = [make(i) for i in range(40)]
    examples_import(task=task, path=jsonl(tmp_path, records), file_format="jsonl", status="approved")
    export = build(task, export_format=export_format, user=lead, validation_ratio=0.2, test_ratio=0.1)
    assert export.state == "succeeded", export.error
    folder = services.export_dir(export)
    written = []
    for split in ("train", "validation", "test"):
        lines = read_lines(folder / f"{split}.jsonl")
        assert len(lines) == export.counts[split]
        written += lines
    key = orjson.dumps
    assert sorted(map(key, written)) == sorted(map(key, records))  # exactly the records imported, nothing more
    for record in written:
        assert record_problem(export_format, record) is None


def test_the_split_follows_the_pair_uuid_and_the_manifest_names_sources(task, lead, tmp_path):
    examples_import(task=task, path=jsonl(tmp_path, [trl(i) for i in range(30)]), file_format="jsonl",
                    status="approved")  # fmt: skip
    export = build(task, export_format="trl-preference", user=lead, validation_ratio=0.3)
    manifest = orjson.loads((services.export_dir(export) / "manifest.json").read_bytes())
    for split, entries in manifest["examples"].items():
        for pk, uuid, _content, _warnings, origin in entries:
            pair = PreferencePair.objects.get(pk=pk)
            assert str(pair.uuid) == uuid and origin == {"source": "import"}
            assert split_of(seed=task.split_seed, uuid=uuid, ratio=0.3) + ".jsonl" == split
    assert manifest["counts"]["by_kind"]["train"] == {"import": export.counts["train"]}
    card = (services.export_dir(export) / "README.md").read_text()
    assert "TRL documentation" in card


def test_system_prompt_as_the_sft_export_and_unreviewed_pairs_stay_out(task, lead, tmp_path):
    task.system_prompt = "You are the parcel bot."
    task.save()
    examples_import(task=task, path=jsonl(tmp_path, [trl(1)]), file_format="jsonl", status="approved")
    examples_import(task=task, path=jsonl(tmp_path, [trl(2)], "new.jsonl"), file_format="jsonl", status="new")
    export = build(task, export_format="trl-preference", user=lead, validation_ratio=0)
    (record,) = read_lines(services.export_dir(export) / "train.jsonl")
    assert record["prompt"] == [
        {"role": "system", "content": "You are the parcel bot."},
        {"role": "user", "content": "Question 1: where is my parcel?"},
    ]


def test_nothing_to_export_says_so(task, lead):
    with pytest.raises(ValidationError, match="no reviewed preference pairs"):
        services.export_request(task=task, export_format="openai-preference", user=lead)
    with pytest.raises(ValidationError, match="minimum change must be between 0 and 1"):
        services.export_request(task=task, export_format="openai-preference", pairs_from_edits=True, min_change=2)


def test_changes_between_versions(task, lead, tmp_path):
    examples_import(task=task, path=jsonl(tmp_path, [trl(i) for i in range(5)]), file_format="jsonl",
                    status="approved")  # fmt: skip
    build(task, export_format="trl-preference", user=lead, validation_ratio=0)
    first = PreferencePair.objects.order_by("id").first()
    first.chosen = "A better answer."
    first.save()
    PreferencePair.objects.order_by("id").last().delete()
    examples_import(task=task, path=jsonl(tmp_path, [trl(9)], "more.jsonl"), file_format="jsonl", status="approved")
    second = build(task, export_format="trl-preference", user=lead, validation_ratio=0)
    assert second.base_version == 1
    assert {k: v for k, v in second.changes.items() if v} == {"added": 1, "removed": 1, "changed": 1, "unchanged": 3}


def test_changes_page_links_pairs_to_the_pairs_list_not_to_examples(client, task, lead, tmp_path):
    examples_import(task=task, path=jsonl(tmp_path, [trl(i) for i in range(3)]), file_format="jsonl",
                    status="approved")  # fmt: skip
    build(task, export_format="trl-preference", user=lead, validation_ratio=0)
    changed = PreferencePair.objects.order_by("id").first()
    changed.chosen, changed.external_id = "A better answer.", "pair_<1>"
    changed.save()
    build(task, export_format="trl-preference", user=lead, validation_ratio=0)
    client.force_login(lead)
    page = client.get(reverse("exports:detail", args=[task.slug, 2]), {"change": "changed"})
    link = reverse("preferences:pairs", args=[task.slug]) + f"?pair={changed.uuid}"
    assertContains(page, f'<a href="{link}" title="{changed.uuid}">pair_&lt;1&gt;</a>', html=True)
    assertContains(page, "<th>Pair</th>", html=True)
    assertNotContains(page, reverse("reviews:example", args=[task.slug, changed.uuid]))
    assertNotContains(page, "deleted")
    # The link shows that pair alone.
    one = client.get(link)
    assertContains(one, f'data-pair="{changed.uuid}"')
    assert one.content.decode().count("data-pair=") == 1
    assertContains(one, 'data-testid="one-pair"')
    assert client.get(reverse("preferences:pairs", args=[task.slug]), {"pair": "not-a-uuid"}).status_code == 200


def _edited(task, reviewer, i: int, submitted: str, approved: str) -> Example:
    example = Example.objects.create(
        task=task, template=task.current_template, instruction=f"Question {i}?", completion=approved,
        status=Example.Status.APPROVED,
    )  # fmt: skip
    Revision.objects.create(example=example, text=submitted, reason=Revision.Reason.SUBMIT, example_version=2)
    Revision.objects.create(
        example=example, text=approved, reason=Revision.Reason.REVIEWER_EDIT, author=reviewer, example_version=3
    )
    return example


def test_pairs_from_edits_when_turned_on_leave_typo_fixes_out(task, lead, reviewer):
    big = _edited(task, reviewer, 1, "The parcel is lost, sorry.", "Your parcel arrives tomorrow before noon.")
    typo = "It arrives tomorow before noon at your door."
    _edited(task, reviewer, 2, typo, typo.replace("tomorow", "tomorrow"))
    Example.objects.create(task=task, template=task.current_template, instruction="Plain", completion="x",
                           status=Example.Status.APPROVED)  # fmt: skip
    with pytest.raises(ValidationError, match="no reviewed preference pairs"):
        services.export_request(task=task, export_format="trl-preference", user=lead)
    export = build(task, export_format="trl-preference", user=lead, validation_ratio=0, pairs_from_edits=True,
                   min_change=0.3)  # fmt: skip
    assert export.state == "succeeded", export.error
    (record,) = read_lines(services.export_dir(export) / "train.jsonl")
    assert record["chosen"] == [{"role": "assistant", "content": "Your parcel arrives tomorrow before noon."}]
    assert record["rejected"] == [{"role": "assistant", "content": "The parcel is lost, sorry."}]
    pair = PreferencePair.objects.get(example=big)
    assert pair.source == Source.EDIT and pair.reviewed_by == reviewer
    manifest = orjson.loads((services.export_dir(export) / "manifest.json").read_bytes())
    (entry,) = manifest["examples"]["train.jsonl"]
    assert entry[4] == {"source": "edit", "example": str(big.uuid)}
    # A small minimum takes the typo fix too; the pairs are updated, not made twice.
    again = build(task, export_format="trl-preference", user=lead, validation_ratio=0, pairs_from_edits=True,
                  min_change=0.01)  # fmt: skip
    assert again.counts["train"] == 2
    assert PreferencePair.objects.filter(source=Source.EDIT).count() == 2


@pytest.mark.usefixtures("offline_hf")
@pytest.mark.parametrize(("export_format", "make"), [("trl-preference", trl), ("openai-preference", openai)])
def test_files_load_with_datasets_in_the_documented_shape(task, lead, tmp_path, export_format, make):
    from datasets import load_dataset

    task.system_prompt = "Sys"
    task.save()
    examples_import(task=task, path=jsonl(tmp_path, [make(i) for i in range(50)]), file_format="jsonl",
                    status="approved")  # fmt: skip
    export = build(task, export_format=export_format, user=lead, validation_ratio=0.2, test_ratio=0.1)
    folder = services.export_dir(export)
    dataset = load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    assert set(dataset) == {"train", "validation", "test"}
    for split in dataset:
        assert dataset[split].column_names == list(services.RECORD_KEYS[export_format])
        assert dataset[split].to_list() == read_lines(folder / f"{split}.jsonl")
    row = dataset["train"][0]
    if export_format == "trl-preference":
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
    else:
        assert [m["role"] for m in row["input"]["messages"]] == ["system", "user"]
        assert len(row["preferred_output"]) == 1 == len(row["non_preferred_output"])


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_worker_reads_its_own_snapshot(task, lead, tmp_path):
    """A worker's build (no surrounding transaction): on PostgreSQL the pairs stream from a connection of its own."""
    records = [openai(i) for i in range(25)]
    examples_import(task=task, path=jsonl(tmp_path, records), file_format="jsonl", status="approved")
    export = build(task, export_format="openai-preference", user=lead, validation_ratio=0.2)
    assert export.state == "succeeded", export.error
    folder = services.export_dir(export)
    written = read_lines(folder / "train.jsonl") + read_lines(folder / "validation.jsonl")
    assert sorted(map(orjson.dumps, written)) == sorted(map(orjson.dumps, records))


@pytest.mark.parametrize("export_format", ["trl-preference", "openai-preference"])
@pytest.mark.parametrize("system", ["", "You are the parcel bot ✓", "  "])
def test_a_pairs_line_from_its_texts_is_the_rendered_records_json(export_format, system):
    """The export writes a plain pair's line straight from its texts (line_renderer): the same bytes as the record
    the renderer makes, encoded whole, for any text; None where the record would not be plainly valid, so that the
    full path names the problem."""
    from annotate.rendering import TemplateSpec, record_renderer
    from exports.formats import FORMATS

    module = FORMATS[export_format]
    spec = TemplateSpec(
        prompt_format="{instruction}",
        chat_user_format="[[Context:\n{context}\n\n]]Q: {instruction}",
        alpaca_input_format="{input}",
        system_message=system,
    )
    render, line = record_renderer(spec, export_format), module.line_renderer(spec)
    if system.isspace():  # a blank system prompt: no line from texts; the full path names the problem
        assert line is None
        fields = {"instruction": "Where?", "context": "", "input": ""}
        assert not module.record_ok(render(fields, ("Here.", "No."), None, None))
        return
    texts = ['quotes " and \\ backslash', "tab\tnew\nline \x00\x1f\x7f", "emoji 🚚 and 東京", "\u2028 sep", "  ", ""]
    for instruction in texts:
        for context in ("", "Shared context ü"):
            for chosen, rejected in ((texts[0], texts[2]), (texts[1], "  "), (texts[3], texts[1])):
                fields = {"instruction": instruction, "context": context, "input": ""}
                record = render(fields, (chosen, rejected), None, None)
                fast = line(fields, (chosen, rejected), None)
                if module.record_ok(record):
                    assert fast == orjson.dumps(record)
                else:
                    assert fast is None and record_problem(export_format, record)
                assert line(fields, (chosen, rejected), [{"role": "user", "content": "Earlier"}]) is None
