"""Revoking an API token is final and always audited: whoever revokes it (its user in the UI, staff in the admin),
the audit log has the event, and nothing (the admin, the model, a queryset update) brings the token back."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import AuditEvent
from exports import services
from exports.models import ApiToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
REVOKED = AuditEvent.Action.TOKEN_REVOKED


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", is_staff=True, is_superuser=True)


@pytest.fixture
def made(reviewer):
    """A token of the reviewer and the token itself."""
    return services.token_create(user=reviewer, name="nightly pipeline")


def works(raw: str) -> bool:
    return services.token_user(authorization=f"Bearer {raw}") is not None


def revocations() -> list[tuple]:
    return list(
        AuditEvent.objects.filter(action=REVOKED).order_by("id").values_list("actor__username", "target", "detail")
    )


def test_the_model_refuses_to_clear_revoked_at(made, reviewer):
    token, raw = made
    services.token_revoke(token=token, actor=reviewer)
    token.refresh_from_db()
    token.revoked_at = None
    with pytest.raises(ValidationError, match="A revoked token stays revoked"):
        token.save()
    token.refresh_from_db()
    assert token.revoked_at is not None and not works(raw)


def test_a_queryset_update_cannot_clear_it_either(made, reviewer):
    token, raw = made
    services.token_revoke(token=token, actor=reviewer)
    with pytest.raises(ValidationError, match="A revoked token stays revoked"):
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
    assert not works(raw)


def test_an_active_token_still_saves(made):
    token, raw = made
    token.name = "renamed"
    token.save()
    assert ApiToken.objects.get(pk=token.pk).name == "renamed" and works(raw)


def test_the_admin_shows_revoked_at_read_only_and_a_post_cannot_clear_it(client, admin_user, made, reviewer):
    token, raw = made
    services.token_revoke(token=token, actor=reviewer)
    client.force_login(admin_user)
    url = reverse("admin:exports_apitoken_change", args=[token.pk])
    page = client.get(url)
    assert page.status_code == 200
    assertNotContains(page, 'name="revoked_at_0"')  # no input: shown as text
    # What the old admin form posted to un-revoke: empty date and time.
    client.post(url, {"revoked_at_0": "", "revoked_at_1": "", "name": "back again", "_save": "Save"})
    token.refresh_from_db()
    assert token.revoked_at is not None and token.name == "nightly pipeline" and not works(raw)
    assert len(revocations()) == 1


def test_staff_revoke_in_the_admin_through_the_service_and_it_is_audited(client, admin_user, made, reviewer):
    token, raw = made
    second, _ = services.token_create(user=reviewer, name="already revoked")
    services.token_revoke(token=second, actor=reviewer)
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:exports_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk, second.pk]},
        follow=True,
    )
    assertContains(response, "Revoked 1 token; 1 was revoked already.")
    assert not works(raw)
    assert revocations() == [
        ("rita", second.prefix, {"token": second.pk, "name": "already revoked", "owner": "rita"}),
        ("ada", token.prefix, {"token": token.pk, "name": "nightly pipeline", "owner": "rita"}),
    ]


def test_the_admin_neither_adds_nor_deletes_tokens(client, admin_user, made):
    """Deleting an active token would revoke it with no event; a token is made by its user, who sees it once."""
    token, raw = made
    client.force_login(admin_user)
    assert client.get(reverse("admin:exports_apitoken_add")).status_code == 403
    assert client.post(reverse("admin:exports_apitoken_delete", args=[token.pk]), {"post": "yes"}).status_code == 403
    changelist = client.get(reverse("admin:exports_apitoken_changelist"))
    assertNotContains(changelist, "delete_selected")
    assert works(raw)


def test_revoking_in_the_ui_is_audited_once_and_final(client, made, reviewer):
    token, raw = made
    client.force_login(reviewer)
    client.post(reverse("exports:token_revoke", args=[token.pk]))
    client.post(reverse("exports:token_revoke", args=[token.pk]))
    assert revocations() == [("rita", token.prefix, {"token": token.pk, "name": "nightly pipeline", "owner": "rita"})]
    assert not works(raw)
