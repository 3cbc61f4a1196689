"""The job of an evaluation run: ask the model for its answer to each held-out prompt (endpoint runs), then, when the
task's judge is on, ask the judge which of the two answers is better, in the order a person sees them.

A batch of answers is written in one transaction fenced by the run's lease (pairsmith.jobs), so a cancelled run or a
run taken over by another worker writes nothing more; a request that fails after its retries fails the run, naming the
example, and keeps the answers that came before (running it again is not offered: a new run starts afresh).
"""

import logging
from concurrent.futures import ThreadPoolExecutor

from celery import shared_task
from django.db import transaction
from django.db.models import F

from annotate.audit import Action, audit_record
from annotate.rendering import TemplateSpec, record_renderer
from pairsmith.jobs import JOB_TYPES, LEASE, JobState, job_claim, job_fail, job_finish, job_heartbeat

from . import prompts
from .client import ModelClient, ModelError, Reply
from .conf import ModelFeaturesOff, llm_config
from .models import EvaluationItem, EvaluationRun, TaskModelSettings

logger = logging.getLogger(__name__)

BEAT = LEASE.total_seconds() / 4
Result = EvaluationItem.Result
COMPARE_SCHEMA = {
    "type": "object",
    "properties": {
        "better": {"type": "string", "enum": ["A", "B", "same"]},
        "reason": {"type": "string", "description": "One line: what decides it."},
    },
    "required": ["better", "reason"],
    "additionalProperties": False,
}
COMPARE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "comparison", "strict": True, "schema": COMPARE_SCHEMA},
}


class _Stopped(Exception):
    pass


@shared_task(name="models_loop.evaluate", ignore_result=True)
def evaluation_run_task(*, job_id: int) -> None:
    evaluation_run(run_id=job_id)


JOB_TYPES.append((EvaluationRun, evaluation_run_task))


def evaluation_run(*, run_id: int) -> None:
    """Answer (endpoint runs) and judge (when the run has a judge) every item; finish or fail with the cause."""
    run = job_claim(EvaluationRun, run_id)
    if run is None:
        return
    try:
        config = llm_config()
        with ModelClient(config) as client, ThreadPoolExecutor(config.concurrency, "evaluation") as pool:
            batch = max(50, 4 * config.concurrency)
            todo = run.items.filter(answered=False).count()
            to_judge = run.items.filter(judge_result="").count() if run.judge_model else 0
            job_heartbeat(run, progress=0, total=todo + to_judge)
            done = _phase(run, client, pool, batch, answering=True, progress=0, max_tokens=config.max_tokens)
            if run.judge_model:
                _phase(run, client, pool, batch, answering=False, progress=done, max_tokens=prompts.JUDGE_MAX_TOKENS)
    except _Stopped:
        return
    except (ModelError, ModelFeaturesOff) as exc:
        _end(run, error=str(exc))
        return
    except Exception as exc:
        logger.exception("Evaluation run %s failed", run_id)
        _end(run, error=f"The run stopped: {type(exc).__name__}: {exc}")
        return
    _end(run)


def _phase(run, client, pool, batch: int, *, answering: bool, progress: int, max_tokens: int) -> int:
    """Answer (or judge) the items due, `batch` requests at a time, in id order. Returns the progress."""
    items = run.items.filter(answered=False) if answering else run.items.filter(answered=True, judge_result="")
    items = items.select_related("example__template", "example__task").order_by("id")
    guidelines = "" if answering else _compare_prompt(run)
    specs: dict[int, TemplateSpec] = {}
    after = 0
    while True:
        chunk = list(items.filter(id__gt=after)[:batch])
        if not chunk:
            return progress
        after = chunk[-1].id
        futures = []
        for item in chunk:
            template_id = item.example.template_id
            if template_id not in specs:
                specs[template_id] = TemplateSpec.of(item.example.template)
            turns = _prompt_turns(item, specs[template_id])
            if answering:
                kwargs = {"messages": turns, "max_tokens": max_tokens}
            else:
                kwargs = {"messages": _compare_messages(guidelines, turns, item), "max_tokens": max_tokens,
                          "response_format": COMPARE_FORMAT}  # fmt: skip
            model = run.model if answering else run.judge_model
            futures.append((item, pool.submit(client.chat, model=model, **kwargs)))
        answers: list[tuple[EvaluationItem, Reply]] = []
        try:
            for item, future in futures:
                answers.append((item, _wait(run, future, progress)))
        except ModelError as exc:
            for _item, future in futures:
                future.cancel()
            _write(run, answers, progress=progress, answering=answering)
            stop = f"Stopped at example {item.example.uuid}: {exc} The answers before it were kept."
            raise ModelError(stop) from None
        progress = _write(run, answers, progress=progress, answering=answering)


def _wait(run, future, progress: int) -> Reply:
    while True:
        try:
            return future.result(timeout=BEAT)
        except TimeoutError:
            if not job_heartbeat(run, progress=progress):
                raise _Stopped from None


def _prompt_turns(item: EvaluationItem, spec: TemplateSpec) -> list[dict]:
    """The prompt exactly as the trained model saw its kind in training: the openai-chat record without the answer."""
    example = item.example
    record = record_renderer(spec, "openai-chat")(example.prompt_fields(), "", example.messages or None)
    return record["messages"][:-1]


def _compare_prompt(run: EvaluationRun) -> str:
    task = run.task
    parts = [
        "You compare two answers, A and B, to the same prompt of a fine-tuning task, against the task's guidelines. "
        'Say which is better, or "same" when neither is clearly better, with a one-line reason. Answer only with a '
        'JSON object: {"better": "A" | "B" | "same", "reason": "<one line>"}.',
        f"Guidelines:\n{task.guidelines}" if task.guidelines.strip() else "",
    ]
    return "\n\n".join(p.strip() for p in parts if p.strip())


def _compare_messages(prompt: str, turns: list[dict], item: EvaluationItem) -> list[dict]:
    transcript = "\n\n".join(f"[{turn['role']}]\n{turn['content']}" for turn in turns)
    a, b = item.sides
    user = f"Prompt:\n{transcript}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}"
    return [{"role": "system", "content": prompt}, {"role": "user", "content": user}]


def parse_comparison(content: str, *, model_first: bool) -> tuple[str, str] | None:
    """(model better / same / worse, reason) from the judge's answer; None when it holds no verdict."""
    text = content[: prompts.JUDGE_READ_CHARS].strip().removeprefix("```json").removeprefix("```").removesuffix("```")
    for candidate in prompts._objects(text.strip()):
        said = str(candidate.get("better", "")).strip().lower()
        if said in ("a", "b", "same"):
            reason = " ".join(str(candidate.get("reason") or "").split())[: prompts.REASON_CHARS]
            if said == "same":
                return Result.SAME, reason
            return (Result.BETTER if (said == "a") == model_first else Result.WORSE), reason
    return None


def _write(run, answers: list[tuple[EvaluationItem, Reply]], *, progress: int, answering: bool) -> int:
    """The batch's answers (or verdicts), spend and counts in one transaction, only while the run is ours."""
    counts = {"answered": 0} if answering else {"judged": 0, "junk": 0}
    rows = []
    for item, reply in answers:
        if answering:
            item.output, item.answered = reply.content.replace("\x00", ""), True
            counts["answered"] += 1
        else:
            verdict = parse_comparison(reply.content, model_first=item.model_first)
            if verdict is None:
                counts["junk"] += 1
                continue
            item.judge_result, item.judge_reason = verdict
            counts["judged"] += 1
        rows.append(item)
    tokens_in = sum(r.tokens_in for _, r in answers)
    tokens_out = sum(r.tokens_out for _, r in answers)
    with transaction.atomic():
        if not job_heartbeat(run, progress=progress + len(answers)):
            raise _Stopped
        fields = ["output", "answered"] if answering else ["judge_result", "judge_reason"]
        EvaluationItem.objects.bulk_update(rows, fields, batch_size=500)
        totals = EvaluationRun.objects.select_for_update().get(pk=run.pk).counts
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        EvaluationRun.objects.filter(pk=run.pk).update(
            counts=totals, tokens_in=F("tokens_in") + tokens_in, tokens_out=F("tokens_out") + tokens_out
        )
        TaskModelSettings.objects.filter(task_id=run.task_id).update(
            requests=F("requests") + len(answers), tokens_in=F("tokens_in") + tokens_in,
            tokens_out=F("tokens_out") + tokens_out,
        )  # fmt: skip
    return progress + len(answers)


def _end(run: EvaluationRun, *, error: str = "") -> None:
    if error:
        job_fail(run, error)
    else:
        job_finish(run)
    run.refresh_from_db()
    if run.state not in (JobState.FAILED, JobState.SUCCEEDED):
        return
    detail = {"run": run.pk, "state": run.state, "counts": run.counts, "tokens_in": run.tokens_in,
              "tokens_out": run.tokens_out}  # fmt: skip
    if error:
        detail["error"] = error[:500]
    audit_record(task=run.task, actor=None, action=Action.EVALUATION_ENDED, target=run.name, detail=detail)
