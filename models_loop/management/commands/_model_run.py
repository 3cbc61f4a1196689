"""The shared body of `draft_completions` and `judge`: queue a model run of a task, optionally wait for its end."""

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate.models import Task
from models_loop import services
from models_loop.conf import ModelFeaturesOff
from models_loop.models import ModelRun
from pairsmith.jobs import JobState

POLL_SECONDS = 0.5


class ModelRunCommand(BaseCommand):
    kind: str
    what: str  # "drafts", "judgements"
    counts: tuple[str, ...]  # the run's counts, in the order they are printed

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--limit", type=int, default=None, help="At most this many examples (default: all).")
        parser.add_argument("--wait", action="store_true", help="Wait until the run has finished.")

    def handle(self, *args, slug: str, limit: int | None, wait: bool, **options) -> None:
        if limit is not None and limit < 1:
            raise CommandError(f"--limit must be at least 1, not {limit}.")
        task = Task.objects.filter(slug=slug).first()
        if task is None:
            raise CommandError(f"No task with slug {slug!r}.")
        try:
            run = services.run_request(task=task, kind=self.kind, limit=limit)
        except ModelFeaturesOff as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        run.refresh_from_db()
        scope = f"at most {limit} examples" if limit else "every example due"
        what = self.what.capitalize()
        self.stdout.write(f"{what} of {task.slug} with {run.model} ({scope}): run {run.pk}, {run.state}.")
        if run.notice:
            self.stdout.write(run.notice)
        if not wait:
            return
        run = self._wait(run)
        # In a fixed order: PostgreSQL's jsonb keeps no key order.
        counts = ", ".join(f"{run.counts[key]} {key}" for key in self.counts if key in run.counts) or "nothing to do"
        self.stdout.write(f"Run {run.pk} {run.state}: {counts}; {run.tokens_in} tokens in, {run.tokens_out} out.")
        if run.notice:
            self.stdout.write(run.notice)
        if run.state != JobState.SUCCEEDED:
            raise CommandError(f"Run {run.pk} {run.state}: {run.error or 'see the task page'}")

    def _wait(self, run: ModelRun) -> ModelRun:
        shown = None
        while run.is_live:
            progress = (run.state, run.progress)
            if progress != shown:
                self.stderr.write(f"  {run.state}: {run.progress} of {run.total or '?'} examples")
                shown = progress
            time.sleep(POLL_SECONDS)
            run.refresh_from_db()
        return run
