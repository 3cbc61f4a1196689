"""The fake endpoint speaks the real wire format: the official `openai` Python client reads its answers and errors.

The model provider is a boundary Pairsmith does not own; these tests keep the stand-in honest, so that what the other
tests prove against it holds against a real OpenAI-compatible server.
"""

import openai
import pydantic
import pytest

from models_loop.prompts import JUDGE_RESPONSE_FORMAT
from tests.fake_llm import Step


def _client(fake, key=None) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url, api_key=key or fake.key, max_retries=0, timeout=5)


def test_the_openai_client_reads_a_chat_completion_with_usage(fake_llm):
    with _client(fake_llm) as client:
        completion = client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my parcel?"}],
        )
    assert completion.object == "chat.completion"
    assert completion.model == "fake-model"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Draft: Where is my parcel?"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        6,
        5,
        11,
    )
    assert fake_llm.headers[0]["authorization"] == f"Bearer {fake_llm.key}"


def test_the_openai_client_parses_the_judges_structured_output(fake_llm):
    class Judgement(pydantic.BaseModel):
        score: int
        reason: str

    with _client(fake_llm) as client:
        raw = client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "Judge this."}],
            response_format=JUDGE_RESPONSE_FORMAT,
        )
        parsed = client.chat.completions.parse(
            model="fake-model", messages=[{"role": "user", "content": "Judge this."}], response_format=Judgement
        )
    assert raw.choices[0].message.content == '{"score": 4, "reason": "Follows the guidelines."}'
    assert parsed.choices[0].message.parsed == Judgement(score=4, reason="Follows the guidelines.")
    assert fake_llm.requests[0]["response_format"]["json_schema"]["schema"]["required"] == ["score", "reason"]


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (Step(status=429, headers={"Retry-After": "3"}, message="Rate limit reached"), openai.RateLimitError),
        (Step(status=500, message="The server had an error"), openai.InternalServerError),
    ],
)
def test_the_openai_client_reads_its_scripted_failures(fake_llm, step, error):
    fake_llm.then(step)
    with _client(fake_llm) as client, pytest.raises(error) as caught:
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.message.endswith(step.message)
    assert caught.value.response.headers.get("retry-after") == step.headers.get("Retry-After")


def test_the_openai_client_sees_a_wrong_key_as_an_authentication_error(fake_llm):
    with _client(fake_llm, key="sk-wrong") as client, pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert fake_llm.requests == []  # refused before anything was asked
