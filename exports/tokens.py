"""Personal API tokens for pipelines: made and revoked by their user, acting on the tasks they lead or review."""

import secrets

from django.db import transaction
from django.utils import timezone

from annotate.audit import Action, audit_record
from annotate.models import Membership, Role, Task

from .models import ApiToken, token_digest

TOKEN_PREFIX = "psk_"


@transaction.atomic
def token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the token itself, which is shown once and never stored (the audit
    event holds its prefix only). Raise ValidationError for an empty or too long name."""
    name = (name or "").strip()
    token = "".join((TOKEN_PREFIX, secrets.token_urlsafe(32)))
    row = ApiToken(user=user, name=name, prefix=token[: len(TOKEN_PREFIX) + 6], digest=token_digest(token))
    row.full_clean()
    row.save()
    audit_record(
        task=None, actor=user, action=Action.TOKEN_CREATED, target=row.prefix, detail={"token": row.pk, "name": name}
    )
    return row, token


@transaction.atomic
def token_revoke(*, token: ApiToken, actor=None) -> bool:
    """Revoke the token; a revoked token never works again (ApiToken refuses to clear revoked_at). `actor` revoked it
    (None: a command). Idempotent: False, and no second audit event, when it was revoked already. Raises nothing."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        audit_record(
            task=None,
            actor=actor,
            action=Action.TOKEN_REVOKED,
            target=token.prefix,
            detail={"token": token.pk, "name": token.name, "owner": token.user.username},
        )
    return bool(revoked)


def token_active(*, raw: str) -> ApiToken | None:
    """The active token `raw` (its user active too), or None for a malformed, unknown or revoked one. Notes its use
    (one write a minute at most)."""
    raw = (raw or "").strip()
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.active().select_related("user").filter(digest=token_digest(raw)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_user(*, authorization: str):
    """The active user behind an `Authorization: Bearer <token>` header value, or None for a missing, malformed,
    unknown or revoked token."""
    scheme, _, raw = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token_active(raw=raw)
    return None if token is None else token.user


def token_tasks(*, user):
    """The tasks a token of `user` reaches: those they lead or review (staff: all), by name."""
    if user.is_staff:
        return Task.objects.all()
    task_ids = Membership.objects.filter(user=user, role__in=[Role.LEAD, Role.REVIEWER]).values("task_id")
    return Task.objects.filter(pk__in=task_ids)
