"""People's accounts: created by a task's lead (or staff) together with a membership, and a one-time link with which
the new member sets their own password.

The link is Django's password-reset token (`default_token_generator`): it is built from the user's password hash and
last login, so it stops working as soon as a password is set or the user logs in, and expires after
PASSWORD_RESET_TIMEOUT. Pairsmith never sees, shows or stores the password the member chooses.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .audit import Action, audit_record
from .models import Task
from .services import membership_add


@dataclass
class Invitation:
    """A member added to a task; `link` (a path) is set when the account was created now and waits for a password."""

    user: object
    created: bool
    link: str = ""


def set_password_link(user) -> str:
    """The path of the one-time page where `user` sets a password (valid until used or PASSWORD_RESET_TIMEOUT)."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("annotate:set_password", args=[uidb64, default_token_generator.make_token(user)])


@transaction.atomic
def member_invite(*, task: Task, actor, username: str, role: str, create: bool) -> Invitation:
    """Give `username` a role on `task`, creating the account first when `create` is set and it does not exist.

    Raise ValidationError when the account does not exist and `create` is off, or the name is not a valid username.
    A new account has no usable password until its owner opens the link; an existing account is never changed.
    """
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    created = False
    if user is None:
        if not create:
            raise ValidationError(
                f"No account is called “{username}”. Tick “Create the account” to make one.", code="no_such_user"
            )
        user = User(username=username)
        user.full_clean(exclude=["password"])  # the username validator: letters, digits and @/./+/-/_ only
        user.set_unusable_password()
        user.save()
        created = True
        audit_record(task=task, actor=actor, action=Action.ACCOUNT_CREATED, target=username, detail={"role": role})
    membership_add(task=task, user=user, role=role, actor=actor)
    return Invitation(user=user, created=created, link=set_password_link(user) if created else "")


def invitation_renew(*, task: Task, actor, user) -> str:
    """A new one-time link for a member of `task` who has never set a password. Raise ValidationError otherwise.

    Only an account that has no usable password yet (it was invited and never used its link) gets a new link: a lead
    must never be able to take over an account that someone already uses.
    """
    if not task.memberships.filter(user=user).exists():
        raise ValidationError("That person is not a member of this task.")
    if user.has_usable_password() or user.last_login is not None or user.is_staff:
        raise ValidationError(f"{user.username} has already set a password: only they can change it.")
    audit_record(task=task, actor=actor, action=Action.INVITATION_RENEWED, target=user.username)
    return set_password_link(user)
