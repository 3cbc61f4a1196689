from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotate import services
from annotate.demo_data import DEMO_TASK, DEMO_TEMPLATE, demo_examples
from annotate.models import Example, Role, Task
from reviews.models import Verdict

User = get_user_model()

# Demo accounts only: printed on the console, and refused in production unless --allow-production.
DEMO_ACCOUNTS = [
    ("annotator", "annotate-demo-pairs", [Role.ANNOTATOR]),
    ("reviewer", "review-demo-pairs", [Role.REVIEWER]),
    ("lead", "lead-demo-pairs", [Role.LEAD, Role.REVIEWER]),
]


class Command(BaseCommand):
    help = "Load the demo task, its examples and the demo accounts. Running it again changes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quiet-accounts", action="store_true", help="Do not print the passwords.")
        parser.add_argument(
            "--allow-production", action="store_true", help="Load the demo even with DEBUG off (known passwords!)."
        )

    @transaction.atomic
    def handle(self, *args, quiet_accounts: bool = False, allow_production: bool = False, **options) -> None:
        # A real SECRET_KEY means a real deployment (DEBUG alone is not it: tests run with DEBUG off).
        if settings.SECRET_KEY != settings.DEVELOPMENT_SECRET_KEY and not allow_production:
            raise CommandError(
                "This is a production deployment (SECRET_KEY is set) and the demo accounts have published passwords. "
                "Pass --allow-production to load them anyway."
            )
        task = Task.objects.filter(slug=DEMO_TASK["slug"]).first()
        if task is None:
            task = services.task_create(**DEMO_TASK)
            services.template_save(task=task, values=DEMO_TEMPLATE)
            self.stdout.write(f"Created demo task {task.slug!r}: {task.name}.")
        else:
            self.stdout.write(f"Demo task {task.slug!r} already exists.")

        users = {}
        for username, password, roles in DEMO_ACCOUNTS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username)
                user.set_password(password)
                user.save()
            users[username] = user
            for role in roles:
                services.membership_add(task=task, user=user, role=role)

        existing = set(task.examples.exclude(external_id="").values_list("external_id", flat=True))
        created = 0
        for record in demo_examples():
            if record["external_id"] in existing:
                continue
            status = record["status"]
            example = services.example_create(
                task=task,
                fields=record,
                completion=record["completion"],
                kind=record["kind"],
                source=Example.Source.IMPORTED,
                status=status,
                external_id=record["external_id"],
                author=users["annotator"] if status != Example.Status.NEW else None,
            )
            if status == Example.Status.APPROVED:
                # An approved demo pair carries the reviewer's verdict, as a real one would.
                Verdict.objects.create(
                    example=example,
                    revision=example.revisions.get(),
                    example_version=example.version,
                    reviewer=users["reviewer"],
                    decision="approve",
                )
            created += 1
        total = task.examples.count()
        self.stdout.write(f"Demo examples: {created} created, {total} in the task.")
        if not quiet_accounts:
            self.stdout.write("")
            self.stdout.write("Demo accounts (development only):")
            for username, password, roles in DEMO_ACCOUNTS:
                self.stdout.write(f"  {username:<10} password: {password:<22} roles: {', '.join(roles)}")
            self.stdout.write("")
