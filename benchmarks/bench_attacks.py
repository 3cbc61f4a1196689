"""Attack replay (issue #12, "bounded work on every request"): the requests that stopped the server, sent to a
production-like gunicorn, each timed, while a thread polls /healthz every 50 ms.

1. Three inline-feedback requests at once on an example whose instruction is 50,000 words "a", the completion those
   words plus " b"; then a save and a submit of it at once (their completion one "a" shorter, to stay within the
   100,000-character limit); on a json task whose schema (set by the lead) has `uniqueItems`, feedback on a 98 KB
   array of objects and on "1" × 5,000.
2. A 100,000-character submission ('x\\n' + 'a\\n' × 49,999) flagged and resubmitted as 'y\\n' + 'a\\n' × 49,999:
   the review page, the timeline and "next pair" (POST, falling back to GET when the server answers 405).
3. A schema `pattern` `^([a-z0-9]+)+$` and a value of 53 letters and "!"; a schema `$ref` to a loopback server of
   this benchmark that answers after 30 s: it must receive no request.
4. A template of `{input}` × 10,000: the preview (a 1,000-character sample input) and the save; then, outside the
   timed window, an import of 200 records and their prompt-completion export (the size of train.jsonl); the
   timeline of an imported example.
5. One annotator autosaving different 100,000-character texts in a loop for 10 s, from three tabs (one example
   each, so that their saves do not conflict): answers per second (stored, 429, other) and the growth of the
   revisions and examples tables.

Verdict per attack, the acceptance of the issue: every answer 2xx, 3xx or 4xx (never 5xx, never none) within 2 s,
and /healthz answered under 100 ms, with no failure, while the attack's requests run. gunicorn as docker-compose
runs it: 3 sync workers, its default 30 s timeout, DEBUG off; the client waits 40 s for an answer. Between attacks
the server settles (/healthz fast five times in a row, up to 60 s) and every worker is warmed up again.

Needs PostgreSQL (DATABASE_URL). Options: --only 1,3 · --loop-seconds and --tabs (attack 5, default 10 s and 3) ·
--sample-chars (attack 4's preview input, default 1,000: a 40 MB preview before the fix, growing in proportion) ·
--keep (keep the tasks `bench-attacks-*`, otherwise dropped at the start and the end). Exits 0 whatever the
verdicts: it reports.
"""

import argparse
import base64
import contextlib
import http.client
import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from .bench_load import EDIT_URL, SAVED_VERSION, VERSION_INPUT, migrated, page_message, refusal_message
from .common import ROOT, gunicorn, percentile, require_postgres, session_cookie_for, setup_django

SLUG = "bench-attacks"
WORKERS = 3  # docker-compose.yml: `gunicorn … --workers 3`, sync workers, default --timeout 30
CLIENT_TIMEOUT = 40.0  # longer than gunicorn's 30 s: a request it kills shows as "no answer", not as a client timeout
ANSWER_BUDGET = 2.0  # seconds, the acceptance of the issue
HEALTH_BUDGET_MS = 100.0
HEALTH_EVERY = 0.05
HEALTH_TIMEOUT = 1.0  # a /healthz not answered within this counts as a failure
SETTLE_LIMIT = 60.0
SLOW_REF_SECONDS = 30.0
LOOP_MAX_REQUESTS = 2_000  # attack 5 ends at its deadline long before
IMPORT_RECORDS, IMPORT_INPUT_CHARS = 200, 20
CHILD_TIMEOUT = 180
USERS = ("lead", "reviewer", "warm", *(f"annotator-{n}" for n in range(1, 6)))
TASKS = {  # key: (output format, preset)
    "1": ("text", "qa-context"),
    "1-json": ("json", "extraction-json"),
    "2": ("text", "qa-context"),
    "3-pattern": ("json", "extraction-json"),
    "3-ref": ("json", "extraction-json"),
    "4": ("text", "classification"),
    "5": ("text", "qa-context"),
    "warm": ("text", "qa-context"),
}


# --- HTTP --------------------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no answer (the connection closed or the client timed out)
    seconds: float
    size: int
    location: str = ""
    hx_redirect: str = ""
    body: bytes = b""
    error: str = ""

    def text(self) -> str:
        return self.body[:20_000_000].decode("utf-8", "replace")

    @property
    def answered(self) -> bool:
        """2xx, 3xx or 4xx: an answer. 5xx or none: not."""
        return 200 <= self.status < 500


def request(
    port: int, method: str, path: str, *, headers: dict | None = None, fields=None, timeout: float = CLIENT_TIMEOUT
) -> Answer:
    """One request on a new connection (sync gunicorn workers close it after each answer anyway), timed."""
    body = None if fields is None else urlencode(fields, doseq=True)
    sent = {"Host": "127.0.0.1", **(headers or {})}
    if body is not None:
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=sent)
        raw = conn.getresponse()
        data = raw.read()
        return Answer(
            raw.status,
            time.monotonic() - started,
            len(data),
            raw.getheader("Location") or "",
            raw.getheader("HX-Redirect") or "",
            data,
        )
    except TimeoutError:
        return Answer(0, time.monotonic() - started, 0, error=f"no answer within {timeout:.0f} s")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(0, time.monotonic() - started, 0, error=f"closed without an answer ({type(exc).__name__})")
    finally:
        conn.close()


class Forms(HTMLParser):
    """The forms of a page as a browser submits them: one list of (name, value) pairs per form."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[list[tuple[str, str]]] = []
        self._textarea: list | None = None
        self._select: dict | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append([])
        elif not self.forms or (not a.get("name") and tag != "option"):
            return
        elif tag == "input" and a.get("type", "text") not in ("submit", "button", "image", "reset", "file"):
            if a.get("type") not in ("checkbox", "radio"):
                self.forms[-1].append((a["name"], a.get("value") or ""))
            elif "checked" in a:
                self.forms[-1].append((a["name"], a.get("value") or "on"))  # a browser's value for a bare checkbox
        elif tag == "textarea":
            self._textarea = [a["name"], ""]
        elif tag == "select":
            self._select = {"name": a["name"], "first": None, "chosen": []}
        elif tag == "option" and self._select is not None:
            value = a.get("value") or ""
            self._select["first"] = value if self._select["first"] is None else self._select["first"]
            if "selected" in a:
                self._select["chosen"].append(value)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea is not None:
            name, value = self._textarea
            self.forms[-1].append((name, value.removeprefix("\n")))  # a browser drops the newline after <textarea>
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = self._select["chosen"] or [self._select["first"] or ""]
            self.forms[-1].extend((self._select["name"], value) for value in chosen)
            self._select = None

    def having(self, name: str, **values: str) -> list[tuple[str, str]] | None:
        """The first form with a field `name`, with `values` in place of what it holds."""
        form = next((f for f in self.forms if any(key == name for key, _ in f)), None)
        if form is None:
            return None
        return [(k, v) for k, v in form if k not in values] + list(values.items())


# --- the /healthz poller and the slow $ref server -----------------------------------------------------------------


class Health(threading.Thread):
    """/healthz every 50 ms on a new connection, as a load balancer's probe: (start, ms) with ms None on a failure."""

    def __init__(self, port: int) -> None:
        super().__init__(name="healthz", daemon=True)
        self.port, self.samples, self.stopping = port, [], threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            answer = request(self.port, "GET", "/healthz", timeout=HEALTH_TIMEOUT)
            good = answer.status == 200 and answer.body == b"ok"
            self.samples.append((started, answer.seconds * 1000 if good else None))
            self.stopping.wait(max(0.0, HEALTH_EVERY - answer.seconds))

    def within(self, windows: list[tuple[float, float]]) -> list[float | None]:
        return [ms for started, ms in list(self.samples) if any(t0 <= started <= t1 for t0, t1 in windows)]


class SlowRef:
    """A loopback HTTP server answering any GET with `{}` after 30 s: what a schema `$ref` must never reach."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        release = self.release = threading.Event()
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                hits.append(self.path)
                release.wait(SLOW_REF_SECONDS)
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/schema.json"

    def __enter__(self) -> "SlowRef":
        threading.Thread(target=self.server.serve_forever, name="slow-ref", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# --- one attack: its requests, its windows, its verdict ------------------------------------------------------------


@dataclass
class Attack:
    number: int
    title: str
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # request, status, seconds, bytes, note
    answers: list[Answer] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # failures beyond the answers (the slow $ref server reached)
    # Steps that should never be refused (a short example, the settings form) and were: the attack did not run whole.
    incomplete: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def timed(self):
        """The span whose /healthz answers count for this attack."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.windows.append((started, time.monotonic()))

    def record(self, label: str, answer: Answer, note: str = "") -> Answer:
        self.answers.append(answer)
        if not note:
            where = "the editor" if EDIT_URL.search(answer.location) else urlsplit(answer.location).path
            note = answer.error or (f"→ {where}" if answer.location else "")
            note = note or ("server error" if answer.status >= 500 else "")
        status = str(answer.status) if answer.status else "—"
        self.rows.append((label, status, f"{answer.seconds:.2f}", f"{answer.size:,}", note))
        return answer

    def verdict(self, health: Health) -> tuple[str, str]:
        """PASS, FAIL or INCOMPLETE, and the line saying why."""
        polls = health.within(self.windows)
        times = [ms for ms in polls if ms is not None]
        failed = len(polls) - len(times)
        worst = max(times, default=float("nan"))
        late = sum(1 for a in self.answers if a.answered and a.seconds > ANSWER_BUDGET)
        unanswered = sum(1 for a in self.answers if not a.answered)
        why = []
        if unanswered:
            why.append(f"{unanswered} without an answer or 5xx")
        if late:
            why.append(f"{late} answered after {ANSWER_BUDGET:.0f} s")
        if failed:
            why.append(f"{failed} /healthz failures")
        if not times or worst >= HEALTH_BUDGET_MS:
            why.append(f"/healthz max {worst:,.0f} ms")
        why += self.failures
        health_line = (
            f"/healthz: {len(polls):,} polls, max {worst:,.0f} ms, p95 {percentile(times, 95):,.0f} ms, "
            f"{failed} failures"
        )
        if why:
            return "FAIL", f"{health_line}  FAIL: {'; '.join(why)}"
        if self.incomplete:
            return "INCOMPLETE", f"{health_line}  INCOMPLETE: {'; '.join(self.incomplete)}"
        return "PASS", f"{health_line}  PASS"


class Bench:
    """The server, the users' cookies and the tasks: what the attacks send their requests with."""

    def __init__(self, port: int, cookies: dict, slow_ref: "SlowRef") -> None:
        self.port, self.cookies, self.slow_ref = port, cookies, slow_ref

    def headers(self, who: str, htmx: bool = False) -> dict:
        cookie = self.cookies[who]
        return {"Cookie": cookie["cookie"], "X-CSRFToken": cookie["csrf"], **({"HX-Request": "true"} if htmx else {})}

    def send(self, who: str, method: str, path: str, fields=None, *, htmx: bool = False) -> Answer:
        return request(self.port, method, path, headers=self.headers(who, htmx), fields=fields)

    def at_once(self, sends: list[tuple]) -> list[Answer]:
        """(who, method, path, fields, htmx) each from its own thread, released together."""
        barrier = threading.Barrier(len(sends))
        answers: list[Answer | None] = [None] * len(sends)

        def go(i: int, who: str, method: str, path: str, fields, htmx: bool) -> None:
            barrier.wait()
            answers[i] = self.send(who, method, path, fields, htmx=htmx)

        threads = [threading.Thread(target=go, args=(i, *s)) for i, s in enumerate(sends)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    # --- steps shared by the attacks -----------------------------------------------------------------------------

    def new_example(
        self, attack: Attack, who: str, task: str, label: str, instruction: str, completion: str = "", *, benign: bool
    ) -> str | None:
        """Write a new example (the annotator's "write new"); its uuid, or None when refused (said in the note). A
        refused `benign` one (a short instruction) means the attack could not run whole."""
        fields = {"instruction": instruction, "context": "", "input": "", "completion": completion, "kind": "edge"}
        answer = self.send(who, "POST", f"/tasks/{SLUG}-{task}/examples/new/", fields)
        match = EDIT_URL.search(answer.location) if answer.status == 302 else None
        attack.record(label, answer, "refused: " + _message(answer) if answer.status == 200 else "")
        if match is None and benign:
            attack.incomplete.append(f"“{label}” was not accepted: the requests after it were not sent")
        return match.group(1) if match else None

    def version_of(self, attack: Attack, who: str, task: str, uuid: str, label: str = "open the editor") -> int:
        answer = attack.record(label, self.send(who, "GET", f"/tasks/{SLUG}-{task}/examples/{uuid}/edit/"))
        found = VERSION_INPUT.search(answer.text()) if answer.status == 200 else None
        return int(found.group(1)) if found else 1

    def set_schema(self, attack: Attack, task: str, label: str, schema: dict) -> bool:
        """The lead sets the task's JSON Schema through the settings form; True when it was stored."""
        path = f"/tasks/{SLUG}-{task}/settings/"
        page = attack.record("lead: open the task settings", self.send("lead", "GET", path))
        fields = Forms(page.text()).having("json_schema", json_schema=json.dumps(schema), output_format="json")
        if fields is None:
            attack.incomplete.append(f"{label}: no settings form found (status {page.status}), the schema was not set")
            return False
        answer = self.send("lead", "POST", path, fields)
        stored = answer.status == 302
        attack.record(label, answer, "stored" if stored else "refused: " + _message(answer) if answer.answered else "")
        return stored

    def feedback(self, attack: Attack, who: str, task: str, uuid: str, label: str, completion: str) -> Answer:
        path = f"/tasks/{SLUG}-{task}/examples/{uuid}/feedback/"
        return attack.record(label, self.send(who, "POST", path, {"completion": completion}, htmx=True))

    def next_pair(self, attack: Attack, who: str, task: str) -> Answer:
        """ "Next pair": POST (state changes on POST), GET when this server answers 405; a redirect is followed."""
        path = f"/tasks/{SLUG}-{task}/review/next/"
        answer = self.send(who, "POST", path, {})
        label = "reviewer: next pair (POST)"
        if answer.status == 405:
            attack.record(label, answer, "405: this server takes GET")
            answer, label = self.send(who, "GET", path), "reviewer: next pair (GET)"
        attack.record(label, answer)
        if answer.status in (302, 303) and "/review/" in answer.location:
            answer = attack.record("reviewer: the pair it redirects to", self.send(who, "GET", answer.location))
        return answer


def _message(answer: Answer) -> str:
    """What a refusal says, shortened for the table."""
    text = answer.text() if answer.size < 5_000_000 else ""
    message = refusal_message(text) if answer.status < 400 else page_message(text)
    if not message and "errorlist" in text:
        start = text.find("errorlist")
        message = " ".join(text[text.find(">", start) + 1 :].split("<")[0].split()) or ""
    return (message or "no message found")[:90]


# --- the attacks -------------------------------------------------------------------------------------------------


def attack_1(bench: Bench, attack: Attack, args) -> None:
    words = " ".join(["a"] * 50_000)
    with attack.timed():
        uuid = bench.new_example(
            attack, "annotator-1", "1", "write new: instruction of 50,000 words", words, benign=False
        )
    if uuid is None:  # refused: the feedback still gets the big completion, on a small prompt
        with attack.timed():
            uuid = bench.new_example(
                attack, "annotator-1", "1", "write new: a short instruction", "Summarise.", benign=True
            )
    if uuid is None:
        attack.notes.append("no example to send feedback on: the feedback requests were not sent")
    else:
        base = f"/tasks/{SLUG}-1/examples/{uuid}"
        with attack.timed():
            version = bench.version_of(attack, "annotator-1", "1", uuid)
            feedback = ("annotator-1", "POST", f"{base}/feedback/", {"completion": words + " b"}, True)
            for i, answer in enumerate(bench.at_once([feedback] * 3), 1):
                attack.record(f"feedback, 3 at once: the words + ' b' ({i})", answer)
            text = " ".join(["a"] * 49_999) + " b"  # 99,999 characters: within the 100,000 limit
            fields = {"completion": text, "kind": "edge", "version": version}
            save, submit = bench.at_once(
                [
                    ("annotator-1", "POST", f"{base}/save/", fields, True),
                    ("annotator-1", "POST", f"{base}/submit/", fields, False),
                ]
            )
            attack.record("save, with the submit at once (99,999 chars)", save)
            attack.record("submit, with the save at once", submit)
    with attack.timed():
        schema = {"type": "array", "uniqueItems": True, "items": {"type": "object"}}
        bench.set_schema(attack, "1-json", "lead: schema with uniqueItems", schema)
        uuid = bench.new_example(
            attack, "annotator-1", "1-json", "write new on the json task", "List the items.", benign=True
        )
        if uuid is not None:
            items, size = [], 0
            while size < 98_000:
                items.append(f'{{"a":{len(items)}}}')
                size += len(items[-1]) + 1
            listing = "[" + ",".join(items) + "]"
            bench.feedback(
                attack,
                "annotator-1",
                "1-json",
                uuid,
                f"feedback: array of {len(items):,} objects, {len(listing) // 1000} KB",
                listing,
            )
            bench.feedback(attack, "annotator-1", "1-json", uuid, 'feedback: "1" × 5,000', "1" * 5_000)


def attack_2(bench: Bench, attack: Attack, args) -> None:
    first, second = "x\n" + "a\n" * 49_999, "y\n" + "a\n" * 49_999
    review = f"/tasks/{SLUG}-2/review"
    with attack.timed():
        uuid = bench.new_example(
            attack, "annotator-2", "2", "write new: 'x' + 'a' lines, 100,000 chars", "Items?", first, benign=False
        )
        if uuid is None:
            attack.notes.append("the 100,000-character example was refused: nothing to review")
            return
        version = bench.version_of(attack, "annotator-2", "2", uuid)
        fields = {"completion": first, "kind": "edge", "version": version}
        attack.record(
            "submit it", bench.send("annotator-2", "POST", f"/tasks/{SLUG}-2/examples/{uuid}/submit/", fields)
        )
        page = attack.record("reviewer: open it", bench.send("reviewer", "GET", f"{review}/{uuid}/"))
        found = VERSION_INPUT.search(page.text()) if page.status == 200 else None
        flag = {
            "decision": "flag",
            "version": found.group(1) if found else version + 1,
            "reasons": "inaccurate",
            "comment": "Check the first line.",
            "queue": "",
        }
        answer = bench.send("reviewer", "POST", f"{review}/{uuid}/decide/", flag, htmx=True)
        attack.record("reviewer: flag it", answer, "flagged" if answer.hx_redirect else "")
        version = bench.version_of(attack, "annotator-2", "2", uuid, "open the flagged example")
        fields = {"completion": second, "kind": "edge", "version": version}
        path = f"/tasks/{SLUG}-2/examples/{uuid}/submit/"
        attack.record("resubmit 'y' + 'a' lines", bench.send("annotator-2", "POST", path, fields))
        attack.record("reviewer: the review page", bench.send("reviewer", "GET", f"{review}/{uuid}/"))
        path = f"/tasks/{SLUG}-2/examples/{uuid}/"
        attack.record("reviewer: the example's timeline", bench.send("reviewer", "GET", path))
        bench.next_pair(attack, "reviewer", "2")


def attack_3(bench: Bench, attack: Attack, args) -> None:
    letters = (string.ascii_lowercase * 3)[:53]
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": "^([a-z0-9]+)+$"}}}
    with attack.timed():
        bench.set_schema(attack, "3-pattern", "lead: schema pattern ^([a-z0-9]+)+$", schema)
        uuid = bench.new_example(
            attack, "annotator-3", "3-pattern", "write new on the json task", "Extract v.", benign=True
        )
        if uuid is not None:
            label = "feedback: value of 53 letters + '!'"
            bench.feedback(attack, "annotator-3", "3-pattern", uuid, label, json.dumps({"v": letters + "!"}))
    slow = bench.slow_ref
    before = len(slow.hits)
    with attack.timed():
        bench.set_schema(attack, "3-ref", "lead: schema $ref to a slow loopback URL", {"$ref": slow.url})
        uuid = bench.new_example(
            attack, "annotator-3", "3-ref", "write new on the json task", "Extract v.", benign=True
        )
        if uuid is not None:
            bench.feedback(attack, "annotator-3", "3-ref", uuid, "feedback: {} against the $ref schema", "{}")
    time.sleep(0.2)  # a fetch started by the last request has reached the server by now
    reached = len(slow.hits) - before
    attack.notes.append(f"the slow $ref server received {reached} request(s)" + (": FAIL" if reached else ""))
    if reached:
        attack.failures.append(f"the $ref server was reached {reached} time(s)")


def attack_4(bench: Bench, attack: Attack, args) -> None:
    from annotate.models import Example

    repeated = "{input}" * 10_000
    path = f"/tasks/{SLUG}-4/template/"
    with attack.timed():
        page = attack.record("lead: open the template page", bench.send("lead", "GET", path))
        formats = {"prompt_format": repeated, "chat_user_format": repeated, "alpaca_input_format": repeated}
        fields = Forms(page.text()).having("prompt_format", sample_input="x" * args.sample_chars, **formats)
        if fields is None:
            attack.incomplete.append(f"no template form found (status {page.status}): nothing sent")
            return
        label = f"lead: preview, {{input}} × 10,000, sample {args.sample_chars:,} chars"
        attack.record(label, bench.send("lead", "POST", f"{path}preview/", fields, htmx=True))
        answer = bench.send("lead", "POST", path, [*fields, ("save", "1")])
        note = "stored" if answer.status == 302 else "refused: " + _message(answer) if answer.answered else ""
        attack.record("lead: save that template", answer, note)
    export = offline_import_export(attack)
    uuid = Example.objects.filter(task__slug=f"{SLUG}-4").values_list("uuid", flat=True).first()
    if uuid is not None:
        with attack.timed():
            label = "lead: timeline of an imported example"
            attack.record(label, bench.send("lead", "GET", f"/tasks/{SLUG}-4/examples/{uuid}/"))
    attack.notes.append(export)


def offline_import_export(attack: Attack) -> str:
    """Import 200 small records (approved) with `import_examples` and export them as prompt-completion with
    `export_dataset`, in child processes outside the timed window (jobs inline, no Redis): the sizes, in a line."""
    folder = Path(tempfile.mkdtemp(prefix="pairsmith-bench-attacks-"))
    try:
        source = folder / "import.jsonl"
        with source.open("w") as out:
            for i in range(IMPORT_RECORDS):
                record = {
                    "instruction": f"Classify text {i}.",
                    "input": f"{i:0{IMPORT_INPUT_CHARS}d}",
                    "completion": "positive",
                }
                out.write(json.dumps(record) + "\n")
        env = {**os.environ, "REDIS_URL": "", "EXPORT_ROOT": str(folder / "exports"), "LOG_LEVEL": "WARNING"}
        slug = f"{SLUG}-4"
        started = time.monotonic()
        done = _child(["import_examples", slug, str(source), "--status", "approved"], env)
        imported = time.monotonic() - started
        if done.returncode != 0:
            return f"offline import refused ({imported:.1f} s): {_last_line(done)}"
        started = time.monotonic()
        done = _child(["export_dataset", slug, "--format", "prompt-completion", "--wait", "--json"], env)
        exported = time.monotonic() - started
        if done.returncode != 0:
            return f"offline import {imported:.1f} s; export refused or failed ({exported:.1f} s): {_last_line(done)}"
        files = json.loads(done.stdout)["files"]
        train, validation = (os.path.getsize(files[name]) for name in ("train", "validation"))
        size = source.stat().st_size
        return (
            f"offline: import of {size / 1000:.0f} KB ({IMPORT_RECORDS} records) {imported:.1f} s; prompt-completion "
            f"export {exported:.1f} s: train.jsonl {train / 1e6:,.1f} MB + validation.jsonl {validation / 1e6:,.1f} MB "
            f"(×{(train + validation) / size:,.0f} the import)"
        )
    except subprocess.TimeoutExpired as exc:
        return f"offline import/export: {exc.cmd[2]} still running after {CHILD_TIMEOUT} s, stopped"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _child(command: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1][:160] if lines else f"exit code {done.returncode}"


def attack_5(bench: Bench, attack: Attack, args) -> None:
    tabs = []  # [uuid, version]: one example per tab, so that the tabs' saves do not conflict
    with attack.timed():
        for tab in range(1, args.tabs + 1):
            label = f"write new: a short example (tab {tab})"
            uuid = bench.new_example(attack, "annotator-5", "5", label, "Summarise the text.", benign=True)
            if uuid is None:
                return
            tabs.append([uuid, bench.version_of(attack, "annotator-5", "5", uuid, f"open the editor (tab {tab})")])
    before = table_sizes()
    outcomes: dict[str, list[Answer]] = {}
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + args.loop_seconds

    def loop(tab: list) -> None:
        path = f"/tasks/{SLUG}-5/examples/{tab[0]}/save/"
        for _ in range(LOOP_MAX_REQUESTS):
            if time.monotonic() >= deadline:
                break
            text = base64.urlsafe_b64encode(os.urandom(75_000)).decode()  # 100,000 characters, incompressible
            fields = {"completion": text, "kind": "edge", "version": tab[1], "autosave": "1"}
            answer = bench.send("annotator-5", "POST", path, fields, htmx=True)
            saved = SAVED_VERSION.search(answer.text()) if answer.status == 200 else None
            if saved:
                tab[1], outcome = int(saved.group(1)), "stored"
            elif answer.status == 200:
                outcome = "2xx, not stored"
            else:
                outcome = str(answer.status) if answer.status else "no answer"
            with lock:
                if outcome == "2xx, not stored" and outcome not in outcomes:
                    attack.notes.append(f"first autosave not stored: {_message(answer)}")
                attack.answers.append(answer)
                outcomes.setdefault(outcome, []).append(answer)

    with attack.timed():
        threads = [threading.Thread(target=loop, args=(tab,)) for tab in tabs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.monotonic() - started
    after = table_sizes()
    for outcome, answers in sorted(outcomes.items(), key=lambda item: -len(item[1])):
        seconds = [a.seconds for a in answers]
        attack.rows.append(
            (
                f"autosave 100,000 chars: {outcome} ×{len(answers):,}",
                str(answers[0].status or "—"),
                f"{max(seconds):.2f} max (p50 {percentile(seconds, 50):.2f})",
                f"{sum(a.size for a in answers) // len(answers):,} avg",
                f"{len(answers) / elapsed:.1f}/s",
            )
        )
    total = sum(len(answers) for answers in outcomes.values())
    attack.notes.append(
        f"{total:,} autosaves from {len(tabs)} tabs in {elapsed:.1f} s: "
        + ", ".join(f"{outcome} {len(a) / elapsed:.1f}/s" for outcome, a in outcomes.items())
    )
    growth = {name: (after[name] - before[name]) / 1e6 for name in before}
    growth["in all"] = sum(growth.values())
    attack.notes.append(
        "database growth: "
        + ", ".join(f"{name} +{mb:,.1f} MB ({mb / elapsed:,.2f} MB/s)" for name, mb in growth.items())
    )


def table_sizes() -> dict[str, int]:
    """pg_total_relation_size (heap, TOAST, indexes) of the tables an autosave writes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('annotate_revision'), pg_total_relation_size('annotate_example')")
        revisions, examples = cursor.fetchone()
    return {"annotate_revision": revisions, "annotate_example": examples}


ATTACKS = {
    1: ("every worker stopped by three feedback requests; uniqueItems; '1' × 5,000", attack_1),
    2: ("a 100,000-line resubmission: review page, timeline, next pair", attack_2),
    3: ("a backtracking schema pattern; a schema $ref to a slow URL", attack_3),
    4: ("a template of {input} × 10,000: preview, save, import and export", attack_4),
    5: ("autosaving different 100,000-character texts in a loop", attack_5),
}


# --- preparing, settling, reporting -------------------------------------------------------------------------------


def drop() -> None:
    """Remove the tasks of earlier runs (exports first: they protect their task)."""
    from annotate.models import Task
    from exports.models import Export
    from reviews.models import Verdict

    for task in Task.objects.filter(slug__startswith=f"{SLUG}-"):
        Export.objects.filter(task=task).delete()
        Verdict.objects.filter(example__task=task).delete()  # before the examples: a verdict protects its revision
        task.examples.all().delete()  # before the task: an example protects its template
        task.delete()


def prepare() -> tuple[dict, str]:
    """The users (one annotator per attack, so that a per-user rate limit of one attack spares the next) and one
    task per attack; a short example to warm the workers up with. Returns the users and that example's uuid."""
    from django.contrib.auth import get_user_model

    from annotate import services
    from annotate.models import Role, Task

    drop()
    User = get_user_model()
    users = {name: User.objects.get_or_create(username=f"{SLUG}-{name}")[0] for name in USERS}
    for key, (output_format, preset) in TASKS.items():
        task = services.task_create(
            slug=f"{SLUG}-{key}",
            name=f"Attack replay {key}",
            output_format=output_format,
            preset=preset,
            created_by=users["lead"],
        )
        services.membership_add(task=task, user=users["reviewer"], role=Role.REVIEWER)
        for name in USERS:
            if name.startswith(("annotator", "warm")):
                services.membership_add(task=task, user=users[name], role=Role.ANNOTATOR)
    warm = services.example_write_new(
        task=Task.objects.get(slug=f"{SLUG}-warm"),
        user=users["warm"],
        fields={"instruction": "What is the capital of France?"},
        completion="Paris.",
        kind="happy",
    )
    return users, str(warm.uuid)


def settle(bench: Bench, warm: str) -> None:
    """Wait until /healthz is fast five times in a row (a killed worker has been replaced), then send every worker
    the kinds of requests the attacks make, so that none meets its first request (imports, templates) in an attack."""
    deadline, good = time.monotonic() + SETTLE_LIMIT, 0
    while good < 5 and time.monotonic() < deadline:
        answer = request(bench.port, "GET", "/healthz", timeout=HEALTH_TIMEOUT)
        good = good + 1 if answer.status == 200 and answer.seconds * 1000 < HEALTH_BUDGET_MS else 0
        time.sleep(0.1)
    base = f"/tasks/{SLUG}-warm"
    for _ in range(2):
        for send in (
            ("warm", "GET", f"{base}/examples/{warm}/edit/", None, False),
            ("warm", "POST", f"{base}/examples/{warm}/feedback/", {"completion": "Paris, France."}, True),
            ("reviewer", "GET", f"{base}/examples/{warm}/", None, False),
            ("lead", "GET", f"{base}/template/", None, False),
            ("lead", "GET", f"{base}/settings/", None, False),
            ("reviewer", "GET", f"{base}/review/{warm}/", None, False),
        ):
            bench.at_once([send] * WORKERS)


def report(attacks: list[Attack], health: Health, slow: SlowRef, elapsed: float) -> None:
    print(f"   {'attack':<7}{'request':<52}{'status':>6}{'seconds':>22}{'bytes':>16}  note")
    verdicts = []
    for attack in attacks:
        print(f"   {attack.number} · {attack.title}")
        for label, status, seconds, size, note in attack.rows:
            print(f"   {attack.number:<7}{label[:51]:<52}{status:>6}{seconds:>22}{size:>16}  {note}")
        for note in attack.notes:
            print(f"   {'':<7}{note}")
        word, line = attack.verdict(health)
        print(f"   {attack.number:<7}{line}")
        verdicts.append(f"{attack.number} {word}")
    print(
        f"   acceptance: every answer 2xx/3xx/4xx within {ANSWER_BUDGET:.0f} s, /healthz under "
        f"{HEALTH_BUDGET_MS:.0f} ms with no failure ({len(health.samples):,} polls in {elapsed:.0f} s; slow $ref "
        f"server reached {len(slow.hits)} time(s) in all)"
    )
    print(f"   VERDICT  attack {', '.join(verdicts)}")


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench attacks")
    parser.add_argument("--only", default="", help="attack numbers, e.g. 1,3")
    parser.add_argument("--loop-seconds", type=float, default=10.0)
    parser.add_argument("--tabs", type=int, default=WORKERS, help="attack 5: autosave loops at once, one per tab")
    parser.add_argument("--sample-chars", type=int, default=1_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv or [])
    chosen = [int(n) for n in args.only.split(",") if n.strip()] or list(ATTACKS)
    if unknown := [n for n in chosen if n not in ATTACKS]:
        parser.error(f"--only: no attack {unknown[0]}; choose from {', '.join(map(str, ATTACKS))}")
    setup_django()
    if not require_postgres() or not migrated():
        return
    users, warm = prepare()
    cores = len(os.sched_getaffinity(0))
    print(
        f"   gunicorn {WORKERS} sync workers (timeout 30 s), DEBUG off, {cores} cores; client timeout "
        f"{CLIENT_TIMEOUT:.0f} s; /healthz every {HEALTH_EVERY * 1000:.0f} ms"
    )
    attacks: list[Attack] = []
    started = time.monotonic()
    with SlowRef() as slow, gunicorn(workers=WORKERS) as (url, secret):
        port = int(url.rsplit(":", 1)[1])
        bench = Bench(port, {name: session_cookie_for(user, secret) for name, user in users.items()}, slow)
        health = Health(port)
        health.start()
        settle(bench, warm)
        for number in chosen:
            title, attack_run = ATTACKS[number]
            print(f"   attack {number}: {title} …", flush=True)
            attack = Attack(number, title)
            attack_run(bench, attack, args)
            attacks.append(attack)
            settle(bench, warm)
        health.stopping.set()
        health.join()
    report(attacks, health, slow, time.monotonic() - started)
    if not args.keep:
        drop()
