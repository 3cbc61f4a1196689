"""The test split: DESIGN.md's rule, test.jsonl in every export that has one, counts in manifest, card and --json,
and an example that never moves between test and train across versions while the ratios stay."""

import hashlib
import json
import uuid as uuid_module
from fractions import Fraction

import pytest
from django.core.exceptions import ValidationError

from annotate.models import Example
from exports import services
from exports.models import Export
from exports.services import split_of
from pairsmith.jobs import JobState

from .conftest import approve, build, read_lines, version_folder

pytestmark = pytest.mark.django_db


def sides_of(export: Export) -> dict[str, str]:
    manifest = json.loads((version_folder(export) / "manifest.json").read_text())
    return {uuid: name.split(".")[0] for name, rows in manifest["examples"].items() for _, uuid, _, _ in rows}


def test_the_rule_is_the_documented_three_way_hash():
    uuids = [str(uuid_module.UUID(int=i * 7919 + 3)) for i in range(5000)]
    for u in uuids:
        fraction = Fraction(int.from_bytes(hashlib.sha256(f"s:{u}".encode()).digest()[:8], "big"), 2**64)
        if fraction < Fraction(0.1):
            expected = "validation"
        else:
            expected = "test" if fraction < Fraction(0.1) + Fraction(0.2) else "train"
        assert split_of(seed="s", uuid=u, ratio=0.1, test_ratio=0.2) == expected
    sides = [split_of(seed="s", uuid=u, ratio=0.1, test_ratio=0.2) for u in uuids]
    assert 0.08 < sides.count("validation") / len(sides) < 0.12
    assert 0.18 < sides.count("test") / len(sides) < 0.22
    # A test ratio added later leaves validation as it was: only train examples move, and only into test.
    before = [split_of(seed="s", uuid=u, ratio=0.1) for u in uuids]
    assert all(b == "validation" for b, a in zip(before, sides, strict=True) if a == "validation")
    assert {(b, a) for b, a in zip(before, sides, strict=True) if b != a} == {("train", "test")}


@pytest.mark.parametrize(("validation", "test"), [(0.1, 0.2), (0, 0.3), (0.25, 0.25)])
def test_each_example_lands_where_the_rule_says_on_this_database(task, lead, validation, test):
    """On PostgreSQL the database computes the side in SQL; it must agree with split_of byte for byte."""
    task.split_seed = "seed:ünï"
    task.save()
    examples = approve(task, 120)
    export = build(task, export_format="alpaca", user=lead, validation_ratio=validation, test_ratio=test)
    expected = {
        str(e.uuid): split_of(seed="seed:ünï", uuid=str(e.uuid), ratio=validation, test_ratio=test) for e in examples
    }
    assert sides_of(export) == expected
    assert export.counts["test"] == list(expected.values()).count("test") > 0


def test_an_example_never_moves_between_test_and_train_across_versions(task, lead):
    first = approve(task, 150)
    v1 = build(task, user=lead, validation_ratio=0.1, test_ratio=0.2)
    approve(task, 150, start=1000)  # more approved examples later
    Example.objects.filter(pk=first[0].pk).update(completion="Edited and approved again.")
    v2 = build(task, user=lead, validation_ratio=0.1, test_ratio=0.2)
    one, two = sides_of(v1), sides_of(v2)
    assert set(one) < set(two)
    assert all(two[uuid] == side for uuid, side in one.items())
    assert v2.changes["moved"] == 0 and v2.changes["added"] == 150 and v2.changes["changed"] == 1


def test_changing_the_ratios_moves_examples_and_the_diff_says_so(task, lead):
    approve(task, 200)
    v1 = build(task, user=lead, validation_ratio=0.1, test_ratio=0)
    v2 = build(task, user=lead, validation_ratio=0.1, test_ratio=0.2)
    one, two = sides_of(v1), sides_of(v2)
    moved = {(one[u], two[u]) for u in one if one[u] != two[u]}
    assert moved == {("train", "test")}  # validation is untouched by a test ratio added later
    assert v2.changes["moved"] == sum(1 for u in one if one[u] != two[u]) > 0


def test_test_jsonl_manifest_and_card_describe_the_test_split(task, lead):
    approve(task, 80)
    export = build(task, user=lead, validation_ratio=0.2, test_ratio=0.2)
    folder = version_folder(export)
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "manifest.json", "test.jsonl", "train.jsonl", "validation.jsonl"
    ]  # fmt: skip
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (
        manifest["split"]["test_ratio"] == 0.2
        and "validation_ratio <= u < validation_ratio + test_ratio" in (manifest["split"]["rule"])
    )
    assert manifest["counts"]["test"] == len(read_lines(folder / "test.jsonl")) == export.counts["test"] > 0
    assert sum(export.counts[s] for s in ("train", "validation", "test")) == export.counts["total"] == 80
    assert sum(export.counts["by_kind"]["test"].values()) == export.counts["test"]
    assert manifest["files"]["test.jsonl"] == export.files["test.jsonl"]
    card = (folder / "README.md").read_text()
    assert f"| test | `test.jsonl` | {export.counts['test']} |" in card
    assert "      - split: test\n        path: test.jsonl\n" in card
    assert "`test.jsonl` is held out" in card
    summary = services.export_summary(export=export)
    assert summary["files"]["test"].endswith(f"{task.slug}/v{export.version}/test.jsonl")
    assert summary["sha256"]["test"] == export.files["test.jsonl"]["sha256"]


def test_the_task_default_applies_and_bad_ratios_change_nothing(task, lead):
    approve(task, 10)
    task.test_ratio = 0.3
    task.save()
    assert build(task, user=lead).test_ratio == 0.3
    for validation, test, message in [
        (0.5, 0.5, "add up to 1 or more"),
        (0.1, 1.0, "test ratio must be at least 0 and below 1"),
        (0.1, -0.1, "test ratio must be at least 0 and below 1"),
        (0.1, float("nan"), "test ratio must be at least 0 and below 1"),
    ]:
        with pytest.raises(ValidationError, match=message):
            services.export_request(task=task, export_format="alpaca", validation_ratio=validation, test_ratio=test)
    assert Export.objects.count() == 1 and Export.objects.get().state == JobState.SUCCEEDED


def test_task_settings_refuse_ratios_that_leave_nothing_to_train(task):
    task.validation_ratio, task.test_ratio = 0.6, 0.4
    with pytest.raises(ValidationError, match="something must be left to train on"):
        task.full_clean()


def test_the_lead_sets_test_ratio_and_contamination_blocking_in_task_settings(client, task, lead):
    from django.urls import reverse
    from pytest_django.asserts import assertContains

    client.force_login(lead)
    url = reverse("annotate:task_edit", args=[task.slug])
    base = {"name": task.name, "output_format": task.output_format, "approvals_required": "1",
            "validation_ratio": "0.1", "split_seed": task.split_seed}  # fmt: skip
    response = client.post(url, base | {"test_ratio": "0.2", "contamination_blocks": "on"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.test_ratio, task.contamination_blocks) == (0.2, True)
    refused = client.post(url, base | {"validation_ratio": "0.5", "test_ratio": "0.5"})
    assertContains(refused, "something must be left to train on")
    task.refresh_from_db()
    assert (task.validation_ratio, task.test_ratio) == (0.1, 0.2)
