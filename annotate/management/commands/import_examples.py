import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate import importing
from annotate.importing import IMPORT_STATUSES, Progress, Reporter
from annotate.importing.mapping import Mapping, PathError, key_list, key_list_text, parse_path
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
        parser.add_argument(
            "--path",
            dest="paths",
            action="append",
            default=[],
            metavar="FIELD=PATH",
            help="Take a field from a path inside the record, e.g. completion=instances[0].output (repeatable). "
            f"Fields: {', '.join(importing.FIELDS)}.",
        )
        parser.add_argument(
            "--allow-unmapped",
            default="",
            metavar="KEY,...",
            help="Keys that no field takes, to drop (else the import is refused and names them). A comma inside a "
            "key is written \\,",
        )
        parser.add_argument(
            "--keep-unmapped",
            default="",
            metavar="KEY,...",
            help="Keys that no field takes, to keep on each example as metadata (shown on its page, in manifests).",
        )

    def handle(
        self,
        *args,
        slug: str,
        file: str,
        status: str,
        file_format: str,
        paths: list[str],
        allow_unmapped: str,
        keep_unmapped: str,
        **options,
    ) -> None:
        task = Task.objects.filter(slug=slug).first()
        if task is None:
            raise CommandError(f"No task with slug {slug!r}.")
        path = Path(file)
        if not path.is_file():  # a local, regular file: never a URL (nothing is fetched), a device or a pipe
            raise CommandError(f"No such file: {file}")
        mapping = Mapping(paths=_paths(paths), drop=key_list(allow_unmapped), keep=key_list(keep_unmapped))
        if both := mapping.drop & mapping.keep:
            raise CommandError(f"Keys both dropped and kept: {', '.join(sorted(both))}; choose one for each.")
        try:
            file_format = file_format or importing.detect_format(path=path)
            counts = importing.examples_import(
                task=task,
                path=path,
                file_format=file_format,
                mapping=mapping,
                status=status,
                reporter=_Printer(self.stdout),
            )
        except ValidationError as exc:
            hint = ""
            if unmapped := getattr(exc, "unmapped", None):
                listed = key_list_text(unmapped)
                hint = f"\nTo import without them: --allow-unmapped {listed} (or keep them: --keep-unmapped {listed})"
            raise CommandError("Nothing was imported.\n" + "\n".join(exc.messages) + hint) from exc
        except OSError as exc:  # unreadable (permissions), or gone meanwhile
            raise CommandError(f"Nothing was imported: cannot read {file}: {exc.strerror or exc}") from exc
        if counts["ignored"]:
            self.stdout.write(f"Ignored keys (no matching field): {', '.join(counts['ignored'])}")
        if counts.get("kept"):
            self.stdout.write(f"Kept as metadata: {', '.join(counts['kept'])}")
        if "pairs" in counts:  # a preference file (preferences.importing)
            reviewed = "reviewed" if status == "approved" else "waiting for review"
            self.stdout.write(
                f"Imported {counts['pairs']} preference pairs ({reviewed}) and {counts['comparisons']} comparisons "
                f"into {task.slug}"
            )
            return
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


def _paths(given: list[str]) -> dict[str, str]:
    """FIELD=PATH options as {field: path}. Raise CommandError for an unknown field or a path that cannot be read."""
    paths = {}
    for item in given:
        name, _, text = item.partition("=")
        name = name.strip()
        if name not in importing.FIELDS or not text.strip():
            raise CommandError(f"--path {item!r}: write FIELD=PATH, with a field among {', '.join(importing.FIELDS)}.")
        try:
            parse_path(text)
        except PathError as exc:
            raise CommandError(f"--path {item!r}: {exc}") from None
        paths[name] = text.strip()
    return paths
