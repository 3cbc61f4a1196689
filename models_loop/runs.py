"""Model runs as jobs (pairsmith/jobs.py): drafts of new examples, judgements of submitted ones.

A run reads its examples by id, CHUNK at a time, and keeps LLM_CONCURRENCY requests in flight on a thread pool while
its own thread (the only one that uses the database) writes the answers that came back, a batch of CHUNK in one
transaction together with the run's progress: a run that a worker loses is resumed where its last batch ended, and
memory follows CHUNK, not the task's size. Each example's write is whole: a draft's completion and its revision, a
judgement and its warning, or nothing.

A request that fails after its retries stops the run with the reason and the example: the answers that came before
are kept, nothing is written for that example, and running again continues with what is left. An answer that is
unusable (an empty or oversized draft, a judge's junk) is counted and skipped; the run goes on.
"""

import logging
from collections import deque
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from functools import partial

from celery import shared_task
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone

from annotate.audit import Action, audit_record
from annotate.models import Example, Revision
from annotate.rendering import TemplateSpec
from annotate.scans import warning_fields
from annotate.services import clean_completion
from pairsmith.jobs import JOB_TYPES, LEASE, JobState, job_claim, job_fail, job_finish, job_heartbeat

from . import prompts
from .client import ModelClient, ModelError, Reply
from .conf import LLMConfig, ModelFeaturesOff, llm_config
from .models import Judgement, ModelRun, TaskModelSettings

logger = logging.getLogger(__name__)

CHUNK = 200
BEAT = LEASE.total_seconds() / 4  # seconds between two renewals of the lease while an answer is awaited
Status = Example.Status
DRAFT_COLUMNS = (
    "id", "uuid", "task_id", "template_id", "instruction", "context", "input", "messages", "kind", "version",
)  # fmt: skip
JUDGE_COLUMNS = (*DRAFT_COLUMNS, "completion", "warnings")


class _Stopped(Exception):
    """The run was cancelled, or another worker took it over: stop without writing."""


class _Failed(Exception):
    pass


@shared_task(name="models_loop.run", ignore_result=True)
def model_run_task(*, job_id: int) -> None:
    model_run(run_id=job_id)


JOB_TYPES.append((ModelRun, model_run_task))


def model_run(*, run_id: int) -> None:
    """Run a queued model run to its end: finished with its counts, or failed with a message naming the cause."""
    run = job_claim(ModelRun, run_id)
    if run is None:
        return
    try:
        config = llm_config()
        with ModelClient(config) as client, ThreadPoolExecutor(config.concurrency, "model-request") as pool:
            _run(run, client, pool, config)
    except _Stopped:
        return
    except (_Failed, ModelFeaturesOff) as exc:
        _end(run, error=str(exc))
        return
    except Exception as exc:
        logger.exception("Model run %s failed", run_id)
        _end(run, error=f"The run stopped: {type(exc).__name__}: {exc}")
        return
    counts = ModelRun.objects.values_list("counts", flat=True).get(pk=run.pk)
    if run.example_id is not None and counts.get("junk"):
        _end(run, error=counts.get("first_problem", "The model's answer was unusable."))
    else:
        _end(run, notice=counts.get("first_problem", "")[:300])


def _run(run: ModelRun, client: ModelClient, pool: ThreadPoolExecutor, config: LLMConfig) -> None:
    """Keep the pool busy: requests go out for the examples ahead while the answers that came back are written, a
    batch of CHUNK at a time. At most WINDOW requests wait in the pool (memory stays bounded)."""
    drafting = run.kind == ModelRun.Kind.DRAFT
    row = TaskModelSettings.objects.get(task_id=run.task_id)
    prompt = (row.draft_prompt if drafting else row.judge_prompt).strip()
    if not prompt:
        prompt = (prompts.default_draft_prompt if drafting else prompts.default_judge_prompt)(run.task)
    candidates = _draft_candidates(run) if drafting else _judge_candidates(run)
    request = _draft_request if drafting else _judge_request
    write = _write_drafts if drafting else _write_judgements
    done = run.progress  # a resumed run goes on from its last batch
    remaining = None if run.limit is None else max(0, run.limit - done)
    total = done + (candidates.count() if remaining is None else min(remaining, candidates.count()))
    job_heartbeat(run, progress=done, total=total)
    window = max(CHUNK, 4 * config.concurrency)
    specs: dict[int, TemplateSpec] = {}
    pending: deque[tuple[Example, Future]] = deque()
    batch: list[tuple[Example, Reply]] = []
    failure = None
    try:
        for example in _examples(candidates, remaining):
            if example.template_id not in specs:
                specs[example.template_id] = TemplateSpec.of(example.template)
            kwargs = request(example, prompt=prompt, spec=specs[example.template_id], max_tokens=config.max_tokens)
            pending.append((example, pool.submit(client.chat, model=run.model, **kwargs)))
            if len(pending) >= window:
                failure = _collect(pending.popleft(), batch, partial(_keep_lease, run, done))
                if failure is not None:
                    break
                if len(batch) >= CHUNK:
                    done, batch = write(run, batch, progress=done), []
        while pending:  # the last answers; after a failure, what was not sent yet is cancelled
            example, future = pending.popleft()
            if failure is not None and future.cancel():
                continue
            failure = _collect((example, future), batch, partial(_keep_lease, run, done)) or failure
            if len(batch) >= CHUNK:
                done, batch = write(run, batch, progress=done), []
        if batch:
            write(run, batch, progress=done)
    finally:
        for _example, future in pending:  # stopped by an error, or cancelled: send nothing more
            future.cancel()
    if failure is not None:
        example, error = failure
        raise _Failed(
            f"Stopped at example {example.uuid}: {error} Nothing was written for it; the answers that came before "
            "were kept. Run again to continue with the rest."
        )


def _examples(candidates, remaining: int | None):
    """The candidates in id order, read CHUNK at a time (keyset: each read starts after the last id)."""
    after = 0
    while remaining is None or remaining > 0:
        size = CHUNK if remaining is None else min(CHUNK, remaining)
        chunk = list(candidates.filter(id__gt=after).order_by("id")[:size])
        if not chunk:
            return
        after = chunk[-1].id
        if remaining is not None:
            remaining -= len(chunk)
        yield from chunk


def _collect(item: tuple[Example, Future], batch: list, keep_lease) -> tuple[Example, ModelError] | None:
    """Wait for one answer: into `batch`, or the failure (example, error). While waiting, the run's lease is renewed
    every BEAT seconds, so a slow model never lets the sweep hand the run to a second worker."""
    example, future = item
    while True:
        try:
            batch.append((example, future.result(timeout=BEAT)))
        except TimeoutError:
            keep_lease()
            continue
        except ModelError as exc:
            return example, exc
        except CancelledError:
            pass
        return None


def _keep_lease(run: ModelRun, progress: int) -> None:
    if not job_heartbeat(run, progress=progress):
        raise _Stopped


def _commit(run: ModelRun, *, progress: int, answers, counts: dict, write) -> int:
    """In one transaction: the progress (fenced: only while the run is ours), the writes, the spend, the counts.
    Returns the new progress."""
    tokens_in = sum(reply.tokens_in for _, reply in answers)
    tokens_out = sum(reply.tokens_out for _, reply in answers)
    with transaction.atomic():
        if not job_heartbeat(run, progress=progress + len(answers)):
            raise _Stopped
        write()
        totals = ModelRun.objects.get(pk=run.pk).counts
        for key, value in counts.items():
            totals[key] = totals.get(key, value) if key == "first_problem" else totals.get(key, 0) + value
        ModelRun.objects.filter(pk=run.pk).update(
            counts=totals, tokens_in=F("tokens_in") + tokens_in, tokens_out=F("tokens_out") + tokens_out
        )
        TaskModelSettings.objects.filter(task_id=run.task_id).update(
            requests=F("requests") + len(answers),
            tokens_in=F("tokens_in") + tokens_in,
            tokens_out=F("tokens_out") + tokens_out,
        )
    return progress + len(answers)


# --- drafts ------------------------------------------------------------------------------------------------------


def _unclaimed(now) -> Q:
    return Q(claimed_by__isnull=True) | Q(claim_expires_at__lte=now)


def _draft_candidates(run: ModelRun):
    """New examples without any text that nobody holds: a draft never replaces a person's (or an import's) text."""
    return (
        Example.objects.filter(task_id=run.task_id, status=Status.NEW, completion="")
        .filter(_unclaimed(timezone.now()))
        .select_related("template")
        .only(*DRAFT_COLUMNS, "template")
    )


def _draft_request(example: Example, *, prompt: str, spec: TemplateSpec, max_tokens: int) -> dict:
    return {"messages": prompts.draft_messages(prompt=prompt, example=example, spec=spec), "max_tokens": max_tokens}


def _write_drafts(run: ModelRun, answers: list[tuple[Example, Reply]], *, progress: int) -> int:
    counts = {"drafted": 0, "taken": 0, "unusable": 0}
    drafts: list[tuple[Example, str]] = []
    for example, reply in answers:
        try:
            text = clean_completion(reply.content.strip())
            if not text:
                raise ValidationError("The model's draft is empty.")
        except ValidationError as exc:
            counts["unusable"] += 1
            counts.setdefault("first_problem", f"Example {example.uuid}: {' '.join(exc.messages)}")
            continue
        drafts.append((example, text))

    def write() -> None:
        now = timezone.now()
        revisions = []
        for example, text in drafts:
            # Conditional: a person who took the example, or wrote in it, since it was read keeps their work.
            won = (
                Example.objects.filter(pk=example.pk, version=example.version, status=Status.NEW, completion="")
                .filter(_unclaimed(now))
                .update(completion=text, version=F("version") + 1, updated_at=now)
            )
            if won:
                revisions.append(
                    Revision(
                        example_id=example.pk, text=text, kind=example.kind, reason=Revision.Reason.MODEL_DRAFT,
                        model_name=run.model, example_version=example.version + 1,
                    )
                )  # fmt: skip
            else:
                counts["taken"] += 1
        Revision.objects.bulk_create(revisions)
        counts["drafted"] += len(revisions)

    return _commit(run, progress=progress, answers=answers, counts=counts, write=write)


# --- judgements --------------------------------------------------------------------------------------------------


def _judge_candidates(run: ModelRun):
    """Submitted examples whose current text (their latest revision) has no judgement yet."""
    latest = Revision.objects.filter(example=OuterRef("pk")).order_by("-id").values("id")[:1]
    examples = Example.objects.filter(task_id=run.task_id, status=Status.SUBMITTED)
    if run.example_id is not None:
        examples = examples.filter(pk=run.example_id)
    return (
        examples.annotate(latest_revision=Subquery(latest))
        .filter(latest_revision__isnull=False)
        .exclude(Exists(Judgement.objects.filter(revision_id=OuterRef("latest_revision"))))
        .select_related("template")
        .only(*JUDGE_COLUMNS, "template")
    )


def _judge_request(example: Example, *, prompt: str, spec: TemplateSpec, max_tokens: int) -> dict:
    messages = prompts.judge_messages(prompt=prompt, example=example, spec=spec, completion=example.completion)
    return {
        "messages": messages,
        "max_tokens": prompts.JUDGE_MAX_TOKENS,
        "response_format": prompts.JUDGE_RESPONSE_FORMAT,
    }


def _write_judgements(run: ModelRun, answers: list[tuple[Example, Reply]], *, progress: int) -> int:
    counts = {"judged": 0, "junk": 0}
    judged: list[tuple[Example, Reply, int, str]] = []
    for example, reply in answers:
        try:
            score, reason = prompts.parse_judgement(reply.content)
        except prompts.JudgeJunk as exc:
            counts["junk"] += 1
            counts.setdefault("first_problem", f"Example {example.uuid}: {exc}")
            continue
        judged.append((example, reply, score, reason))

    def write() -> None:
        rows = [
            Judgement(
                example_id=e.pk, revision_id=e.latest_revision, score=score, reason=reason, model=run.model,
                tokens_in=reply.tokens_in, tokens_out=reply.tokens_out,
            )
            for e, reply, score, reason in judged
        ]  # fmt: skip
        # A judge on submit and a whole-task run may judge the same text at once: the first judgement stays.
        Judgement.objects.bulk_create(rows, ignore_conflicts=True)
        for example, _reply, score, reason in judged:
            _set_judge_warning(example, score, reason, run.model)
        counts["judged"] += len(rows)

    return _commit(run, progress=progress, answers=answers, counts=counts, write=write)


LOW_SCORE = 2  # a judgement at or below this becomes a warning (risk for "riskiest first"); advice, never a verdict


def _set_judge_warning(example: Example, score: int, reason: str, model: str) -> None:
    kept = [w for w in example.warnings or () if w.get("code") != "judge_low"]
    if score <= LOW_SCORE:
        message = f"The model judge ({model}) scored it {score}/5: {reason}"
        kept.append({"code": "judge_low", "message": message, "blocking": False, "detail": {"score": score}})
    if kept != (example.warnings or []):
        # Only on the text that was judged: a reviewer's edit or a new submit since then has its own warnings.
        Example.objects.filter(pk=example.pk, version=example.version).update(**warning_fields(kept))


# --- the end of a run --------------------------------------------------------------------------------------------


def _end(run: ModelRun, *, error: str = "", notice: str = "") -> None:
    """Mark the run failed (with `error`) or succeeded, and record it in the audit log with its counts and spend."""
    if error:
        job_fail(run, error)
    else:
        job_finish(run, notice=notice)
    run.refresh_from_db()
    if run.state not in (JobState.FAILED, JobState.SUCCEEDED):
        return  # cancelled or taken over meanwhile: whoever ends it records it
    action = Action.MODEL_RUN_FAILED if run.state == JobState.FAILED else Action.MODEL_RUN_FINISHED
    target = f"{run.kind} of {run.example.uuid}" if run.example_id else f"{run.kind} run {run.pk}"
    detail = {
        "kind": run.kind, "model": run.model, "counts": {k: v for k, v in run.counts.items() if k != "first_problem"},
        "tokens_in": run.tokens_in, "tokens_out": run.tokens_out,
    }  # fmt: skip
    if error:
        detail["error"] = error[:500]
    audit_record(task=run.task, actor=None, action=action, target=target, detail=detail)
