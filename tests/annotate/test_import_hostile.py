"""Hostile input to imports, through the command, the upload page (imported in the request) and a background job.

The size, record and field limits; invalid UTF-8, NUL characters, unpaired surrogates, BOMs, CRLF, a lone CR; very
deep and very large JSON; CSV formula cells; URLs. Every refusal names what is wrong and where (line or row, field,
limit), stores nothing (examples, revisions, transitions) and is never a server error. Property tests throw random
bytes and random JSON at the upload page. The dashboard's CSV downloads neutralise formulas.
"""

import contextlib
import csv
import html
import io
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import NamedTuple

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_django.asserts import assertContains, assertNotContains

from annotate import importing
from annotate.models import Example, ImportJob, QualityScan, Revision, Transition
from annotate.views_import import UploadForm
from pairsmith.jobs import JobState
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def existing(task):
    """One example already in the task, with its revision and transition, so "unchanged" is not just "empty"."""
    example = ExampleFactory(task=task, external_id="taken", completion="old")
    Revision.objects.create(example=example, text="old", reason=Revision.Reason.SAVE, example_version=1)
    Transition.objects.create(example=example, from_status="new", to_status="new")
    return example


def rows() -> tuple[int, int, int]:
    return Example.objects.count(), Revision.objects.count(), Transition.objects.count()


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def json_array(*records) -> bytes:
    """One record a line, the array's brackets on lines of their own: record N is on line N + 1."""
    return ("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n").encode()


GOOD = {"instruction": "Fine", "completion": "ok"}
DEEP = "[" * 100_000 + "]" * 100_000


# --- the three ways in -----------------------------------------------------------------------------------------


class Outcome(NamedTuple):
    imported: bool
    text: str  # what the user reads: the command's output or error, or the page (unescaped)
    counts: dict | None  # the import's counts when it imported


def by_command(task, folder: Path, name: str, content: bytes, status: str = "new", allow=()) -> Outcome:
    path = folder / name
    path.write_bytes(content)
    out = StringIO()
    allowed = ("--allow-unmapped", ",".join(allow)) if allow else ()
    try:
        call_command("import_examples", task.slug, str(path), "--status", status, *allowed, stdout=out)
    except CommandError as exc:
        return Outcome(False, str(exc), None)
    found = re.search(r"^Imported (\d+) examples into .*: (\d+) with completions$", out.getvalue(), re.MULTILINE)
    counts = {"records": int(found[1]), "with_completion": int(found[2]), "status": status}
    return Outcome(True, out.getvalue(), counts)


def page_text(response) -> str:
    assert response.status_code < 500
    return html.unescape(response.content.decode())


def by_browser(
    client, task, name: str, content: bytes, status: str = "new", *, commit=contextlib.nullcontext, allow=()
) -> Outcome:
    """Upload, open the mapping page, preview, and import with the prefilled mapping, as a lead would; with `allow`,
    the keys the page lists as not stored must be those, and the lead chooses to drop them."""
    response = client.post(reverse("imports:upload", args=[task.slug]), {"file": SimpleUploadedFile(name, content)})
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 200:  # refused at upload
        return Outcome(False, page_text(response), None)
    mapping_url = response.url
    page = client.get(mapping_url)
    assert page.status_code == 200
    form = page.context["form"]
    data = {f"map_{i}": form[f"map_{i}"].initial or "" for i in range(len(form.keys))}
    data.update(status=status, action="import")
    if allow:
        assert sorted(u.key for u in page.context["unstored"]) == sorted(allow)
        data.update(unmapped="drop", unmapped_key=list(allow))
    assert client.post(mapping_url + "preview/", data, headers={"HX-Request": "true"}).status_code == 200
    with commit():
        response = client.post(mapping_url, data)
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 200:  # refused by the check (form or records): the mapping page again
        return Outcome(False, page_text(response), None)
    job = ImportJob.objects.get(pk=int(response.url.rstrip("/").rsplit("/", 1)[1]))
    assert job.state in (JobState.SUCCEEDED, JobState.FAILED)  # it ran (inline, or as a job on commit)
    text = page_text(client.get(response.url))
    return Outcome(job.state == JobState.SUCCEEDED, text, job.counts if job.state == JobState.SUCCEEDED else None)


Importer = Callable[..., Outcome]


@pytest.fixture(params=["command", "upload", "job"])
def importer(request, task, lead, client, tmp_path, monkeypatch, django_capture_on_commit_callbacks) -> Importer:
    """import(name, content, status="new") -> Outcome, by the command, the upload page, or the upload page with every
    file large enough to run as a job (on a worker; inline here, when the request's transaction commits)."""
    if request.param == "command":
        return lambda name, content, status="new", allow=(): by_command(task, tmp_path, name, content, status, allow)
    client.force_login(lead)
    if request.param == "upload":
        return lambda name, content, status="new", allow=(): by_browser(client, task, name, content, status,
                                                                        allow=allow)  # fmt: skip
    request.getfixturevalue("inline_celery")
    monkeypatch.setattr(importing.limits, "INLINE_MAX_BYTES", 0)

    def run(name: str, content: bytes, status: str = "new", allow=()) -> Outcome:
        commit = lambda: django_capture_on_commit_callbacks(execute=True)  # noqa: E731
        return by_browser(client, task, name, content, status, commit=commit, allow=allow)

    return run


def assert_refused(importer: Importer, name: str, content: bytes, *expected: str, allow=()) -> str:
    before = rows()
    outcome = importer(name, content, allow=allow) if allow else importer(name, content)
    assert not outcome.imported
    for text in expected:
        assert text in outcome.text
    assert rows() == before
    return outcome.text


def assert_imported(importer: Importer, name: str, content: bytes, records: int, allow=()) -> Outcome:
    before = rows()
    outcome = importer(name, content, allow=allow) if allow else importer(name, content)
    assert outcome.imported, outcome.text
    assert outcome.counts["records"] == records
    n, with_completion = records, outcome.counts["with_completion"]
    moved = n if outcome.counts["status"] != "new" else 0  # a transition only when the status moves
    assert rows() == (before[0] + n, before[1] + with_completion, before[2] + moved)
    return outcome


# --- limits: size, records, field, record ----------------------------------------------------------------------


def test_the_size_limit_names_the_limit_and_its_setting(importer, existing, settings):
    settings.MAX_IMPORT_BYTES = 100
    content = jsonl(*[{"instruction": f"Question {i}"} for i in range(10)])
    assert_refused(importer, "big.jsonl", content, "over the import limit of 100 bytes", "MAX_IMPORT_BYTES")


@pytest.mark.parametrize("background", [False, True], ids=["inline", "job"])
def test_the_size_limit_is_checked_again_when_the_import_runs(
    request, client, lead, task, existing, settings, monkeypatch, django_capture_on_commit_callbacks, background
):
    content = jsonl(GOOD) * 9
    if background:
        request.getfixturevalue("inline_celery")
        monkeypatch.setattr(importing.limits, "INLINE_MAX_BYTES", 0)

    @contextlib.contextmanager
    def commit():
        settings.MAX_IMPORT_BYTES = 10  # lowered between upload and import
        with django_capture_on_commit_callbacks(execute=background):
            yield

    client.force_login(lead)
    before = rows()
    outcome = by_browser(client, task, "a.jsonl", content, commit=commit)
    assert not outcome.imported
    assert (
        f"The file is {len(content)} bytes, over the import limit of 10 bytes. Split it, or raise MAX_IMPORT_BYTES."
        in outcome.text
    )
    assert rows() == before


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "rows.jsonl",
            jsonl(*[{"instruction": f"Q{i}"} for i in range(5)]),
            "line 4: the file holds more than 3 records",
        ),
        ("rows.csv", ("instruction\n" + "".join(f"Q{i}\n" for i in range(5))).encode(), "row 5: the file holds more"),
        ("rows.json", json_array(*[{"instruction": f"Q{i}"} for i in range(5)]), "record 4 (line 5): the file holds"),
    ],
    ids=["jsonl", "csv", "json"],
)
def test_the_record_limit_names_the_record_the_limit_and_its_setting(
    importer, existing, settings, name, content, expected
):
    settings.MAX_IMPORT_ROWS = 3
    assert_refused(importer, name, content, expected, "more than 3 records, the import limit", "MAX_IMPORT_ROWS")


def test_the_record_limit_stops_the_reading_and_comes_first(task, tmp_path, settings):
    settings.MAX_IMPORT_ROWS = 3
    path = tmp_path / "rows.jsonl"
    path.write_bytes(jsonl({"instruction": "a", "kind": "odd"}, GOOD, GOOD, GOOD, {"instruction": "b", "kind": "odd"}))
    with pytest.raises(importing.ImportFailed) as caught:
        importing.import_check(task=task, path=path, file_format="jsonl")
    assert caught.value.messages == [
        "line 4: the file holds more than 3 records, the import limit; split it, or raise the MAX_IMPORT_ROWS setting",
        'line 1, field "kind": unknown kind "odd"; use happy, edge, negative or ambiguous',
    ]  # line 5 is not read


def test_a_file_at_the_record_limit_imports(importer, settings):
    settings.MAX_IMPORT_ROWS = 3
    assert_imported(importer, "rows.jsonl", jsonl(*[{"instruction": f"Q{i}"} for i in range(3)]), 3)


def test_the_record_limit_defaults_to_two_million(settings):
    del settings.MAX_IMPORT_ROWS  # not set: the default
    assert importing.max_import_rows() == 2_000_000


LONG = "x" * 100_001
OVER_FIELD = "100,001 characters, over the limit of 100,000 characters a field"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("long.jsonl", jsonl(GOOD, {"instruction": "a", "input": LONG}), f'line 2, field "input": {OVER_FIELD}'),
        ("long.csv", f"prompt,output\na,b\nc,{LONG}\n".encode(), f'row 3, field "output": {OVER_FIELD}'),
        ("long.json", json_array(GOOD, {"prompt": LONG}), f'record 2 (line 3), field "prompt": {OVER_FIELD}'),
        (
            "chat.jsonl",
            jsonl(GOOD, {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": LONG}]}),
            f'line 2, field "messages[1].content": {OVER_FIELD}',
        ),
        (
            "huge.json",  # a very large single value: refused by the field limit, whatever its size
            json_array(GOOD, {"instruction": "q", "completion": "y" * 3_000_000}),
            'record 2 (line 3), field "completion": 3,000,000 characters, over the limit of 100,000 characters a field',
        ),
    ],
    ids=["jsonl", "csv", "json", "chat-message", "huge-value"],
)
def test_the_field_limit_names_the_record_the_field_and_the_limit(importer, existing, name, content, expected):
    assert_refused(importer, name, content, expected)


def test_a_line_over_the_record_size_limit_is_named_with_the_limit(importer, existing, monkeypatch):
    monkeypatch.setattr(importing.limits, "MAX_RECORD_BYTES", 64 * 1024)
    content = jsonl(GOOD, {"instruction": "z" * 70_000})
    assert_refused(importer, "long.jsonl", content, "line 2: longer than 65,536 bytes, the limit of one record")


def test_the_upload_page_states_the_limits(client, lead, task, settings):
    settings.MAX_IMPORT_ROWS = 1_500
    client.force_login(lead)
    response = client.get(reverse("imports:upload", args=[task.slug]))
    assertContains(response, "Limits: 2.0 GB a file, 1,500 records, 100,000 characters a field.")


# --- encodings and characters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.jsonl", b'{"prompt": "ok"}\n{"prompt": "\xe9"}\n', "line 2: invalid UTF-8 at byte offset 12 of the line"),
        ("bad.csv", b"instruction,completion\na,b\nc,caf\xe9\n", "line 3: invalid UTF-8 at byte offset 5 of the line"),
        ("bad.json", b'[{"prompt": "ok"},\n{"prompt": "\xff"}]', "line 2: invalid UTF-8 at byte offset 12 of the line"),
        ("utf16.jsonl", jsonl(GOOD).decode().encode("utf-16"), "line 1: invalid UTF-8 at byte offset 0 of the line"),
    ],
    ids=["jsonl", "csv", "json", "utf-16"],
)
def test_invalid_utf8_names_the_line_and_the_byte(importer, existing, name, content, expected):
    assert_refused(importer, name, content, expected)


NUL = "contains a NUL character (\\u0000), which cannot be stored"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("escaped.jsonl", jsonl(GOOD, {"instruction": "a\u0000b"}), f'line 2, field "instruction": {NUL}'),
        ("raw.jsonl", jsonl(GOOD) + b'{"instruction": "raw\x00nul"}\n', f'line 2, field "instruction": {NUL}'),
        ("nul.csv", b"instruction,input\nok,a\nok,a\x00b\n", f'row 3, field "input": {NUL}'),
        (
            "nul.json",
            json_array(GOOD, {"prompt": "q", "completion": "a\u0000b"}),
            f'record 2 (line 3), field "completion": {NUL}',
        ),
        ("id.jsonl", jsonl(GOOD, {"instruction": "q", "id": "a\u0000"}), f'line 2, field "id": {NUL}'),
        (
            "chat.jsonl",
            jsonl(GOOD, {"messages": [{"role": "user", "content": "\u0000"}]}),
            f'field "messages[0].content": {NUL}',
        ),
        # The problem quotes the value: escaped, so that the message can be stored on a job's row and shown.
        (
            "kind.jsonl",
            jsonl(GOOD, {"instruction": "q", "kind": "ed\u0000ge"}),
            'line 2, field "kind": unknown kind "ed\\u0000ge"',
        ),
        (
            "key.jsonl",
            jsonl(GOOD, {"instruction": "a", "prompt": "b"}, {"instruction": "c", "pro\u0000": "x"}),
            'line 2, field "prompt"',
        ),
    ],
    ids=["jsonl-escaped", "jsonl-raw", "csv", "json", "id", "chat", "quoted-in-message", "with-a-nul-key"],
)
def test_nul_characters_are_refused_naming_the_field(importer, existing, name, content, expected):
    allow = ["pro\\u0000"] if name == "key.jsonl" else ()  # the key no field takes: dropped as allowed
    assert_refused(importer, name, content, expected, allow=allow)


SURROGATE = "contains an unpaired surrogate (\\ud800), which is not valid Unicode"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("s.json", b'[{"prompt": "ok"},\n{"prompt": "a\\ud800"}]', f'record 2 (line 2), field "prompt": {SURROGATE}'),
        (
            "s.json",
            b'[{"prompt": "ok"},\n{"prompt": "q", "id": "\\ud800"}]',
            f'record 2 (line 2), field "id": {SURROGATE}',
        ),
        (
            "s.json",
            b'[{"prompt": "ok"},\n{"messages": [{"role": "\\ud800x", "content": "a"}]}]',
            'record 2 (line 2), field "messages[0].role": unknown role "\\ud800x"',
        ),
        ("s.jsonl", jsonl(GOOD) + b'{"prompt": "a\\ud800"}\n', "line 2: invalid JSON: no low surrogate in string"),
        ("s.jsonl", jsonl(GOOD) + b'{"prompt": "a\\ud800\tb"}\n', f'line 2, field "prompt": {SURROGATE}'),
    ],
    ids=["json-text", "json-id", "json-role-quoted", "jsonl", "jsonl-lenient"],
)
def test_unpaired_surrogates_are_refused_naming_the_field(importer, existing, name, content, expected):
    assert_refused(importer, name, content, expected)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "bom.jsonl",
            b"\xef\xbb\xbf" + jsonl(GOOD, {"instruction": "Second", "completion": "two"}).replace(b"\n", b"\r\n"),
        ),
        (
            "bom.json",
            b"\xef\xbb\xbf" + json_array(GOOD, {"instruction": "Second", "completion": "two"}).replace(b"\n", b"\r\n"),
        ),
        ("bom.csv", b"\xef\xbb\xbfinstruction,completion\r\nFine,ok\r\nSecond,two\r\n"),
        ("bom-no-final-newline.csv", b"\xef\xbb\xbfinstruction,completion\r\nFine,ok\r\nSecond,two"),
        (
            "no-extension",
            b"\xef\xbb\xbf" + jsonl(GOOD, {"instruction": "Second", "completion": "two"}).replace(b"\n", b"\r\n"),
        ),
    ],
    ids=["jsonl", "json", "csv", "csv-no-final-newline", "detected"],
)
def test_a_bom_and_crlf_line_ends_are_accepted_and_not_stored(importer, task, name, content):
    assert_imported(importer, name, content, 2)
    assert sorted(task.examples.values_list("instruction", "completion")) == [("Fine", "ok"), ("Second", "two")]


@pytest.mark.parametrize(
    ("name", "content", "allow"),
    [
        ("keys.jsonl", jsonl({"instruction": "a", "no\u0000te": 1, "k" * 2000: 2}), ["no\\u0000te", "k" * 100 + "…"]),
        ("keys.json", b'[{"instruction": "a", "no\\u0000te": 1, "\\ud800": 2}]', ["no\\u0000te", "\\ud800"]),
        ("keys.csv", b"instruction,no\x00te\na,1\n", ["no\\u0000te"]),
    ],
    ids=["jsonl", "json", "csv"],
)
def test_keys_that_cannot_be_stored_are_ignored_and_shown_escaped(importer, task, name, content, allow):
    outcome = assert_imported(importer, name, content, 1, allow=allow)  # dropped as allowed, named as escaped
    assert "Ignored keys (no matching field): " in outcome.text and "no\\u0000te" in outcome.text
    assert task.examples.get().instruction == "a"


def test_only_a_newline_ends_a_jsonl_line_a_lone_cr_and_u2028_are_data(importer, task):
    content = b'{"instruction": "a\rb", "completion": "c\xe2\x80\xa8d", "context": "tab\there"}\r\n{"prompt": "two"}\n'
    assert_imported(importer, "odd.jsonl", content, 2)
    example = task.examples.get(completion="c\u2028d")
    assert (example.instruction, example.context) == ("a\rb", "tab\there")


def test_a_lone_cr_does_not_split_jsonl_records(importer, existing):
    content = b'{"instruction": "one"}\r{"instruction": "two"}\n'
    assert_refused(
        importer, "cr.jsonl", content, "line 1: invalid JSON: unexpected content after document at column 24"
    )


# --- deep and large JSON ---------------------------------------------------------------------------------------

TOO_DEEP = "invalid JSON: arrays and objects nested too deeply (the limit is about 1,000 levels)"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("deep.jsonl", jsonl(GOOD) + DEEP.encode() + b"\n", f"line 2: {TOO_DEEP}"),
        ("deep.jsonl", jsonl(GOOD) + b'{"instruction": "x", "meta": ' + DEEP.encode() + b"}\n", f"line 2: {TOO_DEEP}"),
        (
            "deep.jsonl",
            jsonl(GOOD) + b'{"instruction": "tab\there", "meta": ' + DEEP.encode() + b"}\n",
            f"line 2: {TOO_DEEP}",
        ),
        ("deep.json", b'[{"prompt": "ok"},\n' + DEEP.encode() + b"]", f"line 2: {TOO_DEEP}"),
        ("deep.json", b'[{"prompt": "ok"},\n{"prompt": "x", "meta": ' + DEEP.encode() + b"}]", f"line 2: {TOO_DEEP}"),
        ("deep.json", DEEP.encode(), f"line 1: {TOO_DEEP}"),
        ("deep.csv", b"instruction,messages\nok,\n," + DEEP.encode() + b"\n", f'row 3, field "messages": {TOO_DEEP}'),
        (
            "long-number.json",
            b'[{"prompt": "ok"},\n{"prompt": "x", "n": ' + b"1" * 5000 + b"}]",
            "line 2: invalid JSON: a number too long to read (the limit is 4,300 digits)",
        ),
        (
            "long-number.jsonl",
            jsonl(GOOD) + b'{"prompt": "x", "n": ' + b"1" * 5000 + b"}\n",
            "line 2: invalid JSON: a number too large to read",
        ),
    ],
    ids=[
        "jsonl",
        "jsonl-in-a-key",
        "jsonl-lenient",
        "json",
        "json-in-a-key",
        "json-whole-file",
        "csv-messages",
        "json-number",
        "jsonl-number",
    ],
)
def test_very_deep_json_and_huge_numbers_get_a_clear_refusal(importer, existing, name, content, expected):
    assert_refused(importer, name, content, expected)


# --- CSV formula cells and URLs are text -------------------------------------------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", '=HYPERLINK("http://127.0.0.1:1/x","y")']


def test_csv_formula_cells_are_stored_verbatim_and_never_evaluated(importer, task):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["instruction", "completion", "context", "input"])
    writer.writerow(FORMULAS[:4])
    writer.writerow([FORMULAS[4], "=1+1", "NA", "null"])
    assert_imported(importer, "formulas.csv", out.getvalue().encode(), 2)
    first = task.examples.get(instruction=FORMULAS[0])
    assert (first.completion, first.context, first.input) == tuple(FORMULAS[1:4])
    second = task.examples.get(instruction=FORMULAS[4])
    assert (second.completion, second.context, second.input) == ("=1+1", "NA", "null")


@pytest.fixture
def http_server():
    """A web server on a free loopback port that records every request it gets: (base URL, requests)."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"instruction": "fetched"}\n')

        do_POST = do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", requests
    server.shutdown()
    server.server_close()


def test_urls_in_records_are_stored_as_text_and_never_fetched(importer, task, http_server):
    base, requests = http_server
    record = {
        "instruction": f"{base}/instruction.jsonl",
        "context": "file:///etc/passwd",
        "input": f"{base}/input",
        "completion": f'=IMPORTDATA("{base}/completion.csv")',
        "id": f"{base}/id",
        f"{base}/key": f"{base}/value",
    }
    assert_imported(importer, "urls.jsonl", jsonl(record), 1, allow=[f"{base}/key"])
    example = task.examples.get()
    assert (example.instruction, example.context, example.input, example.completion, example.external_id) == (
        record["instruction"], record["context"], record["input"], record["completion"], record["id"],
    )  # fmt: skip
    assert requests == []


def test_the_command_takes_a_local_file_never_a_url(task, http_server):
    base, requests = http_server
    for source in (f"{base}/pairs.jsonl", "file:///etc/passwd"):
        with pytest.raises(CommandError, match="No such file"):
            call_command("import_examples", task.slug, source, stdout=StringIO())
    assert requests == [] and rows() == (0, 0, 0)


def test_the_upload_form_has_no_url_field_and_ignores_one(client, lead, task, http_server):
    base, requests = http_server
    assert set(UploadForm.base_fields) == {"file", "file_format"}
    client.force_login(lead)
    url = reverse("imports:upload", args=[task.slug])
    page = client.get(url)
    assertNotContains(page, 'type="url"')
    for name in ("url", "file", "source", "path"):
        response = client.post(url, {name: f"{base}/pairs.jsonl", "file_format": "jsonl"})
        assert response.status_code == 200
        assert response.context["form"].errors["file"]  # a file is required; text (even in "file") is not one
    assert requests == [] and rows() == (0, 0, 0) and not ImportJob.objects.exists()


# --- property tests: random bytes and random JSON never cause a server error or a partial import ---------------

PREFIXES = [
    b"",
    b"instruction\n",
    b"\xef\xbb\xbfprompt,completion\r\n",
    b'{"instruction": "',
    b'[{"prompt": "',
    b'{"messages": [{"role": "user", "content": "',
]


def assert_all_or_nothing(before: tuple[int, int, int], outcome: Outcome, records: int | None = None) -> None:
    after = rows()
    event("imported" if outcome.imported else "refused")  # --hypothesis-show-statistics: both sides are reached
    if not outcome.imported:
        assert after == before, outcome.text
        return
    n = outcome.counts["records"]
    assert n >= 1 and (records is None or n == records)
    moved = n if outcome.counts["status"] != "new" else 0  # a transition only when the status moves
    assert after == (before[0] + n, before[1] + outcome.counts["with_completion"], before[2] + moved)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Known troublemakers first, then random ones: deep nesting, a 5,000-digit number, an unpaired surrogate.
@example(content=b"[" * 5_000, suffix=".json")
@example(content=b'[{"prompt": "a", "n": ' + b"1" * 5_000 + b"}]", suffix=".json")
@example(content=b'[{"prompt": "a\\ud800"}]', suffix=".txt")
@given(
    content=st.tuples(st.sampled_from(PREFIXES), st.binary(max_size=300)).map(b"".join),
    suffix=st.sampled_from([".jsonl", ".json", ".csv", ".txt"]),
)
def test_random_bytes_never_cause_a_server_error_or_a_partial_import(client, lead, task, content, suffix):
    client.force_login(lead)
    before = rows()
    outcome = by_browser(client, task, f"random{suffix}", content)  # asserts no status 500 on any page
    assert_all_or_nothing(before, outcome)


KEYS = [
    "instruction",
    "prompt",
    "context",
    "input",
    "output",
    "completion",
    "kind",
    "id",
    "messages",
    "role",
    "content",
]
# Text with what trips importers up: NUL and other controls, CR, U+2028, a BOM, unpaired surrogates.
TEXT = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from("\x00\r\n\t\u2028\ufeff=+-@\ud800\udfff")),
    max_size=12,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | TEXT, children, max_size=5)
    ),
    max_leaves=12,
)
RECORDS = st.one_of(
    JSON_VALUES,
    st.tuples(  # a record that may well be good, with random keys of its own (ignored, or clashing)
        st.fixed_dictionaries(
            {"instruction": TEXT},
            optional={"completion": TEXT | JSON_VALUES, "kind": st.sampled_from(["happy", "edge", "Odd"]), "id": TEXT},
        ),
        st.dictionaries(TEXT, JSON_VALUES, max_size=2),
    ).map(lambda parts: {**parts[1], **parts[0]}),
    st.fixed_dictionaries(
        {
            "messages": st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": TEXT}
                ),
                max_size=4,
            )
        }
    ),
)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(records=[{"instruction": "a\ud800"}], ascii=True, raw_controls=False, container="json")
@example(records=[{"instruction": "a\tb\ud800"}], ascii=True, raw_controls=True, container="jsonl")
@example(records=[{"instruction": "a", "no\x00te": 1}], ascii=True, raw_controls=False, container="jsonl")
@given(
    records=st.lists(RECORDS, min_size=1, max_size=6),
    ascii=st.booleans(),
    raw_controls=st.booleans(),
    container=st.sampled_from(["jsonl", "jsonl", "json"]),
)
def test_random_json_never_causes_a_server_error_or_a_partial_import(
    client, lead, task, records, ascii, raw_controls, container
):
    lines = [json.dumps(r, ensure_ascii=ascii) for r in records]
    if raw_controls:  # tabs and CRs written raw inside strings, as careless writers do (never a \n: one line each)
        lines = [line.replace("\\t", "\t").replace("\\r", "\r") for line in lines]
    text = "".join(line + "\n" for line in lines) if container == "jsonl" else "[" + ",\n".join(lines) + "]"
    # Unpaired surrogates go out as \ud800 escapes (ensure_ascii), or as the bytes Python gives them (invalid UTF-8).
    content = text.encode("utf-8", "surrogatepass")
    client.force_login(lead)
    before = rows()
    outcome = by_browser(client, task, f"random.{container}", content)
    assert_all_or_nothing(before, outcome, records=len(records))  # every record, or none


# --- the dashboard's CSV downloads --------------------------------------------------------------------------------


def test_dashboard_csv_neutralises_formulas_in_user_text(client, lead, task):
    hostile = ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\uff1d1"]
    QualityScan.objects.create(
        task=task,
        state=JobState.SUCCEEDED,
        finished_at=timezone.now(),
        report={
            "totals": {"labels": {**dict.fromkeys(hostile, 2), "plain": 1, "": 1}},
            "annotators": [{"user": "@evil", "submitted": 3}, {"user": "-bob", "submitted": -1}],
        },
    )
    client.force_login(lead)
    response = client.get(reverse("annotate:dashboard_csv", args=[task.slug, "labels"]))
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == ["label", "examples"]
    # Sorted: PostgreSQL's jsonb does not keep the order of keys.
    assert sorted(table[1:]) == sorted([*(["'" + label, "2"] for label in hostile), ["plain", "1"], ["", "1"]])
    response = client.get(reverse("annotate:dashboard_csv", args=[task.slug, "annotators"]))
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table == [["user", "submitted"], ["'@evil", "3"], ["'-bob", "-1"]]  # numbers stay numbers


def test_the_command_refuses_what_is_not_a_readable_regular_file(task, tmp_path, monkeypatch):
    for source in (str(tmp_path), "/dev/zero"):  # a folder, a device (one that never ends): not regular files
        with pytest.raises(CommandError, match="No such file"):
            call_command("import_examples", task.slug, source, stdout=StringIO())
    path = tmp_path / "locked.jsonl"
    path.write_bytes(jsonl(GOOD))

    def unreadable(**kwargs):  # as open() fails on a file without read permission (the tests may run as root)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(importing, "examples_import", unreadable)
    with pytest.raises(CommandError, match=r"^Nothing was imported: cannot read .*locked.jsonl: Permission denied$"):
        call_command("import_examples", task.slug, str(path), "--format", "jsonl", stdout=StringIO())
    assert rows() == (0, 0, 0)
