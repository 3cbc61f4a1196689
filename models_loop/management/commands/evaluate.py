import json as jsonlib
import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate.models import Task
from models_loop import evaluation
from models_loop.conf import ModelFeaturesOff
from models_loop.evaluation_stats import run_figures
from pairsmith.jobs import JobState

POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Evaluate a model on the test split of an export: its answers from the endpoint, or from a JSONL file of "
        '{"id" (external id) or "uuid", "output"}; reviewers then judge each answer blind against the approved one.'
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--run", required=True, help="The run's name (unique in the task).")
        parser.add_argument("--export", default=None, help="vN: the export whose test split is used (default: latest).")
        parser.add_argument("--outputs", default=None, help="A JSONL of the model's outputs instead of the endpoint.")
        parser.add_argument("--model", default="", help="The model the endpoint answers with (default: the task's).")
        parser.add_argument("--wait", action="store_true", help="Wait until the answers (and the judge) are in.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, slug: str, run: str, export, outputs, model: str, wait: bool, json: bool, **options):
        task = Task.objects.filter(slug=slug).first()
        if task is None:
            raise CommandError(f"No task with slug {slug!r}.")
        version = None
        if export is not None:
            text = export.strip().lower().removeprefix("v")
            if not text.isdigit():
                raise CommandError(f"--export takes a version such as v3, not {export!r}.")
            version = int(text)
        data = None
        if outputs is not None:
            path = Path(outputs)
            if not path.is_file():
                raise CommandError(f"--outputs: no file at {outputs}.")
            if path.stat().st_size > evaluation.MAX_OUTPUTS_BYTES:
                raise CommandError(f"--outputs: the file is over the limit of {evaluation.MAX_OUTPUTS_BYTES:,} bytes.")
            data = path.read_bytes()
        try:
            row = evaluation.evaluation_request(task=task, name=run, version=version, outputs=data, model=model)
        except ModelFeaturesOff as exc:
            raise CommandError(f"{exc} Or give the model's answers with --outputs FILE.") from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if not json:
            source = f"from {outputs}" if data is not None else f"from {row.model}"
            self.stdout.write(
                f"Run {row.name!r} of {task.slug}: {row.size} test examples of export v{row.export.version}, "
                f"answers {source}{', judged by ' + row.judge_model if row.judge_model else ''}: {row.state}."
            )
        if wait:
            row = self._wait(row)
        if json:
            self.stdout.write(self._json(row))
        elif wait:
            self.stdout.write(f"Run {row.name!r} {row.state}: {row.counts or 'nothing to do'}.")
        if wait and row.state != JobState.SUCCEEDED:
            raise CommandError(f"Run {row.name!r} {row.state}: {row.error or 'see its page'}")

    def _wait(self, row):
        shown = None
        while row.is_live:
            if (row.state, row.progress) != shown:
                self.stderr.write(f"  {row.state}: {row.progress} of {row.total or '?'}")
                shown = (row.state, row.progress)
            time.sleep(POLL_SECONDS)
            row.refresh_from_db()
        return row

    def _json(self, row) -> str:
        figures = run_figures(row)
        answered = row.items.filter(answered=True).count()
        return jsonlib.dumps(
            {
                "run": row.name,
                "export": f"v{row.export.version}",
                "items": row.size,
                "state": row.state,
                "id": row.pk,
                "source": row.source,
                "model": row.model,
                "judge": row.judge_model or None,
                "answered": answered,
                "counts": row.counts,
                "error": row.error or None,
                "judge_results": None
                if figures["judge"] is None
                else {c["result"]: c["n"] for c in figures["judge"]["overall"]["cells"]},
            }  # fmt: skip
        )
