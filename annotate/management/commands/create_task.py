from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate import services
from annotate.models import OutputFormat
from annotate.rendering import PRESETS
from annotate.tools import MAX_TOOLS, parse_toolset

MAX_TOOLS_FILE_BYTES = MAX_TOOLS * 64 * 1024  # each function's parameters are a JSON Schema of at most 64 KiB


class Command(BaseCommand):
    help = "Create a task with its first prompt template."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--output-format", choices=OutputFormat.values, default=OutputFormat.TEXT)
        parser.add_argument("--labels", default="", help="Comma-separated label set of a label task.")
        parser.add_argument("--system-prompt", default="")
        parser.add_argument("--preset", choices=list(PRESETS), default="")
        parser.add_argument(
            "--tools", default=None, help="Tools tasks: a JSON file holding an array of OpenAI function definitions."
        )

    def handle(self, *args, slug, name, output_format, labels, system_prompt, preset, tools, **options) -> None:
        label_list = [label.strip() for label in labels.split(",") if label.strip()]
        tool_set = None
        if tools is not None:
            if output_format != OutputFormat.TOOLS:
                raise CommandError("--tools is for tasks of output format tools (--output-format tools).")
            tool_set = _read_tools(tools)
        try:
            task = services.task_create(
                slug=slug,
                name=name,
                output_format=output_format,
                labels=label_list,
                system_prompt=system_prompt,
                preset=preset,
                tools=tool_set,
            )
        except ValidationError as exc:
            raise CommandError(_describe(exc)) from exc
        template = task.current_template
        self.stdout.write(
            f"Created task {task.slug!r} ({task.name}), output format {task.output_format}"
            + (f", labels {', '.join(task.labels)}" if task.labels else "")
            + f", template v{template.version}"
            + (f" from preset {preset}" if preset else "")
            + (f", {len(tool_set)} tools ({', '.join(_names(tool_set))})" if tool_set else "")
            + "."
        )
        self.stdout.write(f"Next: python manage.py add_member {task.slug} USERNAME --role lead")


def _read_tools(path: str) -> list:
    """The tool set in the file at `path`; CommandError naming the file and what is wrong."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TOOLS_FILE_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read the tools file {path}: {exc.strerror}.") from None
    if len(data) > MAX_TOOLS_FILE_BYTES:
        raise CommandError(f"The tools file {path} is over {MAX_TOOLS_FILE_BYTES:,} bytes (the limit).")
    try:
        return parse_toolset(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CommandError(f"The tools file {path} is not UTF-8 text.") from None
    except ValueError as exc:
        raise CommandError(f"{path}: {exc}") from None


def _names(tools: list) -> list[str]:
    return [definition["function"]["name"] for definition in tools]


def _describe(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(exc.messages)
