"""GET never takes, renews or gives back an example or a pair: a link from another site (an <img>, a prefetch, a mail)
cannot claim, lease or skip anything in a user's name. Taking the next example, the next pair (and passing over one)
and reserving a pair from the queue are POSTs, whose pages redirect to addresses that change nothing on GET.

Every GET route of the resolver is swept as each persona (plain and htmx), on a task where the reviewers hold a lease
that is about to run out (a renewal would show) and the annotator holds nothing; then the pages that replaced the
claiming GETs, and what the lease still protects."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import Example, Revision, Role, Skip, Transition
from reviews import services as review_services
from reviews.models import Verdict
from tests.conftest import _member
from tests.factories import ExampleFactory
from tests.reviews.conftest import submit_new
from tests.test_authorization_matrix import AN, CHECKED, EXPECTED, LE, RE_, ST, _client_for, _url, make_world

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def world(settings, tmp_path, task, other_task, annotator, reviewer, lead, outsider, staff):
    """The authorization matrix's two tasks full of objects of every kind."""
    return make_world(settings, tmp_path, task, other_task, annotator, reviewer, lead, outsider, staff)


@pytest.fixture
def second_reviewer(task):
    return _member(task, "remy", Role.REVIEWER)


def state() -> dict:
    """Everything a claim, a lease, a skip or a verdict would change."""
    return {
        "examples": list(Example.objects.order_by("id").values()),
        "skips": list(Skip.objects.order_by("id").values()),
        "verdicts": list(Verdict.objects.order_by("id").values()),
        "transitions": list(Transition.objects.order_by("id").values()),
        "revisions": list(Revision.objects.order_by("id").values_list("id", "example_id", "example_version")),
    }


def _hold_briefly(example: Example, user) -> None:
    """`user` holds `example` for one more minute: a GET that renewed the lease would move claim_expires_at."""
    soon = timezone.now() + timedelta(minutes=1)
    Example.objects.filter(pk=example.pk).update(claimed_by=user, claim_expires_at=soon)


def _urls(world, persona: str) -> list[str]:
    own = world.own
    urls = []
    for name in CHECKED:
        rule = EXPECTED[name]
        if rule.api or rule.get == 405 or name in ("logout",):
            continue
        urls.append(_url(name, world, persona, slug_of=own, objects_of=own))
    slug = own.task.slug
    held = own.submitted.uuid
    urls += [  # the claiming GETs of before, with the parameters they took
        reverse("reviews:next", args=[slug]) + f"?skip={held}",
        reverse("reviews:next", args=[slug]) + "?order=risky&kind=happy",
        reverse("reviews:review", args=[slug, held]) + "?order=risky",
        reverse("reviews:previous", args=[slug]) + f"?before={held}",
    ]
    urls += [reverse("reviews:review", args=[slug, example.uuid]) for example in own.examples]
    urls += [reverse("annotate:edit", args=[slug, example.uuid]) for example in own.examples]
    return urls


@pytest.mark.parametrize("persona", [AN, RE_, LE, ST])
def test_no_get_anywhere_claims_leases_or_skips(world, persona):
    if persona != AN:  # an annotator holds nothing: "Annotate" would claim for them
        _hold_briefly(world.own.submitted, world.users[persona])
    client = _client_for(world, persona)
    before = state()
    answered = 0
    for url in _urls(world, persona):
        for headers in ({}, HTMX):
            response = client.get(url, headers=headers)
            assert response.status_code < 500, (url, response.status_code)
            answered += response.status_code in (200, 286, 302)
            assert state() == before, f"GET {url} as {persona} changed the database"
    assert answered > 20  # the sweep reached the pages, not only refusals


# --- annotating: GET shows, POST takes ------------------------------------------------------------------------


def test_get_annotate_offers_start_annotating_and_claims_nothing(client, task, annotator):
    example = ExampleFactory(task=task)
    client.force_login(annotator)
    url = reverse("annotate:work", args=[task.slug])
    page = client.get(url)
    assertContains(page, f'<form method="post" action="{url}">', html=False)
    assertContains(page, '<button type="submit" class="primary" autofocus data-start>Start annotating', html=False)
    assert Example.objects.get(pk=example.pk).claimed_by is None
    response = client.post(url)
    assert response.url == reverse("annotate:edit", args=[task.slug, example.uuid])
    assert Example.objects.get(pk=example.pk).claimed_by == annotator


def test_get_annotate_reopens_the_example_the_annotator_holds_without_renewing_it(client, task, annotator):
    ExampleFactory(task=task)
    held = ExampleFactory(task=task)
    _hold_briefly(held, annotator)
    expires = Example.objects.get(pk=held.pk).claim_expires_at
    client.force_login(annotator)
    response = client.get(reverse("annotate:work", args=[task.slug]))
    assert response.url == reverse("annotate:edit", args=[task.slug, held.uuid])
    assert Example.objects.get(pk=held.pk).claim_expires_at == expires
    assert not Example.objects.exclude(pk=held.pk).filter(claimed_by__isnull=False).exists()


def test_the_annotate_buttons_post(client, task, annotator):
    example = ExampleFactory(task=task)
    client.force_login(annotator)
    work = reverse("annotate:work", args=[task.slug])
    detail = client.get(reverse("annotate:task_detail", args=[task.slug]))
    assertContains(detail, f'<form method="post" action="{work}" class="inline">', html=False)
    assertNotContains(detail, f'href="{work}"')
    assertNotContains(client.get(reverse("annotate:my_work", args=[task.slug])), f'href="{work}"')
    client.post(work)
    editor = client.get(reverse("annotate:edit", args=[task.slug, example.uuid]))
    assertContains(editor, f'<form method="post" action="{work}" class="inline">', html=False)
    assertContains(editor, '<button type="submit" data-next title="Alt+N">Next →</button>', html=False)
    assertNotContains(editor, f'href="{work}"')


# --- reviewing: GET shows, POST leases -------------------------------------------------------------------------


def test_get_next_pair_offers_start_reviewing_and_leases_nothing(client, task, reviewer, annotator):
    for _ in range(3):
        submit_new(task, annotator)
    client.force_login(reviewer)
    url = reverse("reviews:next", args=[task.slug])
    page = client.get(url, {"kind": "happy"})
    assertContains(page, '<strong data-testid="waiting">3</strong> pairs waiting for you with these', html=False)
    assertContains(page, f'<form method="post" action="{url}?kind=happy">', html=False)
    assertContains(page, '<button type="submit" class="primary" autofocus data-start>Start reviewing', html=False)
    assert not Example.objects.filter(claimed_by__isnull=False).exists()
    response = client.post(url + "?kind=happy")
    first = Example.objects.order_by("id").first()
    assert response.url == reverse("reviews:review", args=[task.slug, first.uuid]) + "?kind=happy"
    assert Example.objects.get(pk=first.pk).claimed_by == reviewer


def test_get_next_pair_with_nothing_waiting_says_so_without_a_button(client, task, reviewer):
    client.force_login(reviewer)
    page = client.get(reverse("reviews:next", args=[task.slug]))
    assertContains(page, "Nothing is waiting for your review.")
    assertNotContains(page, "Start reviewing")


def test_the_review_page_takes_no_lease_and_a_verdict_needs_none(client, task, reviewer, annotator):
    example = submit_new(task, annotator)
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, example.uuid]))
    assertContains(page, 'id="decide"')
    assert Example.objects.get(pk=example.pk).claimed_by is None
    client.post(
        reverse("reviews:decide", args=[task.slug, example.uuid]), {"decision": "approve", "version": example.version}
    )
    assert Example.objects.get(pk=example.pk).status == Example.Status.APPROVED


def test_a_pair_read_by_get_can_still_be_handed_to_another_and_then_only_they_judge_it(
    client, task, reviewer, second_reviewer, annotator
):
    """The lease is what keeps two reviewers off one pair: "next" hands it to one, and the other's verdict is refused
    while that lease runs, whatever pages they had open."""
    example = submit_new(task, annotator)
    client.force_login(reviewer)
    client.get(reverse("reviews:review", args=[task.slug, example.uuid]))  # reading, no lease
    other = Client()
    other.force_login(second_reviewer)
    handed = other.post(reverse("reviews:next", args=[task.slug]))
    assert handed.url == reverse("reviews:review", args=[task.slug, example.uuid])
    refused = client.post(
        reverse("reviews:decide", args=[task.slug, example.uuid]), {"decision": "approve", "version": example.version}
    )
    assertContains(refused, "remy is reviewing this example right now")
    assert not Verdict.objects.exists()


def test_the_queues_review_button_reserves_the_pair_so_next_hands_it_to_nobody_else(
    client, task, reviewer, second_reviewer, annotator
):
    example = submit_new(task, annotator)
    client.force_login(reviewer)
    queue = client.get(reverse("reviews:queue", args=[task.slug]))
    url = reverse("reviews:review", args=[task.slug, example.uuid])
    assertContains(queue, f'<form method="post" action="{url}" class="inline">', html=False)
    assert client.post(url).url == url
    assert Example.objects.get(pk=example.pk).claimed_by == reviewer
    other = Client()
    other.force_login(second_reviewer)
    nothing = other.post(reverse("reviews:next", args=[task.slug]))
    assert nothing.url == reverse("reviews:queue", args=[task.slug])
    assert Example.objects.get(pk=example.pk).claimed_by == reviewer


def test_reserving_is_refused_quietly_on_own_work_and_on_a_pair_another_holds(
    client, task, reviewer, second_reviewer, annotator
):
    own = submit_new(task, reviewer)
    held = submit_new(task, annotator)
    review_services.review_take(example=held, reviewer=second_reviewer)
    client.force_login(reviewer)
    for example in (own, held):
        url = reverse("reviews:review", args=[task.slug, example.uuid])
        page = client.post(url, follow=True)
        assertNotContains(page, 'id="decide"')
    assert Example.objects.get(pk=own.pk).claimed_by is None
    assert Example.objects.get(pk=held.pk).claimed_by == second_reviewer


def test_the_next_and_take_buttons_of_the_review_screen_post(client, task, reviewer, annotator):
    example = submit_new(task, annotator)
    client.force_login(reviewer)
    page = client.get(reverse("reviews:review", args=[task.slug, example.uuid]) + "?kind=happy")
    url = reverse("reviews:next", args=[task.slug])
    assertContains(page, f'<form method="post" action="{url}?kind=happy" class="inline">', html=False)
    assertContains(page, f'<input type="hidden" name="skip" value="{example.uuid}">', html=False)
    assertNotContains(page, f'href="{url}')
