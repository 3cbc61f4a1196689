"""The model in the loop's fixtures: a fake OpenAI-compatible endpoint on loopback (tests/fake_llm.py: the model
provider is a boundary Pairsmith does not own, so no test reaches a real one), the settings that point at it, and
examples to draft and judge."""

import pytest

from annotate import services as annotate_services
from annotate.models import Example, Role
from models_loop import services
from tests.conftest import _member
from tests.fake_llm import FakeLLM


@pytest.fixture
def fake_llm():
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def llm(settings, fake_llm) -> FakeLLM:
    """The endpoint configured (the fake), with short waits so retries do not slow the tests."""
    settings.LLM_BASE_URL = fake_llm.url
    settings.LLM_API_KEY = fake_llm.key
    settings.LLM_MODEL = "fake-model"
    settings.LLM_TIMEOUT = 5.0
    settings.LLM_MAX_RETRIES = 3
    settings.LLM_RETRY_BACKOFF = 0.01
    settings.LLM_CONCURRENCY = 4
    return fake_llm


@pytest.fixture
def llm_off(settings) -> None:
    settings.LLM_BASE_URL = ""
    settings.LLM_API_KEY = ""
    settings.LLM_MODEL = ""


@pytest.fixture
def model_on(task, lead, llm):
    """Drafts and the judge turned on for `task` by its lead."""
    services.model_settings_save(task=task, user=lead, values={"drafts_enabled": True, "judge_enabled": True})
    return task


def new_examples(task, n: int, *, start: int = 0) -> list[Example]:
    return [
        annotate_services.example_create(task=task, fields={"instruction": f"Question {i}: where is parcel {i}?"})
        for i in range(start, start + n)
    ]


def submitted_example(task, author, text: str = "It ships Monday.", instruction: str = "When does it ship?"):
    return annotate_services.example_create(
        task=task, fields={"instruction": instruction}, completion=text, source=Example.Source.WRITTEN,
        status=Example.Status.SUBMITTED, author=author,
    )  # fmt: skip


@pytest.fixture
def second_annotator(task):
    return _member(task, "ben", Role.ANNOTATOR)


@pytest.fixture
def inline(settings):
    """Jobs run inline (as without REDIS_URL) even when the suite runs against a real Redis; the worker tests use a
    real `celery worker` process instead."""
    from pairsmith.celery import app

    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old
