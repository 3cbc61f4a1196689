"""Per-user rate limits on writes (pairsmith/ratelimit.py), counted in the real cache: Redis when REDIS_URL is set.

A person over the limit gets 429 with what happened and when to try again, and nothing is stored; an annotator
autosaving every two seconds never meets the limit. Time is moved with time-machine, never waited for. The limits
are off in the other tests (conftest.py): each test here sets those it is about.
"""

import itertools
import socket
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.cache import cache
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate import services
from annotate.models import Example, Revision, Role
from exports.models import ApiToken, Export
from pairsmith import settings as deployed  # the settings module's own values: a deployment's defaults
from pairsmith.ratelimit import rate_limit_hit
from reviews.models import Verdict
from tests.conftest import _member, redis_available
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
# Twenty seconds into a clock minute: the window has 40 seconds left.
START = datetime(2025, 3, 4, 9, 30, 20, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def draft(task, annotator):
    example = ExampleFactory(task=task, instruction="How do I pair the Skylark remote?")
    example.claimed_by = annotator
    example.claim_expires_at = START + timedelta(hours=1)
    example.save()
    return example


def _save(client, task, example, text: str, version: int, **headers):
    url = reverse("annotate:save", args=[task.slug, example.uuid])
    return client.post(url, {"completion": text, "kind": "happy", "version": version, "autosave": "1"}, headers=headers)


_TEXTS = itertools.count()


def _saves(client, task, example, count: int, *, first_version: int = 1) -> int:
    """`count` stored saves of texts never saved before; the version after them."""
    version = first_version
    for i in range(count):
        text = f"Hold the pairing button for {next(_TEXTS)} seconds."
        response = _save(client, task, example, text, version, **HTMX)
        assert response.status_code == 200 and "data-saved-version" in response.content.decode(), i
        version += 1
    return version


# --- the limit on the editor's saves ------------------------------------------------------------------------------


def test_over_the_limit_an_autosave_is_refused_with_429_in_the_status_line_and_nothing_is_stored(
    client, settings, clock, task, annotator, draft
):
    settings.RATE_LIMIT_WRITES = 3
    client.force_login(annotator)
    version = _saves(client, task, draft, 3)
    revisions = Revision.objects.count()

    response = _save(client, task, draft, "A fourth, different text.", version, **HTMX)

    assert response.status_code == 429
    assert response["Retry-After"] == "40"  # the rest of this clock minute
    html = response.content.decode()
    assert "<html" not in html  # the editor's status line, which the editor swaps in (app.js lets a 429 in)
    assert 'id="save-status"' in html and "data-saved-version" not in html
    assert "Not saved: Too many changes (saves, submits, verdicts, …): the limit is 3 a minute per person." in html
    assert "Nothing was stored; try again in 40 seconds." in html
    assert Revision.objects.count() == revisions
    draft.refresh_from_db()
    assert draft.version == version and draft.completion.startswith("Hold the pairing button for ")


def test_the_next_minute_saves_again_and_refused_requests_do_not_count(client, settings, clock, task, annotator, draft):
    settings.RATE_LIMIT_WRITES = 2
    client.force_login(annotator)
    version = _saves(client, task, draft, 2)
    for _ in range(5):  # a client that does not wait
        assert _save(client, task, draft, "Again and again.", version, **HTMX).status_code == 429
    settings.RATE_LIMIT_WRITES = 3  # the refusals did not count: one more fits into this minute
    version = _saves(client, task, draft, 1, first_version=version)
    assert _save(client, task, draft, "Once more.", version, **HTMX).status_code == 429

    clock.move_to(START + timedelta(seconds=40))  # the next minute opens
    _saves(client, task, draft, 3, first_version=version)


def test_the_default_limits_are_generous():
    assert (deployed.RATE_LIMIT_WRITES, deployed.RATE_LIMIT_FEEDBACK, deployed.RATE_LIMIT_JOBS) == (120, 300, 30)


def test_an_annotator_autosaving_every_two_seconds_is_never_refused(client, settings, clock, task, annotator, draft):
    # The default limit, through the views: 61 saves at one every two seconds span three clock minutes.
    settings.RATE_LIMIT_WRITES = deployed.RATE_LIMIT_WRITES
    client.force_login(annotator)
    version = 1
    for i in range(61):
        response = _save(client, task, draft, f"Text {i}", version, **HTMX)
        assert response.status_code == 200, (i, response.content.decode()[:300])
        version += 1
        clock.shift(2)


def test_an_hour_of_autosaves_every_two_seconds_stays_under_the_default_limit(settings, clock, annotator):
    # The counting alone (the views above): an hour at one save every two seconds, 30 a minute, none refused; then
    # a burst of 120 in one minute is the most that passes.
    settings.RATE_LIMIT_WRITES = deployed.RATE_LIMIT_WRITES
    for _ in range(3600 // 2):
        assert rate_limit_hit(user_id=annotator.pk, scope="write") is None
        clock.shift(2)
    clock.move_to(START + timedelta(days=1))
    passed = sum(rate_limit_hit(user_id=annotator.pk, scope="write") is None for _ in range(200))
    assert passed == 120


def test_each_person_has_their_own_count(client, settings, clock, task, annotator, draft):
    settings.RATE_LIMIT_WRITES = 1
    client.force_login(annotator)
    version = _saves(client, task, draft, 1)
    assert _save(client, task, draft, "Second.", version, **HTMX).status_code == 429
    other = _member(task, "ines", Role.ANNOTATOR)
    theirs = ExampleFactory(task=task, claimed_by=other, claim_expires_at=START + timedelta(hours=1))
    client.force_login(other)
    _saves(client, task, theirs, 1)


def test_scopes_are_counted_apart_and_reading_is_never_counted(client, settings, clock, task, annotator, draft):
    settings.RATE_LIMIT_WRITES, settings.RATE_LIMIT_FEEDBACK = 1, deployed.RATE_LIMIT_FEEDBACK
    client.force_login(annotator)
    _saves(client, task, draft, 1)
    feedback = reverse("annotate:feedback", args=[task.slug, draft.uuid])
    for _ in range(5):  # the checks as the annotator types have their own, larger limit
        assert client.post(feedback, {"completion": "Hold it."}, headers=HTMX).status_code == 200
    for _ in range(5):  # opening pages is no write
        assert client.get(reverse("annotate:edit", args=[task.slug, draft.uuid])).status_code == 200
        assert client.get(reverse("annotate:write_new", args=[task.slug])).status_code == 200


def test_the_feedback_limit_answers_in_the_feedback_area(client, settings, clock, task, annotator, draft):
    settings.RATE_LIMIT_FEEDBACK = 2
    client.force_login(annotator)
    url = reverse("annotate:feedback", args=[task.slug, draft.uuid])
    for _ in range(2):
        assert client.post(url, {"completion": "Hold it."}, headers=HTMX).status_code == 200
    response = client.post(url, {"completion": "Hold it."}, headers=HTMX)
    assert response.status_code == 429
    assertContains(response, '<div id="feedback"', status_code=429)
    assertContains(response, "Too many checks of your text: the limit is 2 a minute per person.", status_code=429)


def test_a_limit_of_zero_turns_the_scope_off(client, settings, clock, task, annotator, draft):
    settings.RATE_LIMIT_WRITES, settings.RATE_LIMIT_FEEDBACK, settings.RATE_LIMIT_JOBS = 0, 1, 1
    client.force_login(annotator)
    _saves(client, task, draft, 5)


# --- the other writes: submit, verdicts, write-new, jobs ------------------------------------------------------------


def test_a_plain_submit_over_the_limit_is_a_429_page_and_submits_nothing(
    client, settings, clock, task, annotator, draft
):
    settings.RATE_LIMIT_WRITES = 1
    client.force_login(annotator)
    version = _saves(client, task, draft, 1)
    url = reverse("annotate:submit", args=[task.slug, draft.uuid])
    response = client.post(url, {"completion": "Hold it for ten seconds.", "kind": "happy", "version": version})
    assert response.status_code == 429
    assertContains(response, "<html", status_code=429)
    assertContains(response, "Too many changes (saves, submits, verdicts, …)", status_code=429)
    assertContains(response, "try again in 40 seconds", status_code=429)
    draft.refresh_from_db()
    assert draft.status == Example.Status.DRAFT and draft.version == version
    assert not Revision.objects.filter(reason="submit").exists()


def test_an_htmx_verdict_over_the_limit_keeps_the_page_and_shows_a_notice(client, settings, clock, task, reviewer):
    settings.RATE_LIMIT_WRITES = 1
    author = _member(task, "ana", Role.ANNOTATOR)
    first, second = (
        services.example_create(
            task=task, fields={"instruction": f"Question {i}?"}, completion=f"Answer {i}.", source="written",
            status=Example.Status.SUBMITTED, author=author,
        )
        for i in range(2)
    )  # fmt: skip
    client.force_login(reviewer)
    for example, expected in ((first, 200), (second, 429)):
        url = reverse("reviews:decide", args=[task.slug, example.uuid])
        response = client.post(url, {"decision": "approve", "version": example.version}, headers=HTMX)
        assert response.status_code == expected
    # htmx leaves the decide form in place (HX-Reswap: none) and puts the notice into the page's notice area.
    assert response["HX-Reswap"] == "none"
    html = response.content.decode()
    assert 'id="rate-limit-notice"' in html and 'hx-swap-oob="true"' in html
    assert "Too many changes (saves, submits, verdicts, …): the limit is 1 a minute per person." in html
    assert Verdict.objects.filter(example=second).count() == 0
    second.refresh_from_db()
    assert second.status == Example.Status.SUBMITTED


def test_every_page_has_the_notice_area_htmx_fills(client, task, annotator, draft):
    client.force_login(annotator)
    assertContains(client.get(reverse("annotate:edit", args=[task.slug, draft.uuid])), 'id="rate-limit-notice"')


def test_writing_new_examples_is_limited(client, settings, clock, task, annotator):
    settings.RATE_LIMIT_WRITES = 2
    client.force_login(annotator)
    url = reverse("annotate:write_new", args=[task.slug])
    for i in range(3):
        response = client.post(url, {"instruction": f"Edge case {i}?", "completion": "No.", "kind": "edge"})
        assert response.status_code == (302 if i < 2 else 429)
    assert Example.objects.filter(task=task).count() == 2


def _start_export(client, task):
    return client.post(reverse("exports:create", args=[task.slug]), {"export_format": "alpaca", "validation_ratio": 0})


def _create_token(client, task):
    return client.post(reverse("exports:tokens"), {"name": "nightly pipeline"})


def _upload(client, task):
    from django.core.files.uploadedfile import SimpleUploadedFile

    file = SimpleUploadedFile("data.jsonl", b'{"instruction": "Hi?", "completion": "Hello."}\n')
    return client.post(reverse("imports:upload", args=[task.slug]), {"file": file, "file_format": "jsonl"})


def _files(folder) -> set:
    return {path for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    ("start", "count"),
    [
        (_start_export, lambda task, var: Export.objects.filter(task=task).count()),
        (_create_token, lambda task, var: ApiToken.objects.count()),
        (_upload, lambda task, var: _files(var)),  # a refused upload leaves no file
    ],
    ids=["export", "token", "import upload"],
)
def test_jobs_and_tokens_have_their_own_limit(client, settings, clock, tmp_path, task, lead, start, count):
    settings.RATE_LIMIT_JOBS = 1
    settings.VAR_DIR = tmp_path / "var"
    services.example_create(task=task, fields={"instruction": "Q?"}, completion="A.", status="approved")
    client.force_login(lead)
    first = start(client, task)
    assert first.status_code in (200, 302), first.content.decode()[:500]
    before = count(task, tmp_path)
    response = start(client, task)
    assert response.status_code == 429
    assertContains(response, "Too many imports, exports and new API tokens: the limit is 1 a minute", status_code=429)
    assert count(task, tmp_path) == before


def test_without_a_login_the_limit_is_never_what_answers(client, settings, clock, task, draft):
    settings.RATE_LIMIT_WRITES = 1
    for _ in range(3):
        response = _save(client, task, draft, "Anonymous.", 1)
        assert response.status_code == 302 and response.url.startswith("/login/")


# --- the cache: shared by every web node, and never in the way when it is down ---------------------------------


def test_with_redis_url_the_counts_live_in_redis_where_every_web_node_reads_them(
    client, settings, clock, task, annotator, draft
):
    redis_available()
    import redis

    assert django_settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    settings.RATE_LIMIT_WRITES = 2
    client.force_login(annotator)
    version = _saves(client, task, draft, 2)
    # Another web node is another process with its own client: it reads the same count from Redis.
    window = int(START.timestamp()) // 60
    key = cache.make_and_validate_key(f"ratelimit:write:{annotator.pk}:{window}")
    other_node = redis.Redis.from_url(django_settings.REDIS_URL)
    assert int(other_node.get(key)) == 2
    other_node.set(key, 0)  # what another node would see, reset: this node follows it
    _saves(client, task, draft, 2, first_version=version)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # free once closed: nothing listens there


def test_when_redis_is_down_writes_go_on_and_a_warning_is_logged(
    client, settings, clock, task, annotator, draft, caplog
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.RATE_LIMIT_WRITES = 1
    client.force_login(annotator)
    _saves(client, task, draft, 3)  # over the limit, but nothing can count: the saves are stored
    assert Revision.objects.filter(example=draft).count() == 3
    assert "Rate limit of write not checked, the cache is unreachable" in caplog.text
