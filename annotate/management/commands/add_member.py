from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotate import services
from annotate.models import Role, Task

from .create_task import _describe


class Command(BaseCommand):
    help = "Give a user a role on a task, creating the user when missing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", default=None, help="Set (or reset) the user's password.")

    def handle(self, *args, slug, username, role, password, **options) -> None:
        task = Task.objects.filter(slug=slug).first()
        if task is None:
            raise CommandError(
                f"No task with slug {slug!r}. Create it with: python manage.py create_task {slug} --name NAME"
            )
        try:
            with transaction.atomic():
                user, user_created = services.user_get_or_create(username=username, password=password)
                _, role_added = services.membership_add(task=task, user=user, role=role)
        except ValidationError as exc:
            raise CommandError(_describe(exc)) from exc
        if user_created:
            note = "with the given password" if password else "without a password (set one with --password)"
            self.stdout.write(f"Created user {username!r} {note}.")
        elif password:
            self.stdout.write(f"Set a new password for {username!r}.")
        if role_added:
            self.stdout.write(f"{username} is now {role} on {task.slug}.")
        else:
            self.stdout.write(f"{username} was already {role} on {task.slug}; nothing changed.")
