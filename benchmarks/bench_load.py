"""Concurrency under load: 32 clients claiming, saving and reviewing at once, as fast as they go, then invariants.

Against a production-like gunicorn (DEBUG off, 4 workers x 8 threads, more threads past 32 clients), over HTTP
with http.client, after one warm-up request per client:

- annotators take the next example, open it, autosave, sometimes save again with a stale version on purpose (a
  second tab), sometimes race two tabs (save against save, or save against submit, both sent before either is read),
  sometimes submit with a stale version, then submit; now and then they skip instead;
- reviewers take the next pair, sometimes decide with a stale version on purpose, sometimes race two tabs (approve
  against flag on the same version, or approve against "next pair"), then approve, flag, reject or edit-and-approve;
- racing clients: annotators posting saves and submits to examples other annotators were just handed (their edit
  URL), and reviewers opening pairs other reviewers were just handed, or the head of the queue page, by their address
  (which takes no lease), and deciding.

Taking work is a POST, as in the browser: a claim, a submit or a skip answers with the editor of the example it handed
out; "next pair" and a verdict answer with the review page of the pair they leased, which the client then opens.

Every response is recorded (kind, status, latency, stored / refused with its message). Afterwards, from the records
and the database:

(a) no example held by two people at once: no two clients' certain holds of one example overlap (a hold is certain
    from the response that handed it out to the request that gave it back), no save, submit or verdict lands while
    another client holds the example, stolen edit URLs never store anything, at most one verdict per version, every
    example's annotator revisions have one author (one who was handed it) and its transitions form one chain;
(b) no lost revision: every save, submit and reviewer edit answered as stored has its Revision (same example,
    version, reason and text), there are no others, a stale save never stores, and each example's text is that of
    its latest revision;
(c) no verdict on a stale revision: every verdict is on the latest revision of the version it judged, no newer
    revision existed when it was recorded, its version is the one the reviewer posted, and stale posts are refused;
(d) every request answered: no 5xx, no connection error, every save stored or refused with a readable message.

Needs PostgreSQL (DATABASE_URL). Options: --n EXAMPLES (default 100,000: four fifths `new` for the annotators, one
fifth submitted for the reviewers, stamped a day ahead so that the oldest-first queue hands out the annotators'
fresh submissions first and the loaded ones when reviewers catch up), --seconds (default 60), --clients (default 32).
The examples are kept between runs (task `bench-load`) and reset at the start; --fresh reloads them.
Exits non-zero when an invariant fails.
"""

import argparse
import hashlib
import html
import http.client
import math
import random
import re
import threading
import time
from collections import Counter, defaultdict, deque
from urllib.parse import urlencode

from .common import bulk_load_examples, filler, gunicorn, percentile, require_postgres, session_cookie_for, setup_django

SLUG = "bench-load"
IMPORTER = "bench-load-importer"
SEED_SHARE = 5  # one example in five is loaded as submitted, for the reviewers
SEED_CHARS = 400
MAX_ITERATIONS = 1_000_000  # per client: the loops end at the deadline long before
IDLE_RECONNECT = 1.0  # seconds: gunicorn closes idle keep-alive connections after 2 s

EDIT_URL = re.compile(r"/tasks/[^/]+/examples/([0-9a-f-]{36})/edit/")
VERSION_INPUT = re.compile(r'name="version" value="(\d+)"')
SAVED_VERSION = re.compile(r'data-saved-version="(\d+)"')
# Refused saves keep their text as revisions that are not current (annotate.revisions): the invariants below are about
# the line of current texts.
CURRENT_LINE = "reason NOT IN ('conflict', 'late')"
REVIEW_URL = re.compile(r"/tasks/[^/]+/review/([0-9a-f-]{36})/")
REVIEW_PAGE = 'data-testid="status"'  # on every review screen, whether the pair can be judged or not
PAGE_VERSION = re.compile(r"· version (\d+) ·")
QUEUE_ROW = re.compile(r'<tr data-example="([0-9a-f-]{36})">(.*?)</tr>', re.S)
TAG = re.compile(r"<[^>]+>")
WORD = re.compile(r"[A-Za-z]{2,}")
REFUSAL_MARKERS = (
    "data-conflict",
    'data-testid="decide-error"',
    'role="alert"',
    'data-testid="blocked"',
    'class="readonly"',
    'id="save-status"',
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (a fingerprint, compared with PostgreSQL's md5())


def _text(fragment: str) -> str:
    return " ".join(html.unescape(TAG.sub(" ", fragment)).split())


def refusal_message(body: str) -> str:
    """The readable message of a refusal ("" when there is none): the alert, conflict, error or notice shown."""
    for marker in REFUSAL_MARKERS:
        at = body.find(marker)
        if at < 0:
            continue
        start = body.find(">", at) + 1
        chunk = body[start : start + 1200]
        end = chunk.find("</div>")
        text = _text(chunk[: end if end >= 0 else None])
        if len(WORD.findall(text)) >= 3:
            return text[:200]
    return ""


def page_message(body: str) -> str:
    """The text of an error page (4xx): its title and heading, or its first words."""
    title = re.search(r"<title>(.*?)</title>", body, re.S)
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", body, re.S)
    text = " ".join(_text(m.group(1)) for m in (title, heading) if m) or _text(body)[:200]
    return text[:200] if len(WORD.findall(text)) >= 1 else ""


def category(message: str) -> str:
    lowered = message.lower()
    if "since you opened it" in lowered:
        return "stale version"
    if any(
        phrase in lowered
        for phrase in (
            "another annotator", "hold on this example expired", "not yours", "another reviewer",
            "reviewing this example right now", "you wrote this example",
        )
    ):  # fmt: skip
        return "held by another"
    if any(
        phrase in lowered
        for phrase in (
            "cannot be edited", "only a submitted", "nothing to decide", "waiting for review", "already judged",
            "decided in triage", "is approved", "is flagged", "is rejected", "rejected by review",
        )
    ):  # fmt: skip
        return "state changed"
    return "other"


class Response:
    __slots__ = ("status", "location", "hx_redirect", "body", "t0", "t1")

    def __init__(self, status, location, hx_redirect, body, t0, t1):
        self.status, self.location, self.hx_redirect, self.body, self.t0, self.t1 = (
            status, location, hx_redirect, body, t0, t1,
        )  # fmt: skip


class Shared:
    """What clients tell each other: the examples recently handed out, so racing clients can go after them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.annotated: deque = deque(maxlen=64)  # (uuid, owner index)
        self.reviewed: deque = deque(maxlen=64)
        self.versions: dict[str, int] = {}  # uuid -> latest version its holder knows

    def tell(self, board: str, uuid: str, owner: int, version: int) -> None:
        with self.lock:
            getattr(self, board).append((uuid, owner))
            self.versions[uuid] = version

    def version(self, uuid: str, version: int) -> None:
        with self.lock:
            self.versions[uuid] = version

    def pick(self, board: str, me: int, rng: random.Random) -> tuple[str, int] | None:
        with self.lock:
            others = [uuid for uuid, owner in getattr(self, board) if owner != me]
            if not others:
                return None
            uuid = rng.choice(others[-8:])  # among the latest: the ones most likely still being worked on
            return uuid, self.versions.get(uuid, 1)


class Client:
    """One logged-in user with two tabs (two keep-alive connections), recording everything it sees."""

    def __init__(self, *, url: str, cookie: dict, index: int, user, role: str, shared: Shared, deadline: float):
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.index, self.user_id, self.role = index, user.pk, role
        self.shared, self.deadline = shared, deadline
        self.rng = random.Random(index)
        self.headers = {"Cookie": cookie["cookie"], "X-CSRFToken": cookie["csrf"], "Host": "127.0.0.1"}
        self.conns: list = [None, None]
        self.last_used = [0.0, 0.0]
        self.base = filler(7919 * (index + 1), 300)
        self.seq = 0
        # The records.
        self.responses: list[tuple] = []  # (kind, status, seconds, outcome, message)
        self.held: dict[str, float] = {}  # uuid -> when the hold became certain
        self.intervals: list[tuple] = []  # (uuid, user id, start, end)
        self.acts: list[tuple] = []  # (uuid, user id, t0, t1, what): a save, submit or verdict that was stored
        self.revisions: list[tuple] = []  # (uuid, example_version, reason, md5 of the text)
        self.verdicts: list[tuple] = []  # (uuid, posted version, edited)
        self.handed: list[str] = []  # uuids handed to this annotator
        self.expectations: Counter = Counter()  # deliberate stale / stolen posts: how they were answered
        self.races: Counter = Counter()  # two-tab races: how many of the pair were stored
        self.notes: list[str] = []  # surprises worth a line in the report
        self.next_example: str | None = None  # the example a submit or a skip handed out, to open next
        self.next_pairs: list[tuple[str, float]] = []  # pairs a verdict or a race handed out: (uuid, when), to open
        self.stray: list[str] = []  # pairs "next" handed back after this reviewer had decided them

    # --- HTTP ---------------------------------------------------------------------------------------------------

    def _conn(self, tab: int) -> http.client.HTTPConnection:
        conn = self.conns[tab]
        if conn is None or time.monotonic() - self.last_used[tab] > IDLE_RECONNECT:
            if conn is not None:
                conn.close()
            conn = self.conns[tab] = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return conn

    def _send(self, tab: int, method: str, path: str, fields: dict | None, htmx: bool) -> float:
        headers = dict(self.headers)
        body = None
        if fields is not None:
            body = urlencode(fields, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if htmx:
            headers["HX-Request"] = "true"
        t0 = time.monotonic()
        self._conn(tab).request(method, path, body=body, headers=headers)
        return t0

    def _receive(self, tab: int, t0: float) -> Response:
        raw = self.conns[tab].getresponse()
        body = raw.read().decode("utf-8", "replace")
        t1 = time.monotonic()
        self.last_used[tab] = t1
        return Response(raw.status, raw.getheader("Location") or "", raw.getheader("HX-Redirect") or "", body, t0, t1)

    def _failed(self, kind: str, tab: int, t0: float, exc: Exception) -> None:
        if self.conns[tab] is not None:
            self.conns[tab].close()
        self.conns[tab] = None
        self.responses.append((kind, 0, time.monotonic() - t0, "connection error", f"{type(exc).__name__}: {exc}"))

    def call(self, kind: str, method: str, path: str, fields: dict | None = None, htmx: bool = False):
        t0 = time.monotonic()
        try:
            t0 = self._send(0, method, path, fields, htmx)
            return self._receive(0, t0)
        except (OSError, http.client.HTTPException) as exc:
            self._failed(kind, 0, t0, exc)
            return None

    def pair(self, kind: str, first: tuple, second: tuple) -> tuple:
        """Two requests from two tabs, both sent before either answer is read: they race in the server."""
        results, sent = [None, None], [None, None]
        for tab, (method, path, fields, htmx) in enumerate((first, second)):
            t0 = time.monotonic()
            try:
                sent[tab] = self._send(tab, method, path, fields, htmx)
            except (OSError, http.client.HTTPException) as exc:
                self._failed(kind, tab, t0, exc)
        for tab in (0, 1):
            if sent[tab] is None:
                continue
            try:
                results[tab] = self._receive(tab, sent[tab])
            except (OSError, http.client.HTTPException) as exc:
                self._failed(kind, tab, sent[tab], exc)
        return tuple(results)

    def record(self, kind: str, response: Response, outcome: str, message: str = "") -> None:
        self.responses.append((kind, response.status, response.t1 - response.t0, outcome, message))

    def unexpected(self, kind: str, response: Response) -> str:
        """Record a response that is neither a success nor a refusal of this kind; return its outcome."""
        if response.status >= 500:
            outcome, message = "5xx", _text(response.body)[:200]
        elif 400 <= response.status < 500:
            message = page_message(response.body)
            outcome = "refused" if message else "refused without message"
        else:
            outcome, message = "unclassified", f"{response.status} {response.location} {_text(response.body)[:150]}"
        self.record(kind, response, outcome, message)
        return outcome

    def refused_or_unexpected(self, kind: str, response: Response) -> str:
        if response.status == 200:
            message = refusal_message(response.body)
            outcome = "refused" if message else "refused without message"
            self.record(kind, response, outcome, message)
            return outcome
        return self.unexpected(kind, response)

    def text(self, tag: str) -> str:
        self.seq += 1
        return f"{self.base} [{tag} c{self.index} n{self.seq}]"

    # --- holds ----------------------------------------------------------------------------------------------------

    def hold(self, uuid: str, since: float) -> None:
        self.held.setdefault(uuid, since)

    def release(self, uuid: str, at: float) -> None:
        start = self.held.pop(uuid, None)
        if start is not None:
            self.intervals.append((uuid, self.user_id, start, at))

    def close(self) -> None:
        for uuid, start in list(self.held.items()):
            self.intervals.append((uuid, self.user_id, start, math.inf))
        self.held.clear()
        for conn in self.conns:
            if conn is not None:
                conn.close()

    # --- annotators -----------------------------------------------------------------------------------------------

    def _save_outcome(self, kind: str, uuid: str, response: Response | None, text: str, reason: str) -> int | None:
        """Classify a save; on "stored", record its revision and return the new version."""
        if response is None:
            return None
        if response.status == 200 and (match := SAVED_VERSION.search(response.body)):
            version = int(match.group(1))
            self.record(kind, response, "stored")
            self.revisions.append((uuid, version, reason, md5(text)))
            self.acts.append((uuid, self.user_id, response.t0, response.t1, kind))
            self.shared.version(uuid, version)
            return version
        self.refused_or_unexpected(kind, response)
        return None

    def _handed_example(self, response: Response) -> str | None:
        """The example a claim, a submit or a skip handed out (its editor is where the answer redirects), now held."""
        match = EDIT_URL.search(response.location) if response.status == 302 else None
        if match is None:
            return None
        uuid = match.group(1)
        self.hold(uuid, response.t1)
        self.handed.append(uuid)
        self.shared.tell("annotated", uuid, self.index, 1)
        return uuid

    def _submit_outcome(
        self, kind: str, uuid: str, response: Response | None, text: str, version: int, takes_next: bool = False
    ) -> bool:
        """Classify a submit; a stored one redirects to the next example it handed out (or to the empty state)."""
        if response is None:
            return False
        location = response.location
        if response.status == 302 and (location.endswith(f"/tasks/{SLUG}/annotate/") or EDIT_URL.search(location)):
            if takes_next:
                self.next_example = self._handed_example(response)
            self.record(kind, response, "stored")
            self.revisions.append((uuid, version + 1, "submit", md5(text)))
            self.acts.append((uuid, self.user_id, response.t0, response.t1, kind))
            self.shared.version(uuid, version + 2)
            return True
        self.refused_or_unexpected(kind, response)
        return False

    def _expect_refusal(self, what: str, stored: bool) -> None:
        self.expectations[f"{what}: {'STORED' if stored else 'refused'}"] += 1

    def annotator_iteration(self) -> None:
        base = f"/tasks/{SLUG}/examples"
        if self.next_example is not None:  # handed out by the last submit or skip, which redirected to its editor
            uuid, self.next_example = self.next_example, None
        else:
            response = self.call("claim", "POST", f"/tasks/{SLUG}/annotate/", {})
            if response is None:
                return
            uuid = self._handed_example(response)
            if uuid is None:
                if response.status == 302 and response.location.endswith(f"/tasks/{SLUG}/annotate/"):
                    self.record("claim", response, "empty")  # nothing left in the pool for this annotator
                    time.sleep(0.1)
                else:
                    self.unexpected("claim", response)
                return
            self.record("claim", response, "handed")

        page = self.call("edit", "GET", f"{base}/{uuid}/edit/")
        if page is None:
            return
        found = VERSION_INPUT.search(page.body) if page.status == 200 else None
        if not found:
            if page.status == 200:
                self.record("edit", page, "unclassified", "the holder was not offered the editor")
            else:
                self.unexpected("edit", page)
            return
        self.record("edit", page, "ok")
        version = int(found.group(1))
        roll = self.rng.random()
        if roll < 0.04:  # skip it: back to the pool, for somebody else
            response = self.call("skip", "POST", f"{base}/{uuid}/skip/", {"reason": "unclear"})
            location = response.location if response is not None else ""
            if location.endswith("/annotate/") or EDIT_URL.search(location):  # the next example, or none left
                self.record("skip", response, "stored")
                self.release(uuid, response.t0)
                self.next_example = self._handed_example(response)
            elif response is not None:
                self.unexpected("skip", response)
            return

        def save(kind, version, reason="autosave", tag="a"):
            text = self.text(tag)
            fields = {"completion": text, "kind": "happy", "version": version}
            if reason == "autosave":
                fields["autosave"] = "1"
            return self._save_outcome(
                kind, uuid, self.call(kind, "POST", f"{base}/{uuid}/save/", fields, True), text, reason
            )

        saved = save("save", version)
        if saved is None:
            self.notes.append(f"first save of {uuid} not stored")
            return
        if self.rng.random() < 0.3:  # a second tab still on the version it loaded
            stale = save("save stale", version, tag="stale")
            self._expect_refusal("stale save", stale is not None)
        version = saved
        roll = self.rng.random()
        if roll < 0.1:  # two tabs save at once on the same version: one is stored, the other told
            texts = (self.text("tab-a"), self.text("tab-b"))
            first = (
                "POST",
                f"{base}/{uuid}/save/",
                {"completion": texts[0], "kind": "happy", "version": version, "autosave": "1"},
                True,
            )
            second = (
                "POST",
                f"{base}/{uuid}/save/",
                {"completion": texts[1], "kind": "happy", "version": version},
                True,
            )
            a, b = self.pair("save race", first, second)
            stored = [self._save_outcome("save race", uuid, a, texts[0], "autosave"),
                      self._save_outcome("save race", uuid, b, texts[1], "save")]  # fmt: skip
            wins = [v for v in stored if v is not None]
            self.races[f"save+save: {len(wins)} stored"] += 1
            if not wins:
                return
            version = max(wins)
        elif roll < 0.2:  # a save in one tab and the submit in the other, at once
            texts = (self.text("tab-a"), self.text("tab-submit"))
            first = (
                "POST",
                f"{base}/{uuid}/save/",
                {"completion": texts[0], "kind": "happy", "version": version, "autosave": "1"},
                True,
            )
            second = (
                "POST",
                f"{base}/{uuid}/submit/",
                {"completion": texts[1], "kind": "happy", "version": version},
                False,
            )
            a, b = self.pair("save+submit race", first, second)
            saved = self._save_outcome("save+submit race", uuid, a, texts[0], "autosave")
            submitted = self._submit_outcome("save+submit race", uuid, b, texts[1], version, takes_next=True)
            self.races[f"save+submit: {int(saved is not None) + int(submitted)} stored"] += 1
            if submitted:
                self.release(uuid, min(r.t0 for r in (a, b) if r is not None))
                return
            if saved is None:
                return
            version = saved
        elif roll < 0.5:
            saved = save("save", version, reason="save", tag="s")
            if saved is None:
                return
            version = saved
        if self.rng.random() < 0.15:  # submit from a tab that missed the last save
            text = self.text("stale-submit")
            response = self.call(
                "submit stale",
                "POST",
                f"{base}/{uuid}/submit/",
                {"completion": text, "kind": "happy", "version": version - 1},
            )
            self._expect_refusal(
                "stale submit", self._submit_outcome("submit stale", uuid, response, text, version - 1)
            )
        text = self.text("final")
        response = self.call(
            "submit", "POST", f"{base}/{uuid}/submit/", {"completion": text, "kind": "happy", "version": version}
        )
        if self._submit_outcome("submit", uuid, response, text, version, takes_next=True):
            self.release(uuid, response.t0)

    def annotator_racer_iteration(self) -> None:
        """Post to an example another annotator was just handed, through its edit URL: never stored."""
        picked = self.shared.pick("annotated", self.index, self.rng)
        if picked is None:
            time.sleep(0.05)
            return
        uuid, version = picked
        base = f"/tasks/{SLUG}/examples/{uuid}"
        page = self.call("open other's", "GET", f"{base}/edit/")
        if page is None:
            return
        if page.status == 200 and VERSION_INPUT.search(page.body):
            self.record("open other's", page, "unclassified", "the editor was offered to a non-holder")
        elif page.status == 200:
            self.record("open other's", page, "ok")
        else:
            self.unexpected("open other's", page)
        text = self.text("steal")
        fields = {"completion": text, "kind": "edge", "version": version, "autosave": "1"}
        response = self.call("save other's", "POST", f"{base}/save/", fields, True)
        self._expect_refusal(
            "save to another's example",
            self._save_outcome("save other's", uuid, response, text, "autosave") is not None,
        )
        if self.rng.random() < 0.3:
            text = self.text("steal-submit")
            fields = {"completion": text, "kind": "edge", "version": version}
            response = self.call("submit other's", "POST", f"{base}/submit/", fields)
            self._expect_refusal(
                "submit of another's example", self._submit_outcome("submit other's", uuid, response, text, version)
            )

    # --- reviewers ------------------------------------------------------------------------------------------------

    def _decide_fields(self, version: int, decision: str) -> tuple[dict, str | None]:
        fields = {"version": version, "decision": decision, "queue": ""}
        text = None
        if decision in ("flag", "reject"):
            fields.update(
                reasons=self.rng.choice(["inaccurate", "unclear", "format"]), comment="Check it against the manual."
            )
        elif decision == "edit":
            text = self.text("review-edit")
            fields.update(completion=text, kind="")
        return fields, text

    def _decide_outcome(self, kind: str, uuid: str, response: Response | None, version: int, text: str | None) -> bool:
        """Classify a verdict. A stored one (htmx) answers with the address of the next pair it leased to this
        reviewer, or of the queue: a reviewer opens that pair next (a racer walks away, leaving the lease to expire)."""
        if response is None:
            return False
        if response.status == 200 and response.hx_redirect:
            self.record(kind, response, "stored")
            self.verdicts.append((uuid, version, text is not None))
            self.acts.append((uuid, self.user_id, response.t0, response.t1, kind))
            if text is not None:
                self.revisions.append((uuid, version + 1, "reviewer_edit", md5(text)))
            handed = REVIEW_URL.search(response.hx_redirect)
            if handed and self.role == "reviewer":
                self.next_pairs.append((handed.group(1), response.t1))
            return True
        self.refused_or_unexpected(kind, response)
        return False

    def _decide(self, kind: str, uuid: str, version: int, decision: str) -> bool:
        fields, text = self._decide_fields(version, decision)
        response = self.call(kind, "POST", f"/tasks/{SLUG}/review/{uuid}/decide/", fields, True)
        return self._decide_outcome(kind, uuid, response, version, text)

    def _next_outcome(self, kind: str, response: Response | None) -> str | None:
        """Classify a "next pair" POST: the uuid of the pair it leased (the address it redirects to), or None."""
        if response is None:
            return None
        handed = REVIEW_URL.search(response.location) if response.status == 302 else None
        if handed:
            self.record(kind, response, "handed")
            return handed.group(1)
        if response.status == 302 and response.location.split("?")[0].endswith(f"/tasks/{SLUG}/review/"):
            self.record(kind, response, "empty")  # the queue: nothing left for this reviewer
            time.sleep(0.1)
        else:
            self.unexpected(kind, response)
        return None

    def _open_pair(self, kind: str, uuid: str) -> tuple[Response, int | None] | None:
        """GET the review page of a pair (what the browser does after the redirect): the version on its decision form,
        None when the page shows why this reviewer cannot judge it. Takes no lease."""
        page = self.call(kind, "GET", f"/tasks/{SLUG}/review/{uuid}/")
        if page is None:
            return None
        if page.status != 200 or REVIEW_PAGE not in page.body:
            self.unexpected(kind, page)
            return None
        found = VERSION_INPUT.search(page.body)
        if not found:
            self.record(kind, page, "blocked", refusal_message(page.body))
            return page, None
        self.record(kind, page, "ok")
        return page, int(found.group(1))

    def reviewer_iteration(self, stuck: dict) -> None:
        if self.next_pairs:  # leased by the last verdict, or by the "next" of a race
            uuid, since = self.next_pairs.pop(0)
        else:
            skip = next(iter(stuck), None)
            t_skip = time.monotonic()
            response = self.call("next", "POST", f"/tasks/{SLUG}/review/next/", {"skip": skip} if skip else {})
            if skip:
                stuck.pop(skip)
                self.release(skip, t_skip)
            uuid = self._next_outcome("next", response)
            if uuid is None:
                return
            since = response.t1
        opened = self._open_pair("review page", uuid)
        if opened is None:
            return
        page, version = opened
        if version is None:  # handed out but not decidable: say so, and pass it on next time
            self.notes.append(f"next pair handed {uuid} but blocked it: {refusal_message(page.body)}")
            stuck[uuid] = 1
            return
        self.hold(uuid, since)  # certain since the answer that leased it
        self.shared.tell("reviewed", uuid, self.index, version)
        if self.rng.random() < 0.2:  # a tab opened before the annotator's last save
            stale = version - 1 if version > 1 else version + 1
            self._expect_refusal("stale verdict", self._decide("decide stale", uuid, stale, "approve"))
        decide = f"/tasks/{SLUG}/review/{uuid}/decide/"
        roll = self.rng.random()
        if roll < 0.1:  # approve in one tab and flag in another, at once: one verdict, the other told
            a, b = self.pair(
                "decide race",
                ("POST", decide, self._decide_fields(version, "approve")[0], True),
                ("POST", decide, self._decide_fields(version, "flag")[0], True),
            )
            won = [self._decide_outcome("decide race", uuid, r, version, None) for r in (a, b)]
            self.races[f"approve+flag: {sum(won)} stored"] += 1
            if any(won):
                self.release(uuid, min(r.t0 for r in (a, b) if r is not None))
            else:
                stuck[uuid] = 1
            return
        if roll < 0.15:  # approve, and "next pair" in another tab at the same moment
            a, b = self.pair(
                "decide+next race",
                ("POST", decide, self._decide_fields(version, "approve")[0], True),
                ("POST", f"/tasks/{SLUG}/review/next/", {}, False),
            )
            decided = self._decide_outcome("decide+next race", uuid, a, version, None)
            if decided:
                self.release(uuid, min(r.t0 for r in (a, b) if r is not None))
            else:
                stuck[uuid] = 1
            handed = self._next_outcome("decide+next race", b)
            if handed is None:
                return
            if handed == uuid:  # "next" ran first: it renewed the lease on the pair the verdict then decided
                self.races["approve+next: next showed the pair being decided"] += 1
                if decided:
                    self.stray.append(uuid)
                return
            self.races["approve+next: next handed another pair"] += 1
            if handed not in {pair for pair, _ in self.next_pairs}:  # the verdict may have leased the same one
                self.next_pairs.append((handed, b.t1))
            return
        decision = "approve" if roll < 0.6 else "flag" if roll < 0.8 else "reject" if roll < 0.9 else "edit"
        t0 = time.monotonic()
        if self._decide("decide", uuid, version, decision):
            self.release(uuid, t0)
        else:
            stuck[uuid] = 1

    def reviewer_racer_iteration(self) -> None:
        """Open a pair another reviewer was just handed, or the head of the queue page, by its address (no lease),
        and decide at once: refused while another reviewer holds the lease, stored when nobody does."""
        picked = self.shared.pick("reviewed", self.index, self.rng) if self.rng.random() < 0.5 else None
        if picked is None:
            queue = self.call("queue", "GET", f"/tasks/{SLUG}/review/", htmx=True)
            if queue is None:
                return
            if queue.status != 200:
                self.unexpected("queue", queue)
                return
            self.record("queue", queue, "ok")
            free = [uuid for uuid, row in QUEUE_ROW.findall(queue.body) if "is on it" not in row]
            if not free:
                time.sleep(0.05)
                return
            uuid, version = self.rng.choice(free[:3]), None
        else:
            uuid, version = picked
        opened = self._open_pair("open pair", uuid)
        if opened is None:
            return
        page, found = opened
        if found is not None:  # nobody held it when the page was made
            if not self._decide("decide opened", uuid, found, "approve"):
                self.notes.append(f"{uuid}: opened free, verdict refused")
            return
        shown = PAGE_VERSION.search(page.body)
        version = version or (int(shown.group(1)) if shown else 1)
        self._expect_refusal("verdict on a pair another holds", self._decide("decide held", uuid, version, "approve"))

    # --- the loop -------------------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """One request before the clock starts (not recorded): every server thread imports and connects."""
        path = f"/tasks/{SLUG}/mine/" if self.role.startswith("annotator") else f"/tasks/{SLUG}/review/previous/"
        try:
            self._receive(0, self._send(0, "GET", path, None, False))
        except (OSError, http.client.HTTPException):
            self.conns[0] = None

    def run(self) -> None:
        stuck: dict[str, int] = {}
        step = {
            "annotator": self.annotator_iteration,
            "annotator racer": self.annotator_racer_iteration,
            "reviewer": lambda: self.reviewer_iteration(stuck),
            "reviewer racer": self.reviewer_racer_iteration,
        }[self.role]
        try:
            for _ in range(MAX_ITERATIONS):
                if time.monotonic() >= self.deadline:
                    break
                step()
        except Exception as exc:  # noqa: BLE001 (a bug of the benchmark must not pass as a quiet client)
            self.notes.append(f"client {self.index} ({self.role}) stopped: {type(exc).__name__}: {exc}")
            self.responses.append(("client", 0, 0.0, "client error", f"{type(exc).__name__}: {exc}"))
        finally:
            self.close()


# --- preparing the data ------------------------------------------------------------------------------------------


def _sql(statement: str, params: list | dict = ()) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _rows(statement: str, params: list | dict = ()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


IN_TASK = "example_id IN (SELECT id FROM annotate_example WHERE task_id = %(task)s)"


def _drop(task) -> None:
    for table in ("reviews_verdict", "annotate_revision", "annotate_transition", "annotate_skip"):
        _sql(f"DELETE FROM {table} WHERE {IN_TASK}", {"task": task.pk})  # noqa: S608 (fixed table names)
    _sql("DELETE FROM annotate_example WHERE task_id = %s", [task.pk])
    task.memberships.all().delete()
    task.templates.all().delete()
    task.delete()


def _reset(task, importer) -> None:
    """Every run starts alike: the pool `new` and free, the seeded pairs submitted with their text, no history."""
    p = {"task": task.pk, "importer": importer.pk}
    _sql(f"DELETE FROM reviews_verdict WHERE {IN_TASK}", p)  # noqa: S608
    _sql(f"DELETE FROM annotate_transition WHERE {IN_TASK}", p)  # noqa: S608
    _sql(f"DELETE FROM annotate_skip WHERE {IN_TASK}", p)  # noqa: S608
    from django.db import connection

    if "annotate_auditevent" in connection.introspection.table_names():  # the previous runs' verdict events
        _sql("DELETE FROM annotate_auditevent WHERE task_id = %(task)s AND action = 'verdict'", p)
    _sql(
        f"DELETE FROM annotate_revision WHERE {IN_TASK} "  # noqa: S608
        "AND NOT (reason = 'submit' AND author_id = %(importer)s)",
        p,
    )
    _sql(
        "UPDATE annotate_example SET status = 'new', claimed_by_id = NULL, claim_expires_at = NULL, author_id = NULL, "
        "completion = '', version = 1, submitted_at = NULL, triage = false, warnings = '[]', warning_codes = '', "
        "risk = 0 WHERE task_id = %(task)s AND author_id IS DISTINCT FROM %(importer)s "
        "AND (status <> 'new' OR claimed_by_id IS NOT NULL OR version <> 1 OR author_id IS NOT NULL)",
        p,
    )
    _sql(
        "UPDATE annotate_example e SET status = 'submitted', claimed_by_id = NULL, claim_expires_at = NULL, "
        "version = 1, triage = false, completion = r.text, kind = r.kind FROM annotate_revision r "
        "WHERE r.example_id = e.id AND r.reason = 'submit' AND r.author_id = %(importer)s AND e.task_id = %(task)s "
        "AND (e.status <> 'submitted' OR e.version <> 1 OR e.claimed_by_id IS NOT NULL OR e.triage)",
        p,
    )
    # Stamp the loaded submissions a day ahead: the oldest-first queue then hands out the annotators' fresh
    # submissions first (the hand-over from annotator to reviewer is what races), and the loaded ones whenever the
    # reviewers have caught up with the annotators.
    _sql(
        "UPDATE annotate_example SET submitted_at = now() + interval '1 day' WHERE task_id = %(task)s "
        "AND author_id = %(importer)s",
        p,
    )
    _sql("ANALYZE annotate_example", [])


def prepare(n: int, roles: list[str], fresh: bool):
    from django.contrib.auth import get_user_model

    from annotate import services
    from annotate.models import Example, Role, Task

    User = get_user_model()
    importer, _ = User.objects.get_or_create(username=IMPORTER)
    seeded, pool = n // SEED_SHARE, n - n // SEED_SHARE
    task = Task.objects.filter(slug=SLUG).first()
    if task is not None:
        in_task = Example.objects.filter(task=task)
        have_seeded = in_task.filter(author=importer).count()
        if fresh or have_seeded != seeded or in_task.count() != n:
            print("   removing the previous benchmark task …")
            _drop(task)
            task = None
    if task is None:
        task = services.task_create(slug=SLUG, name="Benchmark: concurrency under load", preset="qa-context")
        bulk_load_examples(task=task, n=pool)
        bulk_load_examples(
            task=task, n=seeded, status="submitted", completion_chars=SEED_CHARS, author_id=importer.pk, start=pool
        )
        print("   recording the submitted revisions …")
        _sql(
            "INSERT INTO annotate_revision (example_id, text, kind, author_id, reason, example_version, created_at) "
            "SELECT id, completion, kind, author_id, 'submit', version, now() FROM annotate_example "
            "WHERE task_id = %s AND author_id = %s",
            [task.pk, importer.pk],
        )
        _sql("ANALYZE annotate_revision", [])
    _reset(task, importer)
    users = []
    for i, role in enumerate(roles):
        name = f"bench-load-{role.replace(' ', '-')}-{i}"
        user, _ = User.objects.get_or_create(username=name)
        member_role = Role.ANNOTATOR if role.startswith("annotator") else Role.REVIEWER
        services.membership_add(task=task, user=user, role=member_role)
        users.append(user)
    return task, importer, users


def roles_for(clients: int) -> list[str]:
    """Racers: one annotator and one reviewer per 16 clients; of the rest, four in seven annotate, three review."""
    racers = max(1, clients // 16)
    rest = clients - 2 * racers
    annotators = (rest + 1) * 4 // 7
    return (
        ["annotator"] * annotators
        + ["reviewer"] * (rest - annotators)
        + ["annotator racer"] * racers
        + ["reviewer racer"] * racers
    )


# --- checking ----------------------------------------------------------------------------------------------------


class Verdicts:
    """PASS/FAIL lines, with numbers."""

    def __init__(self) -> None:
        self.failed = False

    def check(self, label: str, ok: bool, detail: str, examples: list | None = None) -> None:
        self.failed |= not ok
        print(f"   {'PASS' if ok else 'FAIL'}  {label}: {detail}")
        if not ok:
            for line in (examples or [])[:5]:
                print(f"           e.g. {line}")


def check_holds(clients: list[Client], out: Verdicts) -> None:
    intervals = defaultdict(list)
    for client in clients:
        for uuid, user, start, end in client.intervals:
            intervals[uuid].append((start, end, user))
    overlaps = []
    for uuid, spans in intervals.items():
        spans.sort()
        for i, (start, end, user) in enumerate(spans):
            for other_start, _, other in spans[i + 1 :]:
                if other_start >= end:
                    break
                if other != user:
                    overlaps.append(
                        f"{uuid}: user {user} [{start:.3f}, {end:.3f}] and user {other} from {other_start:.3f}"
                    )
    intruding = []
    for client in clients:
        for uuid, user, t0, t1, what in client.acts:
            for start, end, holder in intervals.get(uuid, ()):
                if holder != user and start <= t0 and t1 <= end:
                    intruding.append(f"{what} by user {user} on {uuid} while user {holder} held it")
    holds = sum(len(spans) for spans in intervals.values())
    out.check(
        "(a) one holder at a time",
        not overlaps and not intruding,
        f"{holds:,} holds of {len(intervals):,} examples; {len(overlaps)} overlapping holds, "
        f"{len(intruding)} saves/verdicts landing in another's hold",
        overlaps + intruding,
    )


def check_database(task, importer, clients: list[Client], out: Verdicts, revision_floor: int) -> None:
    p = {"task": task.pk, "floor": revision_floor, "importer": importer.pk}
    # (a) stolen posts, one verdict per version, one author per example, one chain of transitions.
    expectations = Counter()
    for client in clients:
        expectations.update(client.expectations)
    stolen = sum(n for key, n in expectations.items() if "another" in key and key.endswith("STORED"))
    tried = sum(n for key, n in expectations.items() if "another" in key)
    out.check(
        "(a) posts to another's example refused",
        stolen == 0,
        f"{tried:,} tried (stolen edit URLs, verdicts on pairs another reviewer held), {stolen} stored",
    )
    doubles = _rows(
        "SELECT e.uuid, v.example_version, count(*) FROM reviews_verdict v "
        f"JOIN annotate_example e ON e.id = v.example_id "  # noqa: S608
        f"WHERE v.{IN_TASK} GROUP BY 1, 2 HAVING count(*) > 1",
        p,
    )
    verdict_total = _rows(f"SELECT count(*) FROM reviews_verdict WHERE {IN_TASK}", p)[0][0]  # noqa: S608
    out.check(
        "(a) one verdict per version",
        not doubles,
        f"{verdict_total:,} verdicts, {len(doubles)} versions judged twice (approvals required: 1)",
        doubles,
    )
    handed = defaultdict(set)
    for client in clients:
        for uuid in client.handed:
            handed[uuid].add(client.user_id)
    authors = defaultdict(set)
    for uuid, author in _rows(
        "SELECT e.uuid::text, r.author_id FROM annotate_revision r JOIN annotate_example e ON e.id = r.example_id "
        "WHERE r.id > %(floor)s AND e.task_id = %(task)s AND r.reason IN ('autosave', 'save', 'submit')",
        p,
    ):
        authors[uuid].add(author)
    wrong = [
        f"{uuid}: written by users {sorted(users)}, handed to {sorted(handed.get(uuid, ()))}"
        for uuid, users in authors.items()
        if len(users) > 1 or not users <= handed.get(uuid, set())
    ]
    out.check(
        "(a) each example written by the one it was handed to",
        not wrong,
        f"{len(authors):,} examples written, {len(wrong)} with another writer",
        wrong,
    )
    chains = defaultdict(list)
    for example_id, from_status, to_status, actor in _rows(
        f"SELECT example_id, from_status, to_status, actor_id FROM annotate_transition WHERE {IN_TASK} ORDER BY id",
        p,  # noqa: S608
    ):
        chains[example_id].append((from_status, to_status, actor))
    statuses = _rows(
        "SELECT id, status, author_id FROM annotate_example WHERE id = ANY(%(ids)s)", {"ids": list(chains)}
    )
    current = {pk: (status, author) for pk, status, author in statuses}
    broken = []
    for example_id, chain in chains.items():
        status, author = current[example_id]
        expected = "submitted" if author == importer.pk else "new"
        writers = {actor for _, to_status, actor in chain if to_status in ("draft", "submitted")}
        for from_status, to_status, _ in chain:
            if from_status != expected:
                broken.append(f"example {example_id}: {chain}")
                break
            expected = to_status
        else:
            if expected != status:
                broken.append(f"example {example_id}: chain ends {expected}, example is {status}")
            elif len(writers) > 1:
                broken.append(f"example {example_id}: annotator transitions by {sorted(writers)}")
    out.check(
        "(a) transitions form one chain per example",
        not broken,
        f"{sum(len(c) for c in chains.values()):,} transitions of {len(chains):,} examples, {len(broken)} broken",
        broken,
    )

    stray = _rows(
        "SELECT e.uuid::text, e.status, u.username FROM annotate_example e JOIN auth_user u ON u.id = e.claimed_by_id "
        "WHERE e.task_id = %(task)s AND e.status IN ('approved', 'flagged', 'rejected') AND e.claim_expires_at > now()",
        p,
    )
    seen = sum(len(client.stray) for client in clients)
    print(
        f"   NOTE  leases left on decided examples: {len(stray)}; "
        f'"next pair" answered with the pair just decided in another tab: {seen}'
    )
    for row in stray[:3]:
        print(f"           e.g. {row}")

    # (b) no lost revision.
    recorded = Counter()
    for client in clients:
        recorded.update(client.revisions)
    stored = Counter(
        _rows(
            "SELECT e.uuid::text, r.example_version, r.reason, md5(r.text) FROM annotate_revision r "
            "JOIN annotate_example e ON e.id = r.example_id WHERE r.id > %(floor)s AND e.task_id = %(task)s "
            f"AND {CURRENT_LINE}",
            p,
        )
    )
    missing, extra = recorded - stored, stored - recorded
    by_reason = Counter(reason for (_, _, reason, _), n in recorded.items() for _ in range(n))
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(by_reason.items()))
    out.check(
        "(b) every stored save has its revision, and no other revision",
        not missing and not extra,
        f"{sum(recorded.values()):,} answered as stored ({reasons}), {sum(stored.values()):,} revisions written; "
        f"{sum(missing.values())} missing, {sum(extra.values())} unanswered",
        [f"missing {key}" for key in missing] + [f"unanswered {key}" for key in extra],
    )
    stale_stored = sum(
        n for key, n in expectations.items() if "stale" in key and "verdict" not in key and key.endswith("STORED")
    )
    stale_tried = sum(n for key, n in expectations.items() if "stale" in key and "verdict" not in key)
    races = Counter()
    for client in clients:
        races.update(client.races)
    both = sum(n for key, n in races.items() if key.startswith("save") and key.endswith(": 2 stored"))
    out.check(
        "(b) stale saves never stored",
        stale_stored == 0 and both == 0,
        f"{stale_tried:,} stale saves/submits on purpose, {stale_stored} stored; "
        f"{sum(n for k, n in races.items() if k.startswith('save')):,} two-tab races, {both} with both stored",
    )
    drift = _rows(
        "SELECT e.uuid::text, e.version, r.example_version, md5(e.completion) = md5(r.text) FROM annotate_example e "
        "JOIN LATERAL (SELECT text, example_version FROM annotate_revision WHERE example_id = e.id "
        f"AND {CURRENT_LINE} "
        "ORDER BY id DESC LIMIT 1) r ON true "
        "WHERE e.id IN (SELECT example_id FROM annotate_revision WHERE id > %(floor)s) AND e.task_id = %(task)s",
        p,
    )
    off = [row for row in drift if not row[3] or row[1] - row[2] not in (0, 1)]
    out.check(
        "(b) each example holds its latest revision",
        not off,
        f"{len(drift):,} examples written; {len(off)} whose text or version is not their latest revision's",
        off,
    )

    # (c) no verdict on a stale revision.
    verdicts = _rows(
        "SELECT v.id, e.uuid::text, v.example_id, v.revision_id, v.example_version, v.reviewer_id, v.created_at "
        f"FROM reviews_verdict v JOIN annotate_example e ON e.id = v.example_id WHERE v.{IN_TASK}",  # noqa: S608
        p,
    )
    revisions = defaultdict(list)
    for example_id, pk, version, created in _rows(
        "SELECT example_id, id, example_version, created_at FROM annotate_revision "
        f"WHERE {CURRENT_LINE} AND example_id IN (SELECT example_id FROM reviews_verdict WHERE "
        + IN_TASK
        + ") ORDER BY example_version, id",
        p,
    ):
        revisions[example_id].append((version, pk, created))
    stale = []
    for pk, uuid, example_id, revision_id, version, _, created in verdicts:
        judged = [r for r in revisions[example_id] if r[0] <= version]
        if not judged or judged[-1][1] != revision_id:
            stale.append(
                f"verdict {pk} on {uuid} v{version}: revision {revision_id}, "
                f"latest of v{version} is {judged[-1][1] if judged else None}"
            )
        newer = [r for r in revisions[example_id] if r[0] > version and r[2] < created]
        if newer:
            stale.append(
                f"verdict {pk} on {uuid} v{version} at {created}: "
                f"revision {newer[0][1]} (v{newer[0][0]}) was already there"
            )
    posted = {}
    for client in clients:
        for uuid, version, edited in client.verdicts:
            posted[(uuid, client.user_id)] = version + int(edited)
    in_db = {(uuid, reviewer): version for _, uuid, _, _, version, reviewer, _ in verdicts}
    mismatched = [
        f"{key}: posted v{posted.get(key)}, stored v{in_db.get(key)}"
        for key in set(posted) | set(in_db)
        if posted.get(key) != in_db.get(key)
    ]
    on_seeded = _rows(
        "SELECT count(*) FILTER (WHERE e.author_id = %(importer)s), "
        "count(*) FILTER (WHERE e.author_id <> %(importer)s) "
        f"FROM reviews_verdict v JOIN annotate_example e ON e.id = v.example_id WHERE v.{IN_TASK}",  # noqa: S608
        p,
    )[0]
    stale_verdicts = sum(
        n for key, n in expectations.items() if key.startswith("stale verdict") and key.endswith("STORED")
    )
    tried_verdicts = sum(n for key, n in expectations.items() if key.startswith("stale verdict"))
    out.check(
        "(c) every verdict on the current revision",
        not stale and not mismatched and stale_verdicts == 0,
        f"{len(verdicts):,} verdicts ({on_seeded[0]:,} on loaded pairs, {on_seeded[1]:,} on pairs submitted in the "
        "run; "
        f"{len(posted):,} answered as recorded): {len(stale)} on a superseded revision, "
        f"{len(mismatched)} not on the version posted; "
        f"{tried_verdicts:,} stale verdicts on purpose, {stale_verdicts} recorded",
        stale + mismatched,
    )


def check_answers(clients: list[Client], out: Verdicts) -> None:
    outcomes = Counter()
    bad = []
    for client in clients:
        for kind, status, _, outcome, message in client.responses:
            outcomes[outcome] += 1
            if outcome in ("5xx", "connection error", "unclassified", "refused without message", "client error"):
                bad.append(f"{kind}: {outcome} {status} {message[:160]}")
    total = sum(outcomes.values())
    out.check(
        "(d) every request answered, every refusal with a message",
        not bad,
        f"{total:,} responses; 5xx {outcomes['5xx']}, connection errors {outcomes['connection error']}, "
        f"unclassified {outcomes['unclassified']}, refusals without a message {outcomes['refused without message']}",
        bad,
    )


def report(clients: list[Client], seconds: float) -> None:
    by_kind: dict[str, list] = defaultdict(list)
    outcomes: dict[str, Counter] = defaultdict(Counter)
    refusals = Counter()
    for client in clients:
        for kind, _, elapsed, outcome, message in client.responses:
            by_kind[kind].append(elapsed * 1000)
            outcomes[kind][outcome] += 1
            if outcome == "refused":
                refusals[(kind, category(message))] += 1
    total = sum(len(v) for v in by_kind.values())
    print(f"   {total:,} requests in {seconds:.0f} s: {total / seconds:,.0f}/s")
    print(f"   {'kind':<18}{'n':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  outcomes")
    for kind in sorted(by_kind, key=lambda k: -len(by_kind[k])):
        values = by_kind[kind]
        p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
        summary = ", ".join(f"{name} {n:,}" for name, n in outcomes[kind].most_common())
        print(
            f"   {kind:<18}{len(values):>7,}{len(values) / seconds:>8.1f}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}  {summary}"
        )
    print("   refusals by what they said:")
    for (kind, what), n in sorted(refusals.items()):
        print(f"     {kind:<18} {what:<16} {n:,}")
    races = Counter()
    notes = []
    for client in clients:
        races.update(client.races)
        notes += client.notes
    if races:
        print("   two-tab races: " + ", ".join(f"{key} ×{n:,}" for key, n in sorted(races.items())))
    if notes:
        print(f"   notes ({len(notes)}): " + "; ".join(notes[:5]))


def migrated() -> bool:
    """True when the database has every migration; otherwise say so (every page would fail with a 500)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan)
        print(f"   skipped: the database lacks migrations ({names}); run `python manage.py migrate` first")
    return not plan


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench load")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv or [])
    if args.clients < 4:
        parser.error("--clients: at least 4 (annotators, reviewers and a racer of each)")
    if args.n < 100:
        parser.error("--n: at least 100 examples")
    setup_django()
    if not require_postgres() or not migrated():
        return
    roles = roles_for(args.clients)
    task, importer, users = prepare(args.n, roles, args.fresh)
    revision_floor = _rows("SELECT coalesce(max(id), 0) FROM annotate_revision", [])[0][0]
    workers, threads = 4, max(8, math.ceil(args.clients / 4))
    shared = Shared()
    # Clients go as fast as they can: per-person rate limits (off here) would measure themselves, not concurrency.
    no_limits = {"RATE_LIMIT_WRITES": "0", "RATE_LIMIT_FEEDBACK": "0", "RATE_LIMIT_JOBS": "0"}
    with gunicorn(workers=workers, threads=threads, extra_env=no_limits) as (url, secret):
        cookies = [session_cookie_for(user, secret) for user in users]
        clients = [
            Client(url=url, cookie=cookie, index=i, user=user, role=role, shared=shared, deadline=math.inf)
            for i, (user, cookie, role) in enumerate(zip(users, cookies, roles, strict=True))
        ]
        warming = [threading.Thread(target=client.warm_up) for client in clients]
        for thread in warming:
            thread.start()
        for thread in warming:
            thread.join()
        started = time.monotonic()
        for client in clients:
            client.deadline = started + args.seconds
        running = [threading.Thread(target=client.run, name=f"client-{client.index}") for client in clients]
        for thread in running:
            thread.start()
        for thread in running:
            thread.join()
        elapsed = time.monotonic() - started
    mix = Counter(roles)
    print(
        f"   {args.clients} clients ({', '.join(f'{n} {role}s' for role, n in mix.items())}) for {args.seconds} s, "
        f"no pauses; {args.n:,} examples ({args.n // SEED_SHARE:,} submitted); "
        f"gunicorn {workers} workers x {threads} threads"
    )
    report(clients, elapsed)
    out = Verdicts()
    check_holds(clients, out)
    check_database(task, importer, clients, out, revision_floor)
    check_answers(clients, out)
    if out.failed:
        raise SystemExit(1)
