import orjson
from django.core.management.base import BaseCommand, CommandError

from annotate import quality
from annotate.models import Example, QualityScan, Task
from annotate.scans import scan_run
from pairsmith.jobs import LIVE_STATES


class Command(BaseCommand):
    help = (
        "Run the task-wide quality check now (in this process) and print how many examples each check flags; "
        "--json prints {counts, examples} for pipelines and CI gates."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", help='One JSON object: {"counts", "examples", ...}.')
        parser.add_argument(
            "--fail-on",
            default="",
            metavar="CHECK,...",
            help="Exit with status 1 when any of these checks flags an example (a CI gate); 'any' for every check.",
        )

    def handle(self, *args, slug: str, json: bool, fail_on: str, **options) -> None:
        task = Task.objects.filter(slug=slug).first()
        if task is None:
            raise CommandError(f"No task with slug {slug!r}.")
        gate = {code.strip() for code in fail_on.split(",") if code.strip()}
        unknown = gate - set(quality.CHECKS) - {"any"}
        if unknown:
            known = ", ".join(sorted(quality.CHECKS))
            raise CommandError(f"--fail-on: unknown check {', '.join(sorted(unknown))}; the checks are: {known}.")
        live = task.scans.filter(state__in=LIVE_STATES).first()
        if live is not None:
            raise CommandError(
                f"A task-wide check of {slug} is already {live.state} (started {live.created_at:%Y-%m-%d %H:%M}); "
                "wait for it to finish and run this again."
            )
        scan = QualityScan.objects.create(task=task)
        scan_run(scan_id=scan.pk)  # here and now, not through the job queue: the caller waits for the answer
        scan.refresh_from_db()
        if scan.state != "succeeded":
            raise CommandError(f"The check of {slug} failed: {scan.error or scan.state}")
        counts = dict(sorted(scan.report.get("counts", {}).items()))
        findings = scan.report.get("task_findings", [])
        if json:
            self._print_json(task, counts, findings)
        else:
            self._print_text(task, counts, findings)
        if gate and any(counts.get(code) for code in (quality.CHECKS if "any" in gate else gate)):
            raise SystemExit(1)

    def _print_text(self, task: Task, counts: dict, findings: list) -> None:
        total = task.examples.count()
        self.stdout.write(f"Checked {total} example{'s' if total != 1 else ''} of {task.slug}.")
        if not counts:
            self.stdout.write("No warnings: every example passed every check.")
        width = max([len(code) for code in counts] + [5])
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            title = quality.CHECKS[code].title if code in quality.CHECKS else code
            self.stdout.write(f"  {code:<{width}}  {n:>8}  {title}")
        for finding in findings:
            self.stdout.write(f"Task: {finding.get('message', finding)}")

    def _print_json(self, task: Task, counts: dict, findings: list) -> None:
        # Streamed: a task may have a million examples; each warned example is written as it is read.
        write = self.stdout.write
        head = {"task": task.slug, "counts": counts, "task_findings": findings}
        write(orjson.dumps(head).decode()[:-1] + ', "examples": [', ending="")  # the object stays open for the list
        rows = (
            Example.objects.filter(task=task)
            .exclude(warning_codes="")
            .order_by("id")
            .values_list("uuid", "external_id", "warning_codes")
        )
        first = True
        for uuid, external_id, codes in rows.iterator(chunk_size=2000):
            item = {"uuid": str(uuid), "external_id": external_id, "checks": [c for c in codes.split(",") if c]}
            write(("" if first else ", ") + orjson.dumps(item).decode(), ending="")
            first = False
        write("]}")
