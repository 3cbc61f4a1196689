"""The mapping page with nested records: paths and their picks, keys not stored (listed, and refused until the lead
drops or keeps them), metadata on the example's page and in the export manifest; the per-user upload quota."""

import json
import re

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import Example, ImportJob
from tests.annotate.test_import_nested import SEED

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("both_storages")]


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def upload(client, task, content: bytes, name: str = "seed.jsonl"):
    return client.post(reverse("imports:upload", args=[task.slug]), {"file": SimpleUploadedFile(name, content)})


def mapping_url(client, task, records=SEED) -> str:
    response = upload(client, task, jsonl(records))
    assert response.status_code == 302, response.content.decode()[-2000:]
    return response.url


# The default mapping of SEED's keys: id, name, instruction, instances, is_classification.
DEFAULTS = {"map_0": "external_id", "map_1": "", "map_2": "instruction", "map_3": "", "map_4": "", "status": "new"}
PATHS = {"path_input": "instances[0].input", "path_completion": "instances[0].output"}


def test_the_page_lists_every_key_not_stored_and_what_each_path_picks(client, lead, task):
    client.force_login(lead)
    page = client.get(mapping_url(client, task))
    unstored = page.context["unstored"]
    assert [(u.key, u.records, u.where, u.parts) for u in unstored] == [
        ("name", 6, "line 1", []),
        ("instances", 6, "line 1", []),
        ("is_classification", 6, "line 1", []),
    ]
    assertContains(page, 'data-testid="unstored"')
    assertContains(page, '<input type="hidden" name="unmapped_key" value="instances">', html=True)
    response = client.post(
        page.request["PATH_INFO"] + "preview/", {**DEFAULTS, **PATHS}, headers={"HX-Request": "true"}
    )
    assertNotContains(response, "<html")
    assert [u.key for u in response.context["unstored"]] == ["name", "is_classification"]  # instances: all taken
    # What each path picks, sent out of band next to its input.
    assertContains(response, '<div id="picks-completion"', count=1)
    text = response.content.decode()
    picks = re.search(r'<div id="picks-completion"[^>]*hx-swap-oob="true"[^>]*>(.*?)</div></div>', text, re.S)
    assert picks and "line 1: Output 1" in picks[1] and "line 3: Output 3" in picks[1]
    assertContains(response, '<td class="keep-lines">Output 2</td>')  # the preview's completion column


def test_commit_is_refused_until_the_lead_chooses_for_the_keys_listed(client, lead, task, settings):
    client.force_login(lead)
    url = mapping_url(client, task)
    data = {**DEFAULTS, **PATHS, "action": "import"}
    response = client.post(url, data)
    assertContains(response, "These keys would not be stored: name, is_classification. Map them, or choose below")
    assert not Example.objects.exists() and not ImportJob.objects.exists()
    # A choice made for other keys than those listed now (the mapping changed since) does not count.
    response = client.post(
        url, {**data, "unmapped": "drop", "unmapped_key": ["name", "instances", "is_classification"]}
    )
    assertContains(response, "These keys would not be stored: name, is_classification.")
    assert response.context["unmapped_choice"] == ""
    assert not Example.objects.exists()
    response = client.post(url, {**data, "unmapped": "drop", "unmapped_key": ["name", "is_classification"]})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.state == "succeeded" and job.counts["ignored"] == ["is_classification", "name"]
    assert job.mapping["drop"] == ["is_classification", "name"] and job.mapping["paths"] == {
        "input": "instances[0].input",
        "completion": "instances[0].output",
    }
    stored = task.examples.get(external_id="seed_task_1")
    assert (stored.instruction, stored.input, stored.completion, stored.metadata) == (
        "Instruction 1",
        "Input 1",
        "Output 1",
        {},
    )
    assertContains(client.get(response.url), "Ignored keys (no matching field): is_classification, name")


def test_kept_keys_are_stored_as_metadata_shown_escaped_on_the_example_page(client, lead, task, reviewer):
    client.force_login(lead)
    url = mapping_url(client, task)
    keys = ["name", "is_classification"]
    response = client.post(url, {**DEFAULTS, **PATHS, "action": "import", "unmapped": "keep", "unmapped_key": keys})
    assert response.status_code == 302
    assertContains(client.get(response.url), "Kept on each example as metadata: is_classification, name")
    example = task.examples.get(external_id="seed_task_2")
    assert example.metadata == {"name": "task <2>", "is_classification": True}
    client.force_login(reviewer)
    page = client.get(reverse("reviews:example", args=[task.slug, example.uuid]))
    assertContains(page, "<dt><code>name</code></dt><dd>task &lt;2&gt;</dd>", html=False)
    assertContains(page, "<dt><code>is_classification</code></dt><dd>true</dd>", html=False)
    assertNotContains(page, "task <2>")
    section = page.content.decode().split('data-testid="example-metadata"')[0].rsplit("<section", 1)[1]
    assert "hx-disable" in section.split(">")[0]  # inside a container that htmx leaves alone


def test_a_path_that_cannot_be_read_is_a_field_error_and_nothing_is_imported(client, lead, task):
    client.force_login(lead)
    url = mapping_url(client, task)
    response = client.post(url, {**DEFAULTS, "path_completion": "instances[0", "action": "import", "unmapped": "drop",
                                 "unmapped_key": ["name", "instances", "is_classification"]})  # fmt: skip
    assert response.status_code == 200
    assert response.context["form"].errors["path_completion"] == [
        'cannot read the path from character 10 ("[0"): use .name or [N]'
    ]
    assertContains(response, "cannot read the path from character 10")
    assert not Example.objects.exists() and not ImportJob.objects.exists()


def test_a_path_to_the_instruction_satisfies_the_mapping(client, lead, task):
    client.force_login(lead)
    records = [{"q": {"text": f"Q{i}"}, "a": f"A{i}"} for i in range(3)]
    url = mapping_url(client, task, records)
    data = {"map_0": "", "map_1": "completion", "status": "new", "path_instruction": "q.text", "action": "import"}
    refused = client.post(url, {**data, "path_instruction": ""})  # neither a column nor a path: refused
    assertContains(refused, "Map a column (or a path) to the instruction, or one to chat messages.")
    assert not Example.objects.exists()
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    assert sorted(task.examples.values_list("instruction", "completion")) == [("Q0", "A0"), ("Q1", "A1"), ("Q2", "A2")]


# --- the export manifest ---------------------------------------------------------------------------------------


def test_the_export_manifest_carries_each_examples_metadata(task, lead):
    from tests.exports.conftest import approve, build

    plain, kept = approve(task, 2)
    Example.objects.filter(pk=kept.pk).update(metadata={"name": "seed <1>", "n": [1, 2]})
    export = build(task, user=lead)
    assert export.state == "succeeded", export.error
    from tests.exports.conftest import version_folder

    manifest = orjson.loads((version_folder(export) / "manifest.json").read_bytes())
    entries = {row[1]: row for rows in manifest["examples"].values() for row in rows}
    assert len(entries[str(plain.uuid)]) == 4  # no metadata, no fifth column
    assert entries[str(kept.uuid)][4] == {"name": "seed <1>", "n": [1, 2]}
    assert manifest["example_optional_columns"] == [
        "metadata (kept from the imported file, on examples that have some)"
    ]


# --- pending uploads: a quota per user, across sessions ----------------------------------------------------------


def test_the_pending_upload_quota_counts_every_session_of_the_user(lead, task, settings):
    settings.IMPORT_PENDING_MAX_UPLOADS = 3
    first, second = Client(), Client()
    first.force_login(lead)
    second.force_login(lead)  # two logins of one user: two sessions
    content = jsonl([{"prompt": "p"}])
    assert upload(first, task, content).status_code == 302
    assert upload(first, task, content).status_code == 302
    assert upload(second, task, content).status_code == 302
    refused = upload(second, task, content)
    assert refused.status_code == 200
    assertContains(
        refused,
        "You already have 3 uploads waiting to be imported (in this or your other sessions); the limit is 3 a user "
        "(IMPORT_PENDING_MAX_UPLOADS).",
    )
    folder = settings.VAR_DIR / "imports"
    assert len(list(folder.glob("*.upload"))) == 3  # the refused file is not kept
    # Importing one (in the first session) frees its place for the second.
    token = next(iter(first.session["pairsmith_imports"]))
    url = reverse("imports:mapping", args=[task.slug, token])
    assert first.post(url, {"map_0": "instruction", "status": "new", "action": "import"}).status_code == 302
    assert upload(second, task, content).status_code == 302


def test_the_pending_upload_quota_counts_bytes(lead, task, settings):
    content = jsonl([{"prompt": "p" * 100}])
    settings.IMPORT_PENDING_MAX_BYTES = 2 * len(content) + 10
    first, second = Client(), Client()
    first.force_login(lead)
    second.force_login(lead)
    assert upload(first, task, content).status_code == 302
    assert upload(second, task, content).status_code == 302
    refused = upload(first, task, content)
    assertContains(refused, f"Your uploads waiting to be imported hold {2 * len(content)} bytes; with this file "
                            f"({len(content)} bytes) that is over the limit of {2 * len(content) + 10} bytes a user "
                            "(IMPORT_PENDING_MAX_BYTES).")  # fmt: skip
    assert len(list((settings.VAR_DIR / "imports").glob("*.upload"))) == 2


def test_one_session_still_replaces_its_oldest_upload_within_the_quota(client, lead, task, settings):
    settings.IMPORT_PENDING_MAX_UPLOADS = 5
    client.force_login(lead)
    content = jsonl([{"prompt": "p"}])
    for _ in range(7):  # the session keeps its 5 newest: never refused by its own uploads
        assert upload(client, task, content).status_code == 302
    assert len(list((settings.VAR_DIR / "imports").glob("*.upload"))) == 5
    assert len(client.session["pairsmith_imports"]) == 5


def test_quotas_are_per_user(lead, task, settings, staff):
    settings.IMPORT_PENDING_MAX_UPLOADS = 1
    mine, theirs = Client(), Client()
    mine.force_login(lead)
    theirs.force_login(staff)
    content = jsonl([{"prompt": "p"}])
    assert upload(mine, task, content).status_code == 302
    assert upload(theirs, task, content).status_code == 302  # another user's upload does not count against mine


def test_a_refused_upload_replaces_nothing(client, lead, task, settings):
    small, big = jsonl([{"prompt": "p"}]), jsonl([{"prompt": "p" * 1000}])
    settings.IMPORT_PENDING_MAX_BYTES = 5 * len(small) + 100
    client.force_login(lead)
    for _ in range(5):
        assert upload(client, task, small).status_code == 302
    before = dict(client.session["pairsmith_imports"])
    refused = upload(client, task, big)  # would replace the oldest, but is over the bytes all the same
    assertContains(refused, "(IMPORT_PENDING_MAX_BYTES)")
    assert client.session["pairsmith_imports"] == before  # the session's uploads are all still there
    assert len(list((settings.VAR_DIR / "imports").glob("*.upload"))) == 5
