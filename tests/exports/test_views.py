"""The exports pages, downloads and the token API: who may see what, fragments, bad input, query counts."""

from hashlib import sha256

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import Role
from exports import services
from exports.models import ApiToken, Export
from pairsmith.jobs import QUEUE_UNREACHABLE, JobState

from .conftest import approve, build, version_folder

pytestmark = pytest.mark.django_db

READERS = {Role.LEAD, Role.REVIEWER}
LEADS = {Role.LEAD}
# name: (method, needs an export, roles allowed)
VIEWS = {
    "exports:list": ("get", False, READERS),
    "exports:create": ("post", False, LEADS),
    "exports:detail": ("get", True, READERS),
    "exports:status": ("get", True, READERS),
    "exports:cancel": ("post", True, LEADS),
    "exports:download": ("get", True, READERS),
}


@pytest.fixture
def export(task, lead):
    approve(task, 12)
    return build(task, user=lead, validation_ratio=0.25)


def url_of(name: str, task, export=None) -> str:
    if name == "exports:download":
        return reverse(name, args=[task.slug, export.version, "train.jsonl"])
    if export is not None:
        return reverse(name, args=[task.slug, export.version])
    return reverse(name, args=[task.slug])


def call(client, name: str, task, export):
    method, _, _ = VIEWS[name]
    url = url_of(name, task, export if VIEWS[name][1] else None)
    return client.get(url) if method == "get" else client.post(url, {"export_format": "alpaca"})


@pytest.mark.parametrize("name", VIEWS)
def test_anonymous_is_sent_to_login(client, task, export, name):
    response = call(client, name, task, export)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", VIEWS)
def test_outsider_gets_404(client, task, export, outsider, name):
    client.force_login(outsider)
    assert call(client, name, task, export).status_code == 404


@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize("persona", ["annotator", "reviewer", "lead"])
def test_role_decides_between_page_and_403(client, request, task, export, name, persona):
    client.force_login(request.getfixturevalue(persona))
    status = call(client, name, task, export).status_code
    if persona in VIEWS[name][2]:
        assert status in (200, 302), (name, persona, status)
    else:
        assert status == 403, (name, persona, status)


def test_exports_of_another_task_are_404(client, task, other_task, lead):
    approve(other_task, 3)
    theirs = build(other_task)
    client.force_login(lead)
    assert client.get(reverse("exports:detail", args=[task.slug, theirs.version])).status_code == 404
    assert client.get(reverse("exports:detail", args=[other_task.slug, theirs.version])).status_code == 404


def test_list_shows_versions_with_counts_sizes_checksums_and_changes(client, task, lead, export):
    approve(task, 4, start=100)
    second = build(task, user=lead, validation_ratio=0.25)
    client.force_login(lead)
    response = client.get(reverse("exports:list", args=[task.slug]))
    for version in (export, second):
        for meta in version.files.values():
            assertContains(response, meta["sha256"])
    assertContains(response, f"<dd>{second.counts['train']}</dd>", html=False)
    assertContains(response, "Compared with v1:")
    assertContains(response, "4 added</a>")
    assertContains(response, "No earlier version in this format with these filters: nothing to compare with.")
    assertContains(response, reverse("exports:download", args=[task.slug, 2, "manifest.json"]))
    assertContains(response, 'name="export_format"')  # the lead's form
    assertNotContains(response, 'hx-trigger="every')  # nothing live, nothing polls (the header badge loads once)


def test_reviewer_sees_versions_but_no_form(client, task, reviewer, export):
    client.force_login(reviewer)
    response = client.get(reverse("exports:list", args=[task.slug]))
    assertContains(response, "v1")
    assertNotContains(response, 'name="export_format"')


def test_list_page_query_count_does_not_grow_with_versions(client, task, lead, django_assert_num_queries):
    approve(task, 3)
    build(task, user=lead)
    client.force_login(lead)
    url = reverse("exports:list", args=[task.slug])
    client.get(url)  # warm the session
    # A fixed number, whatever the versions; one of them reads the task's tokenizer (trainer preflight).
    with django_assert_num_queries(6):
        client.get(url)
    for _ in range(5):
        build(task, user=lead)
    with django_assert_num_queries(6):
        response = client.get(url)
    assert response.content.count(b'class="card export"') == 6


def test_live_export_polls_and_the_finished_fragment_stops(client, task, lead):
    approve(task, 3)
    export = services.export_request(task=task, export_format="alpaca", user=lead)
    client.force_login(lead)
    url = reverse("exports:status", args=[task.slug, export.version])
    page = client.get(reverse("exports:list", args=[task.slug]))
    assertContains(page, f'hx-get="{url}" hx-trigger="every 2s" hx-swap="outerHTML"')
    Export.objects.filter(pk=export.pk).update(state=JobState.RUNNING, progress=1, total=3)
    running = client.get(url, headers={"HX-Request": "true"})
    assertContains(running, 'hx-trigger="every 2s"')
    assertContains(running, '<progress max="3" value="1"')
    assertContains(running, "Cancel")
    assertNotContains(running, "<html")
    from exports.tasks import export_build_task

    Export.objects.filter(pk=export.pk).update(state=JobState.QUEUED)
    export_build_task(job_id=export.pk)
    done = client.get(url, headers={"HX-Request": "true"})
    assertNotContains(done, 'hx-trigger="every')
    assertContains(done, f'id="export-{export.version}"')
    assertContains(done, "Succeeded")


def test_lead_starts_an_export_and_the_job_is_enqueued(client, task, lead, django_capture_on_commit_callbacks):
    approve(task, 3)
    client.force_login(lead)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("exports:create", args=[task.slug]),
            {"export_format": "prompt-completion", "validation_ratio": "0.3", "kinds": ["happy", "edge"]},
        )
    assert response.status_code == 302 and response.url == reverse("exports:list", args=[task.slug])
    export = Export.objects.get(task=task)
    assert (export.format, export.validation_ratio, export.state) == ("prompt-completion", 0.3, "queued")
    assert export.filters["kinds"] == ["edge", "happy"] and export.created_by == lead
    assert len(callbacks) == 1  # job_send: the message goes out after commit


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"export_format": "alpaca", "validation_ratio": "1"}, "Ensure this value is less than or equal to 0.99."),
        ({"export_format": "alpaca", "validation_ratio": "abc"}, "Enter a number."),
        ({"export_format": "csv", "validation_ratio": "0.1"}, "Select a valid choice. csv is not one of"),
        ({"export_format": "alpaca", "validation_ratio": "0.1", "kinds": ["nope"]}, "Select a valid choice. nope"),
    ],
)
def test_bad_input_is_shown_and_nothing_is_queued(client, task, lead, data, message):
    approve(task, 3)
    client.force_login(lead)
    response = client.post(reverse("exports:create", args=[task.slug]), data)
    assertContains(response, message)
    assert not Export.objects.exists()


def test_nothing_approved_is_a_clear_error(client, task, lead):
    client.force_login(lead)
    response = client.post(
        reverse("exports:create", args=[task.slug]), {"export_format": "alpaca", "validation_ratio": "0.1"}
    )
    assertContains(response, "Nothing to export: no approved examples yet.")
    assert not Export.objects.exists()


def test_queued_export_shows_why_it_waits(client, task, lead):
    approve(task, 3)
    export = services.export_request(task=task, export_format="alpaca", user=lead)
    Export.objects.filter(pk=export.pk).update(notice=QUEUE_UNREACHABLE)
    client.force_login(lead)
    assertContains(client.get(reverse("exports:list", args=[task.slug])), QUEUE_UNREACHABLE)


def test_failed_export_shows_reasons_escaped(client, task, lead):
    approve(task, 1, messages=[{"role": "<script>alert(1)</script>", "content": "x"}])
    export = build(task, user=lead)
    assert export.state == JobState.FAILED
    client.force_login(lead)
    response = client.get(reverse("exports:list", args=[task.slug]))
    assertContains(response, "&lt;script&gt;alert(1)&lt;/script&gt;")
    assertNotContains(response, "<script>alert(1)")
    assertContains(response, '<div class="error" role="alert" hx-disable>')


def test_lead_cancels_a_live_export(client, task, lead):
    approve(task, 3)
    export = services.export_request(task=task, export_format="alpaca", user=lead)
    client.force_login(lead)
    response = client.post(reverse("exports:cancel", args=[task.slug, export.version]), follow=True)
    assertContains(response, f"Export v{export.version} cancelled.")
    export.refresh_from_db()
    assert export.state == JobState.CANCELLED
    again = client.post(reverse("exports:cancel", args=[task.slug, export.version]), follow=True)
    assertContains(again, "has already cancelled")


def test_download_streams_the_file(client, task, reviewer, export):
    client.force_login(reviewer)
    for name in ("train.jsonl", "validation.jsonl", "manifest.json", "README.md"):
        response = client.get(reverse("exports:download", args=[task.slug, export.version, name]))
        assert response.status_code == 200 and response.streaming
        body = b"".join(response.streaming_content)
        assert sha256(body).hexdigest() == export.files[name]["sha256"]
        assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["Content-Type"] == "text/markdown; charset=utf-8"


@pytest.mark.parametrize("name", ["settings.py", "..", ".train.index", "train.jsonl.tmp", "TRAIN.JSONL", "%2e%2e"])
def test_download_refuses_other_file_names(client, task, lead, export, name):
    (version_folder(export) / "settings.py").write_text("SECRET")
    client.force_login(lead)
    assert client.get(reverse("exports:download", args=[task.slug, export.version, name])).status_code == 404


def test_download_path_traversal_is_refused(client, task, lead, export):
    client.force_login(lead)
    base = reverse("exports:download", args=[task.slug, export.version, "x"])[:-1]
    for tail in ("../../../pairsmith/settings.py", "..%2F..%2Fmanifest.json", "%2e%2e/v1/train.jsonl"):
        assert client.get(base + tail).status_code == 404, tail


def test_no_download_of_an_unfinished_or_failed_export(client, task, lead):
    approve(task, 2)
    queued = services.export_request(task=task, export_format="alpaca", user=lead)
    client.force_login(lead)
    assert client.get(reverse("exports:download", args=[task.slug, queued.version, "train.jsonl"])).status_code == 404


def test_detail_browses_changes(client, task, lead, monkeypatch):
    monkeypatch.setattr("exports.views.CHANGES_PER_PAGE", 5)
    examples = approve(task, 10)
    build(task, user=lead)
    approve(task, 7, start=100, instruction="A <b>new</b> question")
    type(examples[0]).objects.filter(pk=examples[0].pk).update(completion="Changed.")
    build(task, user=lead)
    client.force_login(lead)
    url = reverse("exports:detail", args=[task.slug, 2])
    page1 = client.get(url)
    assertContains(page1, "Changes since v1")
    assertContains(page1, "Page 1 of 2 · 8 changes")
    added = client.get(url, {"change": "added"})
    assertContains(added, "A &lt;b&gt;new&lt;/b&gt; question", count=5)
    assertContains(client.get(url, {"change": "added", "page": 2}), "A &lt;b&gt;new&lt;/b&gt; question", count=2)
    changed = client.get(url, {"change": "changed"})
    assertContains(changed, str(examples[0].uuid))
    type(examples[0]).objects.filter(pk=examples[0].pk).update(external_id="seed_task_<7>")
    named = client.get(url, {"change": "changed"})  # named by its external id, linked to its timeline
    timeline = reverse("reviews:example", args=[task.slug, examples[0].uuid])
    assertContains(named, f'<a href="{timeline}" title="{examples[0].uuid}">seed_task_&lt;7&gt;</a>', html=True)
    assert client.get(url, {"change": "bogus"}).status_code == 200  # not a lookup: falls back to all


def test_task_page_links_exports_for_leads_and_reviewers(client, task, lead, reviewer, annotator):
    link = reverse("exports:list", args=[task.slug])
    for user, shown in ((lead, True), (reviewer, True), (annotator, False)):
        client.force_login(user)
        response = client.get(reverse("annotate:task_detail", args=[task.slug]))
        assert (link in response.content.decode()) is shown, user


# --- tokens and the API -------------------------------------------------------------------------------------------


def make_token(user, name="pipeline") -> str:
    return services.token_create(user=user, name=name)[1]


def api(client, task, file="train.jsonl", version="latest", token=None, header=None):
    path = f"/api/tasks/{task.slug}/exports/{version}/{file}"
    headers = {"Authorization": header if header is not None else f"Bearer {token}"} if (token or header) else {}
    return client.get(path, headers=headers)


def test_token_downloads_latest_and_versions(client, task, lead, reviewer):
    approve(task, 6)
    first = build(task, user=lead)
    approve(task, 2, start=50)
    second = build(task, user=lead)
    services.export_request(task=task, export_format="alpaca", user=lead)  # v3, queued: not "latest"
    token = make_token(reviewer)
    latest = api(client, task, token=token)
    assert latest.status_code == 200
    assert sha256(b"".join(latest.streaming_content)).hexdigest() == second.files["train.jsonl"]["sha256"]
    v1 = api(client, task, version="v1", file="manifest.json", token=token)
    assert sha256(b"".join(v1.streaming_content)).hexdigest() == first.files["manifest.json"]["sha256"]
    assert api(client, task, version="v3", token=token).status_code == 404
    assert api(client, task, version="v9", token=token).status_code == 404
    assert api(client, task, file="secrets.txt", token=token).status_code == 404
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer psk_not-a-real-token", "Token psk_x", "Basic bGVvOnB3", "psk_abc"]
)
def test_bad_tokens_get_401(client, task, export, header):
    response = api(client, task, header=header) if header else api(client, task)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_session_login_is_not_an_api_token(client, task, lead, export):
    client.force_login(lead)
    assert api(client, task).status_code == 401


def test_token_of_annotator_403_and_outsider_404(client, task, export, annotator, outsider):
    assert api(client, task, token=make_token(annotator)).status_code == 403
    assert api(client, task, token=make_token(outsider)).status_code == 404


def test_token_follows_the_users_roles(client, task, export, reviewer):
    from annotate.models import Membership

    token = make_token(reviewer)
    assert api(client, task, token=token).status_code == 200
    Membership.objects.filter(user=reviewer).delete()
    assert api(client, task, token=token).status_code == 404


def test_tokens_page_creates_shows_once_and_revokes(client, task, reviewer):
    client.force_login(reviewer)
    url = reverse("exports:tokens")
    response = client.post(url, {"name": "nightly training"})
    token = response.context["new_token"]
    assert token.startswith("psk_") and len(token) > 40
    assertContains(response, token)
    assert "no-store" in response["Cache-Control"]
    row = ApiToken.objects.get(user=reviewer)
    assert row.digest == sha256(token.encode()).hexdigest()
    assert token not in str(ApiToken.objects.values().get())  # stored hashed only
    listing = client.get(url)
    assertNotContains(listing, token)  # shown once
    assertContains(listing, row.prefix)
    assertContains(listing, task.name)  # what it reaches

    approve(task, 3)
    build(task)
    assert api(client, task, token=token).status_code == 200
    response = client.post(reverse("exports:token_revoke", args=[row.pk]), follow=True)
    assertContains(response, "revoked: it no longer works")
    assert api(client, task, token=token).status_code == 401


def test_a_user_cannot_revoke_anothers_token(client, task, lead, reviewer):
    make_token(reviewer)
    client.force_login(lead)
    row = ApiToken.objects.get()
    assert client.post(reverse("exports:token_revoke", args=[row.pk])).status_code == 404
    assert ApiToken.objects.get().revoked_at is None


def test_token_name_is_required(client, lead):
    client.force_login(lead)
    response = client.post(reverse("exports:tokens"), {"name": "  "})
    assertContains(response, "This field is required.")
    assert not ApiToken.objects.exists()


def test_inactive_user_token_stops_working(client, task, export, reviewer):
    token = make_token(reviewer)
    reviewer.is_active = False
    reviewer.save()
    assert api(client, task, token=token).status_code == 401


def test_lead_chooses_format_and_test_share(client, task, lead, django_capture_on_commit_callbacks):
    approve(task, 3)
    client.force_login(lead)
    page = client.get(reverse("exports:list", args=[task.slug]))
    assertContains(page, 'name="test_ratio"')
    assertContains(page, '<option value="sharegpt">ShareGPT (LLaMA-Factory)</option>', html=True)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("exports:create", args=[task.slug]),
            {"export_format": "sharegpt", "validation_ratio": "0.1", "test_ratio": "0.25"},
        )
    assert response.status_code == 302
    export = Export.objects.get(task=task)
    assert (export.format, export.validation_ratio, export.test_ratio) == ("sharegpt", 0.1, 0.25)


def test_shares_that_leave_nothing_to_train_are_refused(client, task, lead):
    approve(task, 3)
    client.force_login(lead)
    response = client.post(
        reverse("exports:create", args=[task.slug]),
        {"export_format": "alpaca", "validation_ratio": "0.6", "test_ratio": "0.4"},
    )
    assertContains(response, "The validation and test shares add up to 1 or more: nothing would be left to train on.")
    assert not Export.objects.exists()


def test_page_shows_contamination_escaped_and_the_test_count(client, task, lead):
    approve(task, 40, instruction="<b>Where</b> is my parcel?")  # the same prompt everywhere
    export = build(task, user=lead, validation_ratio=0.1, test_ratio=0.2)
    client.force_login(lead)
    response = client.get(reverse("exports:list", args=[task.slug]))
    assertContains(response, f'<dd data-testid="test-count">{export.counts["test"]}</dd>', html=True)
    assertContains(response, "Contamination:")
    assertContains(response, f"{export.contamination['exact']} train examples repeat a validation or test prompt")
    first = export.contamination["pairs"][0]
    assertContains(response, f"<code>{first['train']['uuid']}</code>", html=True)
    assertNotContains(response, "<b>Where</b>")


def test_blocked_export_shows_the_contamination_on_the_page(client, task, lead):
    task.contamination_blocks = True
    task.save()
    approve(task, 30, instruction="Where is my parcel?")
    export = build(task, user=lead, validation_ratio=0.2)
    assert export.state == JobState.FAILED
    client.force_login(lead)
    response = client.get(reverse("exports:list", args=[task.slug]))
    assertContains(response, "Contamination blocks this export (task setting)")
    assertContains(response, 'data-testid="contamination"')


def test_files_a_version_does_not_have_are_404_and_its_own_download(client, task, lead):
    approve(task, 30)
    plain = build(task, user=lead, validation_ratio=0.2)
    split = build(task, export_format="sharegpt", user=lead, validation_ratio=0.2, test_ratio=0.2)
    token = make_token(lead)
    for name in ("test.jsonl", "dataset_info.json"):
        missing = api(client, task, version=f"v{plain.version}", file=name, token=token)
        assert missing.status_code == 404 and missing.content == b"No such file in this export.\n"
        found = api(client, task, version=f"v{split.version}", file=name, token=token)
        assert found.status_code == 200
        assert b"".join(found.streaming_content) == (version_folder(split) / name).read_bytes()
