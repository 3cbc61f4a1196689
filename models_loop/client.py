"""POST {LLM_BASE_URL}/chat/completions in OpenAI's wire format, with the limits a background job needs.

- Timeouts: LLM_TIMEOUT seconds to connect, between two reads, and for the whole answer (a server that drips bytes
  cannot hold a worker either).
- Retries: up to LLM_MAX_RETRIES more attempts on 408, 429 and 5xx answers, timeouts and dropped connections, waiting
  LLM_RETRY_BACKOFF × 2^n seconds with jitter, or longer when the server's Retry-After asks for it (up to
  MAX_RETRY_AFTER; an endpoint asking for more is reported, not waited for).
- A concurrency limit per worker process: at most LLM_CONCURRENCY requests in flight, however many threads and jobs
  the process runs.
- The answer is read up to LLM_MAX_RESPONSE_BYTES and asked for uncompressed, so a broken or hostile endpoint cannot
  make a worker read or inflate without end.
- Clear errors: every failure is a ModelError whose message says what to fix; the key is never in one. Redirects are
  not followed: requests go only to the configured address.
"""

import email.utils
import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx2 as httpx

from .conf import LLMConfig

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0  # seconds; an endpoint that asks to wait longer fails the request with that said
BACKOFF_CAP = 30.0
DETAIL_CHARS = 300  # of a server's error message quoted back


class ModelError(Exception):
    """A request to the model failed. str(error) is a message for people."""


class ModelKeyRefused(ModelError):
    """401 or 403: the endpoint refused LLM_API_KEY."""


class ModelTimeout(ModelError):
    """No (complete) answer within LLM_TIMEOUT, on every attempt."""


class ModelUnavailable(ModelError):
    """429 or 5xx or a dropped connection on every attempt, or a Retry-After longer than a job waits."""


class ModelRequestRefused(ModelError):
    """Another 4xx, or a redirect: retrying would not help."""


class ModelBadAnswer(ModelError):
    """The answer is not a chat completion (not JSON, no choices, too large, no content)."""


@dataclass(frozen=True)
class Reply:
    content: str
    tokens_in: int
    tokens_out: int
    finish_reason: str


class _Retryable(Exception):
    def __init__(self, error: type[ModelError], message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.retry_after = retry_after


_gates: dict[int, threading.BoundedSemaphore] = {}
_gates_lock = threading.Lock()


def _gate(limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore for `limit` requests in flight (one per value, so tests may change the limit)."""
    with _gates_lock:
        return _gates.setdefault(limit, threading.BoundedSemaphore(limit))


class ModelClient:
    """One endpoint's client; thread-safe (a job calls `chat` from several threads). Close it, or use `with`."""

    def __init__(self, config: LLMConfig, *, sleep=time.sleep, jitter=random.random) -> None:
        self.config = config
        self._sleep = sleep
        self._jitter = jitter
        self._url = f"{config.base_url}/chat/completions"
        self._gate = _gate(config.concurrency)
        headers = {"Accept-Encoding": "identity", "User-Agent": "pairsmith"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._http = httpx.Client(
            timeout=httpx.Timeout(config.timeout),
            headers=headers,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
        )

    def __enter__(self) -> "ModelClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def chat(self, *, model: str, messages: list[dict], max_tokens: int, response_format: dict | None = None) -> Reply:
        """One chat completion, retried as the module says. Raise ModelError (one of its kinds)."""
        body: dict = {"model": model, "messages": messages, "max_tokens": max_tokens}
        if response_format is not None:
            body["response_format"] = response_format
        attempts = 1 + self.config.max_retries
        for attempt in range(1, attempts + 1):
            try:
                with self._gate:
                    return self._once(body, model)
            except _Retryable as exc:
                if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER:
                    raise ModelUnavailable(
                        f"{exc} and asks to wait {exc.retry_after:.0f} s, longer than the {MAX_RETRY_AFTER:.0f} s a "
                        "job waits: try again later."
                    ) from None
                if attempt == attempts:
                    tries = f"{attempts} attempts" if attempts > 1 else "1 attempt, no retries (LLM_MAX_RETRIES=0)"
                    raise exc.error(f"{exc} ({tries}).") from None
                self._sleep(self._backoff(attempt, exc.retry_after))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        base = min(BACKOFF_CAP, self.config.retry_backoff * 2 ** (attempt - 1))
        wait = base * (0.5 + 0.5 * self._jitter())  # jitter: workers that failed together do not retry together
        return max(wait, retry_after or 0.0)

    def _once(self, body: dict, model: str) -> Reply:
        timeout = self.config.timeout
        deadline = time.monotonic() + timeout
        try:
            with self._http.stream("POST", self._url, json=body) as response:
                raw = self._read(response, deadline)
        except httpx.TimeoutException:
            raise _Retryable(
                ModelTimeout, f"The model endpoint did not answer within {timeout:g} s (LLM_TIMEOUT)"
            ) from None
        except (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            raise _Retryable(
                ModelUnavailable, f"The model endpoint at {self.config.base_url} could not be reached ({exc})"
            ) from None
        except httpx.HTTPError as exc:
            raise ModelError(f"The request to the model endpoint failed: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 200:
            return parse_completion(raw)
        detail = _error_detail(raw)
        said = f"HTTP {status}{': ' + detail if detail else ''}"
        if status in (401, 403):
            raise ModelKeyRefused(f"The model endpoint refused the key ({said}): check LLM_API_KEY.")
        if status in RETRY_STATUSES:
            busy = "is rate-limiting" if status == 429 else "failed"
            raise _Retryable(ModelUnavailable, f"The model endpoint {busy} ({said})", _retry_after(response.headers))
        if 300 <= status < 400:
            raise ModelRequestRefused(
                f"The model endpoint answered with a redirect (HTTP {status} to "
                f"{response.headers.get('location', '?')[:200]}); set LLM_BASE_URL to the address that answers."
            )
        if status == 404:
            raise ModelRequestRefused(
                f"The model endpoint has no {self._url}, or no model {model!r} ({said}): check LLM_BASE_URL (it "
                "usually ends in /v1) and the model name."
            )
        raise ModelRequestRefused(f"The model endpoint refused the request ({said}).")

    def _read(self, response, deadline: float) -> bytes:
        limit = self.config.max_response_bytes
        data = bytearray()
        for chunk in response.iter_raw():
            data += chunk
            if len(data) > limit:
                raise ModelBadAnswer(
                    f"The model endpoint's answer is over {limit:,} bytes (LLM_MAX_RESPONSE_BYTES); nothing was kept."
                )
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the whole answer took too long")
        return bytes(data)


def parse_completion(raw: bytes) -> Reply:
    """The first choice's text and the usage of an OpenAI chat completion. Raise ModelBadAnswer."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ModelBadAnswer(f"The model endpoint's answer is not JSON (it begins {_snippet(raw)}).") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelBadAnswer(f"The model endpoint's answer has no choices (it begins {_snippet(raw)}).")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ModelBadAnswer("The model endpoint's answer has no message in its first choice.")
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    if not isinstance(content, str):
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            raise ModelBadAnswer(f"The model declined: {refusal[:DETAIL_CHARS]}")
        raise ModelBadAnswer("The model endpoint's answer has no text content.")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    finish = choices[0].get("finish_reason")
    return Reply(
        content=content,
        tokens_in=_count(usage.get("prompt_tokens")),
        tokens_out=_count(usage.get("completion_tokens")),
        finish_reason=finish if isinstance(finish, str) else "",
    )


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12 else 0


def _retry_after(headers) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date. None when absent or unreadable."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_detail(raw: bytes) -> str:
    """The server's own error message (OpenAI's {"error": {"message"}} or plain text), short and on one line."""
    text = ""
    try:
        data = json.loads(raw)
    except ValueError:
        text = raw[:DETAIL_CHARS].decode("utf-8", "replace")
    else:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            text = str(error.get("message") or "")
        elif isinstance(error, str):
            text = error
        elif isinstance(data, dict) and isinstance(data.get("detail"), str):
            text = data["detail"]
    return " ".join(text.split())[:DETAIL_CHARS]


def _snippet(raw: bytes) -> str:
    return repr(raw[:60].decode("utf-8", "replace"))
