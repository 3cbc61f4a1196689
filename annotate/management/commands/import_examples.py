import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate import importing
from annotate.importing import IMPORT_STATUSES, Progress, Reporter
from annotate.models import ImportJob, Task


class Command(BaseCommand):
    help = (
        "Import examples into a task from a JSONL file, a JSON array or a CSV file: all or nothing. "
        "The file is read as a stream, checked as it is inserted in one transaction, so any size fits in bounded "
        "memory; at a problem nothing is kept, and the file is read again to list every problem."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="The task to import into.")
        parser.add_argument("file", help="A local file: .jsonl, .json (an array) or .csv.")
        parser.add_argument(
            "--status", choices=[str(s) for s in IMPORT_STATUSES], default="new", help="Status of the new examples."
        )
        parser.add_argument(
            "--format",
            dest="file_format",
            choices=ImportJob.FileFormat.values,
            default="",
            help="The file's format; by default from its name (.jsonl, .csv) or its first character.",
        )

    def handle(self, *args, slug: str, file: str, status: str, file_format: str, **options) -> None:
        task = Task.objects.filter(slug=slug).first()
        if task is None:
            raise CommandError(f"No task with slug {slug!r}.")
        path = Path(file)
        if not path.is_file():  # a local, regular file: never a URL (nothing is fetched), a device or a pipe
            raise CommandError(f"No such file: {file}")
        try:
            file_format = file_format or importing.detect_format(path=path)
            counts = importing.examples_import(
                task=task, path=path, file_format=file_format, status=status, reporter=_Printer(self.stdout)
            )
        except ValidationError as exc:
            raise CommandError("Nothing was imported.\n" + "\n".join(exc.messages)) from exc
        except OSError as exc:  # unreadable (permissions), or gone meanwhile
            raise CommandError(f"Nothing was imported: cannot read {file}: {exc.strerror or exc}") from exc
        if counts["ignored"]:
            self.stdout.write(f"Ignored keys (no matching field): {', '.join(counts['ignored'])}")
        self.stdout.write(
            f"Imported {counts['records']} examples into {task.slug} (status {status}): "
            f"{counts['with_completion']} with completions"
        )


class _Printer(Reporter):
    """A progress line every few seconds, and one at the end."""

    EVERY = 5.0

    def __init__(self, stdout) -> None:
        self.stdout = stdout
        self.last = time.monotonic()

    def progress(self, progress: Progress) -> None:
        if not progress.done and time.monotonic() - self.last < self.EVERY:
            return
        self.last = time.monotonic()
        percent = 100 * progress.position // progress.size if progress.size else 100
        if progress.phase == "check":
            self.stdout.write(f"Stopped at a problem, nothing kept; listing every problem: {percent}% of the file read")
        else:
            self.stdout.write(f"Inserted {progress.records:,} records ({percent}% of the file)")
