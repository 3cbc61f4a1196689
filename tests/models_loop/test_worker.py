"""Drafts made by a real `celery worker` process on the real Redis of REDIS_URL, asking the fake endpoint (a boundary
Pairsmith does not own: tests/fake_llm.py) over loopback, as a deployment's worker asks its model server."""

import time

import pytest

from annotate.models import Example, Revision
from models_loop import services
from models_loop.models import ModelRun, TaskModelSettings

from .conftest import new_examples

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]  # the run is sent after commit


@pytest.fixture
def worker(request, monkeypatch, llm):
    """The worker process, started with the fake endpoint in its environment (the settings read LLM_* from there)."""
    for name, value in {
        "LLM_BASE_URL": llm.url, "LLM_API_KEY": llm.key, "LLM_MODEL": "fake-model", "LLM_CONCURRENCY": "3",
        "LLM_RETRY_BACKOFF": "0.01",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    return request.getfixturevalue("celery_worker_process")


def test_a_worker_process_drafts_the_new_examples(worker, task, lead, llm):
    services.model_settings_save(task=task, user=lead, values={"drafts_enabled": True})
    examples = new_examples(task, 7)
    llm.delay = 0.05
    run = services.run_request(task=task, kind="draft", user=lead)
    deadline = time.monotonic() + 60
    while run.is_live and time.monotonic() < deadline:
        time.sleep(0.2)
        run.refresh_from_db()
    assert run.state == "succeeded", (run.error, run.notice)
    assert run.counts == {"drafted": 7, "taken": 0, "unusable": 0} and run.attempts == 1
    assert {e.completion for e in Example.objects.filter(pk__in=[e.pk for e in examples])} == {
        f"Draft: {e.instruction}" for e in examples
    }
    assert set(Revision.objects.filter(reason="model_draft").values_list("model_name", flat=True)) == {"fake-model"}
    assert len(llm.requests) == 7 and llm.max_in_flight <= 3  # the worker's concurrency limit
    assert TaskModelSettings.objects.get(task=task).tokens_out == run.tokens_out > 0
    assert ModelRun.objects.count() == 1


def test_a_worker_process_answers_an_evaluation_run(worker, task, lead, llm):
    from models_loop.evaluation import evaluation_request
    from tests.exports.conftest import build

    from .test_evaluation import approve_fixed

    approve_fixed(task, 30)
    build(task, user=lead, test_ratio=0.3)
    llm.delay = 0.05
    run = evaluation_request(task=task, name="worker-run", user=lead)
    deadline = time.monotonic() + 60
    while run.is_live and time.monotonic() < deadline:
        time.sleep(0.2)
        run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert run.counts == {"answered": run.size} and run.attempts == 1 and run.size > 3
    assert not run.items.filter(answered=False).exists()
    assert all(item.output.startswith("Draft: ") for item in run.items.all())
    assert len(llm.requests) == run.size and llm.max_in_flight <= 3
