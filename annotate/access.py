"""Who may do what on a task. Every view goes through `task_for` (or the `task_role` decorator).

A task the user is not a member of does not exist for them (404); a member without the needed role gets 403.
Staff may do everything.
"""

from collections.abc import Callable
from functools import wraps
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone

from .models import Example, Membership, Role, Skip, Task


def roles_on(user, task: Task) -> set[str]:
    """The user's roles on the task (staff hold all of them)."""
    if user.is_staff:
        return set(Role.values)
    return set(Membership.objects.filter(task=task, user=user).values_list("role", flat=True))


def task_for(user, slug: str, *roles: str) -> tuple[Task, set[str]]:
    """The task and the user's roles. Raise Http404 for non-members, PermissionDenied without a role in `roles`."""
    task = get_object_or_404(Task, slug=slug)
    held = roles_on(user, task)
    if not held:  # not a member: the task does not exist for them
        raise Http404("No such task.")
    if roles and not held.intersection(roles):
        raise PermissionDenied(f"This page needs the {' or '.join(roles)} role on {task.name}.")
    return task, held


def task_role(*roles: str) -> Callable:
    """Decorate a view taking `slug`: log-in required, the task loaded for the user's roles, passed as `task`."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
            task, held = task_for(request.user, slug, *roles)
            request.task_roles = held
            return view(request, *args, task=task, **kwargs)

        return wrapper

    return decorator


def can_create_tasks(user) -> bool:
    """Staff, and users who lead at least one task, may create tasks."""
    return user.is_staff or Membership.objects.filter(user=user, role=Role.LEAD).exists()


def may_open_in_editor(user, example: Example, roles: set[str]) -> bool:
    """Whether `user` (holding `roles` on the example's task) may open the example in the editor: their own (they
    wrote it), held by them, free for them to take (new, nobody's hold, not skipped by them), or any, for a lead."""
    if Role.LEAD in roles or example.author_id == user.pk:
        return True
    now = timezone.now()
    live_claim = example.claimed_by_id is not None and example.claim_expires_at is not None
    live_claim = live_claim and example.claim_expires_at > now
    if live_claim:
        return example.claimed_by_id == user.pk
    if example.status != Example.Status.NEW or example.author_id is not None:
        return False
    return not Skip.objects.filter(example=example, user=user).exists()


def example_for_editor(request: HttpRequest, task: Task, uuid: UUID) -> Example:
    """The example `uuid` of `task`, as the editor's views (edit, save, feedback, submit, skip) may use it for the
    request's user (see may_open_in_editor; `task_role` set their roles). Raise Http404 otherwise, as for another
    task's example: another annotator's draft, and the comment of its last flag, are not shown to them."""
    example = get_object_or_404(Example.objects.select_related("template", "task"), task=task, uuid=uuid)
    if not may_open_in_editor(request.user, example, request.task_roles):
        raise Http404("No such example.")
    return example
