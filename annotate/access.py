"""Who may do what on a task. Every view goes through `task_for` (or the `task_role` decorator).

A task the user is not a member of does not exist for them (404); a member without the needed role gets 403.
Staff may do everything.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from .models import Membership, Role, Task


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
