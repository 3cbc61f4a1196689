import json
import math
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate.models import Task
from exports import services
from exports.models import Export
from exports.preflight import preflight_lines
from pairsmith.jobs import JobState

POLL_SECONDS = 0.5


def _ratio(text: str, option: str = "--validation-ratio") -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{option} {text!r} is not a number; give one between 0 and 1, e.g. 0.1.") from None
    if not math.isfinite(value) or not 0 <= value < 1:
        raise CommandError(f"{option} must be at least 0 and below 1, not {text}.")
    return value


class Command(BaseCommand):
    help = "Make the next export version of a task's approved examples through the Celery job."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--format", dest="export_format", required=True, choices=services.FORMATS)
        parser.add_argument(
            "--validation-ratio", default=None, help="Share in validation, 0 <= R < 1 (default: the task's setting)."
        )
        parser.add_argument(
            "--test-ratio", default=None, help="Share held out as test.jsonl, 0 <= R < 1 (default: the task's setting)."
        )
        parser.add_argument(
            "--pairs-from-edits",
            action="store_true",
            help="Preference formats: add a pair for each example approved after a reviewer's edit (submitted text "
            "rejected, approved text chosen).",
        )
        parser.add_argument(
            "--min-change",
            default=None,
            help="With --pairs-from-edits: the least share of the text's word pairs an edit must change, 0 to 1 "
            "(default 0.1), so that typo fixes stay out.",
        )
        parser.add_argument(
            "--max-length",
            type=int,
            default=None,
            help="Trainer preflight (with the task's tokenizer): the maximum length in tokens (default 1024).",
        )
        parser.add_argument("--wait", action="store_true", help="Wait until the export has finished.")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="Print one JSON object: version, state, files, ..."
        )

    def handle(
        self, *args, slug, export_format, validation_ratio, test_ratio, max_length, wait, as_json, **options
    ) -> None:
        ratio = None if validation_ratio is None else _ratio(validation_ratio)
        min_change = options.get("min_change")
        if min_change is not None:
            try:
                min_change = float(min_change)
            except ValueError:
                raise CommandError(f"--min-change {min_change!r} is not a number between 0 and 1.") from None
        test = None if test_ratio is None else _ratio(test_ratio, "--test-ratio")
        task = Task.objects.filter(slug=slug).first()
        if task is None:
            raise CommandError(f"No task with slug {slug!r}.")
        try:
            export = services.export_request(
                task=task,
                export_format=export_format,
                validation_ratio=ratio,
                test_ratio=test,
                pairs_from_edits=options.get("pairs_from_edits", False),
                min_change=min_change,
                max_length=max_length,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        export.refresh_from_db()
        if not as_json:
            self.stdout.write(
                f"Export v{export.version} of {task.slug} ({export.format}, validation ratio {export.validation_ratio}"
                + (f", test ratio {export.test_ratio}" if export.test_ratio > 0 else "")
                + f") {export.get_state_display().lower()}."
            )
            if export.notice:
                self.stdout.write(export.notice)
        if wait:
            export = self._wait(export, quiet=as_json)
        if as_json:
            self.stdout.write(_dumps(services.export_summary(export=export)))
        elif export.state == JobState.SUCCEEDED:
            folder = services.export_location(export, "manifest.json").rsplit("/", 1)[0]
            test = f", {export.counts['test']} test" if export.test_ratio > 0 else ""
            self.stdout.write(
                f"Wrote {export.counts['train']} train, {export.counts['validation']} validation{test} records to "
                f"{folder}"
            )
            for line in preflight_lines(export.preflight or {}):
                self.stdout.write(line)
            report = export.contamination or {}
            if report.get("exact") or report.get("near"):
                self.stdout.write(
                    f"Warning: {report['exact']} exact and {report['near']} near duplicate(s) of validation or test "
                    "prompts are in train (see the card and manifest.json)."
                )
        if wait and export.state != JobState.SUCCEEDED:
            raise CommandError(f"Export v{export.version} {export.state}: {export.error or 'see the exports page'}")

    def _wait(self, export: Export, *, quiet: bool) -> Export:
        shown = None
        while export.is_live:
            progress = (export.state, export.progress)
            if not quiet and progress != shown:
                self.stderr.write(f"  {export.state}: {export.progress} of {export.total or '?'} records")
                shown = progress
            time.sleep(POLL_SECONDS)
            export.refresh_from_db()
        return export


def _dumps(value: dict) -> str:
    return json.dumps(value, indent=2)
