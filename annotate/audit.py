"""The audit log: who did what, recorded in the transaction of the action itself, and read by a task's leads. Also
how a successful login clears failed attempts (django-axes' handler), the other record of who tried what.

Call `audit_record` inside the service's `transaction.atomic`, after the action's own writes: when the action rolls
back, so does its event, and an event never describes something that did not happen.
"""

from dataclasses import dataclass

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt

from .models import AuditEvent, Task

Action = AuditEvent.Action
TARGET_MAX = AuditEvent._meta.get_field("target").max_length


def audit_record(
    *, task: Task | None, actor, action: str, target: object = "", detail: dict | None = None
) -> AuditEvent:
    """Record one event (task None: an account event, e.g. a token). Raise ValueError for an unknown action.

    `actor` None (or an anonymous user) means no person: a management command or the system. `target` is stored as
    short text (an example UUID, "v3", a username, a token prefix); `detail` as JSON (UUIDs and dates allowed).
    """
    if action not in Action.values:
        raise ValueError(f"Unknown audit action {action!r}; add it to AuditEvent.Action first.")
    if actor is not None and not actor.is_authenticated:
        actor = None
    return AuditEvent.objects.create(
        task=task, actor=actor, action=action, target=str(target)[:TARGET_MAX], detail=detail or {}
    )


@dataclass
class AuditPage:
    """One page of events, newest first, and the cursor of the next (older) page: None on the last page."""

    events: list[AuditEvent]
    older_than: int | None


def audit_page(*, task: Task, action: str = "", before: int | None = None, size: int = 50) -> AuditPage:
    """The task's events newest first, of one action (an allow-listed value) or all, older than event id `before`.

    Keyset pagination over the (task, [action,] -id) indexes: one query per page, however deep, and no COUNT.
    """
    events = AuditEvent.objects.filter(task=task).select_related("actor")
    if action:
        if action not in Action.values:
            raise ValueError(f"Unknown audit action {action!r}.")
        events = events.filter(action=action)
    if before is not None:
        events = events.filter(id__lt=before)
    rows = list(events.order_by("-id")[: size + 1])
    older_than = rows[size - 1].pk if len(rows) > size else None
    return AuditPage(rows[:size], older_than)


class LoginAttemptHandler(AxesDatabaseHandler):
    """Axes' database handler, except that a successful login clears only the failures against that username.

    Axes clears every failure matching the user or the client address (AXES_LOCKOUT_PARAMETERS has both): anyone with
    an account could then guess another account's password from one address and log in to their own account every
    few guesses to clear the count. A user's successful login proves nothing about other accounts' failures.
    """

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        username = get_client_username(request, credentials)
        if not username:
            return 0
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count
