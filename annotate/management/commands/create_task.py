from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate import services
from annotate.models import OutputFormat
from annotate.rendering import PRESETS


class Command(BaseCommand):
    help = "Create a task with its first prompt template."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--output-format", choices=OutputFormat.values, default=OutputFormat.TEXT)
        parser.add_argument("--labels", default="", help="Comma-separated label set of a label task.")
        parser.add_argument("--system-prompt", default="")
        parser.add_argument("--preset", choices=list(PRESETS), default="")

    def handle(self, *args, slug, name, output_format, labels, system_prompt, preset, **options) -> None:
        label_list = [label.strip() for label in labels.split(",") if label.strip()]
        try:
            task = services.task_create(
                slug=slug,
                name=name,
                output_format=output_format,
                labels=label_list,
                system_prompt=system_prompt,
                preset=preset,
            )
        except ValidationError as exc:
            raise CommandError(_describe(exc)) from exc
        template = task.current_template
        self.stdout.write(
            f"Created task {task.slug!r} ({task.name}), output format {task.output_format}"
            + (f", labels {', '.join(task.labels)}" if task.labels else "")
            + f", template v{template.version}"
            + (f" from preset {preset}" if preset else "")
            + "."
        )
        self.stdout.write(f"Next: python manage.py add_member {task.slug} USERNAME --role lead")


def _describe(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(exc.messages)
