"""The HTTP client against the fake endpoint (a boundary Pairsmith does not own: tests/fake_llm.py): the answer and
its usage, retries with backoff on 429 and 5xx honouring Retry-After, timeouts, a wrong key, size and redirect
limits, and the concurrency limit per process."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from models_loop import client as llm_client
from models_loop.client import (
    ModelBadAnswer,
    ModelClient,
    ModelKeyRefused,
    ModelRequestRefused,
    ModelTimeout,
    ModelUnavailable,
)
from models_loop.conf import OFF_MESSAGE, ModelFeaturesOff, llm_config
from tests.fake_llm import Step

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


@pytest.fixture
def waits():
    return []


@pytest.fixture
def client(llm, waits):
    """A client whose waits are recorded instead of slept (the clock is not what is tested), with no jitter."""
    with ModelClient(llm_config(), sleep=waits.append, jitter=lambda: 1.0) as made:
        yield made


def chat(client, **kwargs):
    return client.chat(model="fake-model", messages=MESSAGES, max_tokens=50, **kwargs)


def test_a_completion_with_its_usage(client, llm):
    reply = chat(client)
    assert (reply.content, reply.tokens_in, reply.tokens_out, reply.finish_reason) == (
        "Draft: Where is my parcel?",
        4,
        5,
        "stop",
    )
    request = llm.requests[0]
    assert request == {"model": "fake-model", "messages": MESSAGES, "max_tokens": 50}
    assert llm.headers[0]["authorization"] == f"Bearer {llm.key}"
    assert llm.headers[0]["accept-encoding"] == "identity"


def test_429_and_500_are_retried_with_backoff_honouring_retry_after(client, llm, waits):
    llm.then(Step(status=429, headers={"Retry-After": "2"}), Step(status=500), Step(status=503))
    reply = chat(client)
    assert reply.content == "Draft: Where is my parcel?"
    assert len(llm.requests) == 4
    # Retry-After 2 s beats the first backoff (0.01 s); then the backoff doubles: 0.02, 0.04.
    assert waits == [2.0, 0.02, 0.04]


def test_retry_after_as_an_http_date(client, llm, waits):
    when = datetime.now(UTC) + timedelta(seconds=30)
    llm.then(Step(status=429, headers={"Retry-After": format_datetime(when, usegmt=True)}))
    chat(client)
    assert len(waits) == 1 and 27 <= waits[0] <= 31


def test_jitter_spreads_the_waits(llm, waits, settings):
    settings.LLM_RETRY_BACKOFF = 1.0
    llm.then(Step(status=500), Step(status=500))
    with ModelClient(llm_config(), sleep=waits.append, jitter=lambda: 0.0) as client:
        chat(client)
    assert waits == [0.5, 1.0]  # half of 1 s and 2 s: the low end of the jitter


def test_the_retries_are_bounded_and_the_error_says_so(client, llm, waits):
    llm.then(*[Step(status=500, message="upstream crashed")] * 4)
    with pytest.raises(ModelUnavailable) as caught:
        chat(client)
    assert str(caught.value) == "The model endpoint failed (HTTP 500: upstream crashed) (4 attempts)."
    assert len(llm.requests) == 4 and len(waits) == 3


def test_a_retry_after_longer_than_a_job_waits_fails_at_once(client, llm, waits):
    llm.then(Step(status=429, headers={"Retry-After": "3600"}, message="Rate limit reached"))
    with pytest.raises(ModelUnavailable, match="asks to wait 3600 s, longer than the 120 s a job waits"):
        chat(client)
    assert len(llm.requests) == 1 and waits == []


def test_a_timeout_is_retried_then_reported(llm, settings, waits):
    settings.LLM_TIMEOUT = 0.2
    settings.LLM_MAX_RETRIES = 1
    llm.then(Step(delay=1.0), Step(delay=1.0))
    with ModelClient(llm_config(), sleep=waits.append) as client, pytest.raises(ModelTimeout) as caught:
        chat(client)
    assert str(caught.value) == "The model endpoint did not answer within 0.2 s (LLM_TIMEOUT) (2 attempts)."
    assert len(llm.requests) == 2


def test_a_wrong_key_is_not_retried_and_says_what_to_fix(llm, settings, waits):
    settings.LLM_API_KEY = "sk-wrong-secret"
    with ModelClient(llm_config(), sleep=waits.append) as client, pytest.raises(ModelKeyRefused) as caught:
        chat(client)
    message = str(caught.value)
    assert message == ("The model endpoint refused the key (HTTP 401: Incorrect API key provided.): check LLM_API_KEY.")
    assert "sk-wrong-secret" not in message and "sk-wrong-secret" not in repr(llm_config())
    assert waits == []


def test_an_unknown_path_or_model_names_what_to_check(llm, settings):
    settings.LLM_BASE_URL = llm.url.removesuffix("/v1")  # forgot the /v1
    with ModelClient(llm_config()) as client, pytest.raises(ModelRequestRefused) as caught:
        chat(client)
    assert "has no http://127.0.0.1:" in str(caught.value) and "(it usually ends in /v1)" in str(caught.value)


def test_a_redirect_is_not_followed(client, llm):
    llm.then(Step(status=307, raw=b"", headers={"Location": "http://example.com/v1/chat/completions"}))
    with pytest.raises(ModelRequestRefused, match=r"redirect \(HTTP 307 to http://example.com/v1/chat/completions\)"):
        chat(client)
    assert len(llm.requests) == 1


def test_an_answer_over_the_size_limit_is_refused(client, llm, settings):
    settings.LLM_MAX_RESPONSE_BYTES = 4096
    llm.then(Step(content="x" * 10_000))
    with ModelClient(llm_config()) as small, pytest.raises(ModelBadAnswer, match="over 4,096 bytes"):
        chat(small)
    assert chat(client).content.startswith("Draft:")  # the next answer, under the limit of the default client


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html>Bad gateway</html>", "is not JSON (it begins '<html>Bad gateway</html>')"),
        (b'{"choices": []}', "has no choices"),
        (b'{"choices": [{"message": {"role": "assistant", "content": null, "refusal": "I cannot."}}]}',
         "The model declined: I cannot."),
    ],
)  # fmt: skip
def test_an_answer_that_is_not_a_completion_says_so(client, llm, raw, message):
    llm.then(Step(raw=raw))
    with pytest.raises(ModelBadAnswer) as caught:
        chat(client)
    assert message in str(caught.value)


def test_an_unreachable_endpoint_is_retried_then_reported(settings, waits):
    from tests.fake_llm import FakeLLM

    with FakeLLM() as gone:
        url = gone.url
    settings.LLM_BASE_URL, settings.LLM_MAX_RETRIES, settings.LLM_RETRY_BACKOFF = url, 1, 0.01
    with ModelClient(llm_config(), sleep=waits.append) as client, pytest.raises(ModelUnavailable) as caught:
        chat(client)
    assert f"The model endpoint at {url} could not be reached" in str(caught.value)
    assert "(2 attempts)" in str(caught.value)


def test_at_most_the_concurrency_limit_is_in_flight(llm, settings):
    settings.LLM_CONCURRENCY = 3
    llm.delay = 0.05
    with ModelClient(llm_config()) as client, ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda i: chat(client), range(24)))
    assert len(replies) == 24
    assert llm.max_in_flight <= 3


def test_the_limit_is_per_process_across_clients(llm, settings):
    settings.LLM_CONCURRENCY = 2
    llm.delay = 0.05
    clients = [ModelClient(llm_config()) for _ in range(4)]  # four jobs in one worker process
    threads = [threading.Thread(target=lambda c=c: [chat(c) for _ in range(3)]) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for made in clients:
        made.close()
    assert len(llm.requests) == 12 and llm.max_in_flight <= 2
    assert llm_client._gate(2) is llm_client._gate(2)


def test_unset_the_features_are_off(llm_off):
    with pytest.raises(ModelFeaturesOff) as caught:
        llm_config()
    assert str(caught.value) == OFF_MESSAGE
    assert OFF_MESSAGE.startswith("The model features are off: set LLM_BASE_URL")
