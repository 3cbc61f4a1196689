"""A fake OpenAI-compatible chat completions server on 127.0.0.1, for the tests and the drafts benchmark.

The model provider is a boundary Pairsmith does not own: no test may depend on a real model or on the network, so the
tests talk to this stand-in, started on a loopback port by a fixture. It speaks the real wire format of
`POST /v1/chat/completions` (the official `openai` client reads it: tests/models_loop/test_fake_server.py): Bearer
authentication, the request's model and messages, a `chat.completion` object with choices and usage tokens, and
OpenAI's error objects. Its failures are scripted: a queue of `Step`s (status, headers such as Retry-After, delay,
content) answers the next requests in order; `rule(body)` may answer a request by its content; otherwise it answers
with `answer(body)` after `delay` seconds.
"""

import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLES = {"system", "developer", "user", "assistant", "tool"}
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}  # fmt: skip


@dataclass
class Step:
    status: int = 200
    content: str | None = None  # None: the fake's answer
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None  # a body sent as it is (junk, or a huge answer)
    message: str = "scripted failure"


def last_user_text(body: dict) -> str:
    return next((m["content"] for m in reversed(body["messages"]) if m.get("role") == "user"), "")


def default_answer(body: dict) -> str:
    if body.get("response_format", {}).get("type") == "json_schema":
        return '{"score": 4, "reason": "Follows the guidelines."}'
    return "Draft: " + " ".join(last_user_text(body).split())[:200]


class FakeLLM:
    def __init__(self, *, key: str = "sk-test-key", delay: float = 0.0, answer=default_answer) -> None:
        self.key = key
        self.delay = delay
        self.answer = answer
        self.rule = None  # body -> Step | None
        self.script: deque[Step] = deque()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )

    def __enter__(self) -> "FakeLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def then(self, *steps: Step) -> "FakeLLM":
        """Answer the next requests with these steps, in order."""
        self.script.extend(steps)
        return self

    def _next(self, body: dict) -> Step:
        if self.rule is not None and (step := self.rule(body)) is not None:
            return step
        with self._lock:
            return self.script.popleft() if self.script else Step(delay=self.delay)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK
    # would add about 40 ms to every answer, a delay no real server has.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.wfile.write(payload)

    def _error(self, status: int, message: str, headers: dict | None = None, code: str | None = None) -> None:
        error = {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": None, "code": code}
        self._send(status, json.dumps({"error": error}).encode(), headers)

    def do_GET(self) -> None:
        self._error(404, f"Unknown request URL: GET {self.path}.")

    def do_POST(self) -> None:
        fake: FakeLLM = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/v1/chat/completions":
            return self._error(404, f"Unknown request URL: POST {self.path}.", code="unknown_url")
        if fake.key and self.headers.get("Authorization") != f"Bearer {fake.key}":
            return self._error(401, "Incorrect API key provided.", code="invalid_api_key")
        try:
            body = json.loads(raw)
            assert isinstance(body.get("model"), str) and body["model"]
            assert isinstance(body.get("messages"), list) and body["messages"]
            assert all(isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
                       for m in body["messages"])  # fmt: skip
        except (ValueError, AssertionError):
            return self._error(400, "The request is not a valid chat completion request.")
        with fake._lock:
            fake.requests.append(body)
            fake.headers.append({name.lower(): value for name, value in self.headers.items()})
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            status, payload, headers = self._answer(fake, body)
        finally:
            # Counted as in flight until the answer starts to go out: a client that has read an answer may send its
            # next request before this thread gets here again, so counting up to the end would see one too many.
            with fake._lock:
                fake.in_flight -= 1
        self._send(status, payload, headers)

    def _answer(self, fake: "FakeLLM", body: dict) -> tuple[int, bytes, dict]:
        step = fake._next(body)
        if step.delay:
            time.sleep(step.delay)
        if step.raw is not None:
            return step.status, step.raw, step.headers
        if step.status != 200:
            error = {"message": step.message, "type": ERROR_TYPES.get(step.status, "server_error"), "param": None,
                     "code": None}  # fmt: skip
            return step.status, json.dumps({"error": error}).encode(), step.headers
        content = step.content if step.content is not None else fake.answer(body)
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        completion_tokens = len(content.split())
        reply = {
            "id": f"chatcmpl-fake{len(fake.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, json.dumps(reply).encode(), step.headers
