from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count

from annotate import services
from annotate.demo_data import DEMO_TASK, DEMO_TEMPLATE, demo_examples
from annotate.demo_tools import TOOL_TASK, TOOLS, tool_examples
from annotate.models import Example, Role, Task
from reviews.models import Verdict
from reviews.services import verdict_record

User = get_user_model()

# Demo accounts only: printed on the console, and refused in production unless --allow-production.
DEMO_ACCOUNTS = [
    ("annotator", "annotate-demo-pairs", [Role.ANNOTATOR]),
    ("reviewer", "review-demo-pairs", [Role.REVIEWER]),
    ("lead", "lead-demo-pairs", [Role.LEAD, Role.REVIEWER]),
]


DEMO_FLAG_COMMENT = (
    "Open with the answer, then the steps: the first sentence should tell the customer what to do, and name the app "
    "screen (Settings > Device > …) where they do it."
)
DEMO_REJECT_COMMENT = "Another pair already answers this question almost word for word; keep that one."


class Command(BaseCommand):
    help = "Load the demo task, its examples and the demo accounts. Running it again changes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quiet-accounts", action="store_true", help="Do not print the passwords.")
        parser.add_argument(
            "--allow-production", action="store_true", help="Load the demo even with DEBUG off (known passwords!)."
        )

    @staticmethod
    def _some_reviewed(submitted: list, reviewer) -> None:
        """A few of the new submitted pairs flagged back and rejected, through the real verdicts, so that My work and
        triage have something to show."""
        for i, example in enumerate(sorted(submitted, key=lambda e: e.external_id)):
            if i % 10 == 3:
                verdict_record(example=example, reviewer=reviewer, decision="flag", version=example.version,
                               reasons=["unclear"], comment=DEMO_FLAG_COMMENT)  # fmt: skip
            elif i % 10 == 7:
                verdict_record(example=example, reviewer=reviewer, decision="reject", version=example.version,
                               reasons=["duplicate"], comment=DEMO_REJECT_COMMENT)  # fmt: skip

    def _tools_task(self, users: dict) -> None:
        """The tool-calling demo task (annotate/demo_tools.py), its members and examples; idempotent like the rest."""
        task = Task.objects.filter(slug=TOOL_TASK["slug"]).first()
        if task is None:
            task = services.task_create(**TOOL_TASK, tools=TOOLS)
            self.stdout.write(f"Created demo task {task.slug!r}: {task.name} ({len(TOOLS)} tools).")
        for username, _, roles in DEMO_ACCOUNTS:
            for role in roles:
                services.membership_add(task=task, user=users[username], role=role)
        existing = set(task.examples.values_list("external_id", flat=True))
        created = 0
        for record in tool_examples():
            if record["external_id"] in existing:
                continue
            _demo_example(task, record, users, messages=record["messages"])
            created += 1
        self.stdout.write(f"Tool-calling examples: {created} created, {task.examples.count()} in {task.slug!r}.")

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
        fresh_submitted = []
        for record in demo_examples():
            if record["external_id"] in existing:
                continue
            status = record["status"]
            example = _demo_example(task, record, users)
            if status == Example.Status.SUBMITTED:
                fresh_submitted.append(example)
            created += 1
        self._some_reviewed(fresh_submitted, users["reviewer"])
        self._tools_task(users)
        total = task.examples.count()
        self.stdout.write(f"Demo examples: {created} created, {total} in the task.")
        counts = dict(task.examples.values_list("status").annotate(n=Count("id")).order_by())
        self.stdout.write("By status: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + ".")
        if not quiet_accounts:
            self.stdout.write("")
            self.stdout.write("Demo accounts (development only):")
            for username, password, roles in DEMO_ACCOUNTS:
                self.stdout.write(f"  {username:<10} password: {password:<22} roles: {', '.join(roles)}")
            self.stdout.write("")


def _demo_example(task, record: dict, users: dict, *, messages: list | None = None) -> Example:
    """One demo example as imported; an approved one carries the reviewer's verdict, as a real one would."""
    status = record["status"]
    example = services.example_create(
        task=task,
        fields=record,
        completion=record["completion"],
        kind=record["kind"],
        source=Example.Source.IMPORTED,
        status=status,
        messages=messages,
        external_id=record["external_id"],
        author=users["annotator"] if status != Example.Status.NEW else None,
    )
    if status == Example.Status.APPROVED:
        Verdict.objects.create(
            example=example,
            revision=example.revisions.get(),
            example_version=example.version,
            reviewer=users["reviewer"],
            decision="approve",
        )
    return example
