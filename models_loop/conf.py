"""The model endpoint's configuration, read from Django settings (which read the environment: LLM_*).

The endpoint, its key and the default model come from the environment only: nothing a user types in the UI is ever
used as an address. A task's lead chooses only the model name and the prompts (models_loop.models.TaskModelSettings).
"""

from dataclasses import dataclass

from django.conf import settings

OFF_MESSAGE = (
    "The model features are off: set LLM_BASE_URL (an OpenAI-compatible endpoint such as http://127.0.0.1:8080/v1), "
    "and LLM_API_KEY and LLM_MODEL as the endpoint needs, in the environment of the web and worker processes."
)


class ModelFeaturesOff(Exception):
    """No endpoint is configured (LLM_BASE_URL unset)."""

    def __init__(self) -> None:
        super().__init__(OFF_MESSAGE)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    api_key: str
    model: str
    timeout: float
    max_retries: int
    retry_backoff: float
    concurrency: int
    max_response_bytes: int
    max_tokens: int

    def __repr__(self) -> str:  # the key never appears in a log line or a traceback's locals
        return f"LLMConfig(base_url={self.base_url!r}, model={self.model!r}, key={'set' if self.api_key else 'unset'})"


def is_on() -> bool:
    return bool(settings.LLM_BASE_URL)


def llm_config() -> LLMConfig:
    """The configuration now. Raise ModelFeaturesOff when no endpoint is configured."""
    if not is_on():
        raise ModelFeaturesOff
    return LLMConfig(
        base_url=settings.LLM_BASE_URL.rstrip("/"),
        api_key=settings.LLM_API_KEY,
        model=settings.LLM_MODEL,
        timeout=max(0.01, float(settings.LLM_TIMEOUT)),
        max_retries=max(0, int(settings.LLM_MAX_RETRIES)),
        retry_backoff=max(0.0, float(settings.LLM_RETRY_BACKOFF)),
        concurrency=max(1, int(settings.LLM_CONCURRENCY)),
        max_response_bytes=max(1024, int(settings.LLM_MAX_RESPONSE_BYTES)),
        max_tokens=max(1, int(settings.LLM_MAX_TOKENS)),
    )
