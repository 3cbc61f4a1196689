"""Importing examples: the three formats, the three record shapes, every problem (named, and nothing imported)."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate import importing
from annotate.importing.mapping import Mapping
from annotate.models import Example, Revision, Transition
from annotate.services import prompt_hash
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db

SHAPES = [
    {"instruction": "What is 2+2?", "input": "in", "context": "ctx", "output": "4", "id": "a1", "kind": "edge"},
    {"prompt": "Say hi", "completion": "hi"},
    {
        "messages": [
            {"role": "system", "content": "Be kind"},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "How are you?"},
            {"role": "assistant", "content": "Fine."},
        ],
        "id": 7,
    },
]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def jsonl(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def run(task, path: Path, *args) -> str:
    out = StringIO()
    call_command("import_examples", task.slug, str(path), *args, stdout=out)
    return out.getvalue()


def rows() -> tuple[int, int, int]:
    return Example.objects.count(), Revision.objects.count(), Transition.objects.count()


@pytest.fixture
def existing(task):
    """One example already in the task (id "taken"), so "unchanged" is not just "empty"."""
    example = ExampleFactory(task=task, external_id="taken", completion="old")
    Revision.objects.create(example=example, text="old", reason=Revision.Reason.SAVE, example_version=1)
    Transition.objects.create(example=example, from_status="new", to_status="new")
    return example


def assert_shapes_imported(task, status="new") -> None:
    first = task.examples.get(external_id="a1")
    assert (first.instruction, first.context, first.input, first.completion, first.kind) == (
        "What is 2+2?",
        "ctx",
        "in",
        "4",
        "edge",
    )
    assert first.source == Example.Source.IMPORTED and first.status == status
    assert first.template == task.current_template
    assert first.prompt_hash == prompt_hash({"instruction": "What is 2+2?", "context": "ctx", "input": "in"})
    second = task.examples.get(instruction="Say hi")
    assert second.completion == "hi" and second.kind == "happy" and second.external_id == ""
    chat = task.examples.get(external_id="7")
    assert chat.instruction == "How are you?" and chat.completion == "Fine."
    assert chat.messages == [
        {"role": "system", "content": "Be kind"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!"},
    ]
    assert chat.prompt_hash == prompt_hash({"instruction": "How are you?"}, chat.messages)
    for example in (first, second, chat):
        revision = example.revisions.get()
        assert (revision.text, revision.reason, revision.example_version) == (example.completion, "import", 1)
        if status == "new":  # the status did not move: no transition (source and created_at say it was imported)
            assert not example.transitions.exists()
        else:
            transition = example.transitions.get()
            assert (transition.from_status, transition.to_status, transition.note) == ("new", status, "imported")


# --- happy paths ---------------------------------------------------------------------------------------------


def test_jsonl_with_all_three_shapes(task, tmp_path):
    out = run(task, write(tmp_path, "pairs.jsonl", jsonl(*SHAPES)))
    assert "Imported 3 examples into support (status new): 3 with completions" in out
    assert "Inserted 3 records (100% of the file)" in out and "problem" not in out  # a good file is read once
    assert_shapes_imported(task)


def test_json_array_with_all_three_shapes(task, tmp_path):
    out = run(task, write(tmp_path, "pairs.json", json.dumps(SHAPES, indent=2)))
    assert "Imported 3 examples into support (status new): 3 with completions" in out
    assert_shapes_imported(task)


def test_csv_with_all_three_shapes(task, tmp_path):
    messages = json.dumps(SHAPES[2]["messages"]).replace('"', '""')
    content = (
        "instruction,context,input,output,kind,id,prompt,completion,messages\n"
        "What is 2+2?,ctx,in,4,edge,a1,,,\n"
        ",,,,,,Say hi,hi,\n"
        f',,,,,7,,,"{messages}"\n'
    )
    out = run(task, write(tmp_path, "pairs.csv", content))
    assert "Imported 3 examples into support (status new): 3 with completions" in out
    assert_shapes_imported(task)


def test_csv_with_mapped_columns(task, tmp_path):
    path = write(tmp_path, "qa.csv", 'question,answer,type,notes\nWhere is it?,"Here,\nthere",negative,x\nWhy?,,,\n')
    keys = {"question": "instruction", "answer": "completion", "type": "kind", "notes": ""}
    mapping = Mapping(keys=keys, drop=frozenset({"notes"}))  # no field takes "notes": dropped as the lead allowed
    counts = importing.examples_import(task=task, path=path, file_format="csv", mapping=mapping)
    assert counts["records"] == 2 and counts["with_completion"] == 1
    first = task.examples.get(instruction="Where is it?")
    assert (first.completion, first.kind) == ("Here,\nthere", "negative")
    assert task.examples.get(instruction="Why?").revisions.count() == 0


@pytest.mark.parametrize("status", ["submitted", "approved"])
def test_status_submitted_or_approved(task, tmp_path, status):
    out = run(task, write(tmp_path, "pairs.jsonl", jsonl(*SHAPES)), "--status", status)
    assert f"Imported 3 examples into support (status {status}): 3 with completions" in out
    assert_shapes_imported(task, status=status)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom.jsonl", "\ufeff" + jsonl(*SHAPES).replace("\n", "\r\n")),
        ("bom.json", "\ufeff" + json.dumps(SHAPES, indent=2).replace("\n", "\r\n")),
    ],
)
def test_bom_and_crlf_are_accepted(task, tmp_path, name, content):
    out = run(task, write(tmp_path, name, content))
    assert "Imported 3 examples" in out
    assert_shapes_imported(task)


def test_csv_bom_and_crlf(task, tmp_path):
    content = '\ufeffinstruction,completion,kind\r\nFirst,"two\r\nlines",edge\r\nSecond,,\r\n'
    run(task, write(tmp_path, "crlf.csv", content))
    assert task.examples.get(instruction="First").completion == "two\nlines"
    assert task.examples.get(instruction="Second").kind == "happy"


def test_jsonl_is_split_on_newline_only(task, tmp_path):
    # U+2028, U+0085 and a form feed are line breaks to str.splitlines, but legal inside a JSON string.
    odd = "a\u2028b\u0085c\x0cd"
    content = '{"instruction": "' + odd.replace("\x0c", "\\f") + '", "completion": "' + odd[:5] + '"}\n'
    content += "\n" + jsonl({"prompt": "next"})  # a blank line is skipped
    assert "Imported 2 examples" in run(task, write(tmp_path, "odd.jsonl", content))
    assert task.examples.get(completion=odd[:5]).instruction == odd


def test_ignored_keys_are_reported_and_empty_values_are_absent(task, tmp_path):
    path = write(tmp_path, "x.jsonl", jsonl({"instruction": "a", "meta": {"x": 1}, "kind": None, "id": ""}))
    out = run(task, path, "--allow-unmapped", "meta")
    assert "Ignored keys (no matching field): meta" in out
    example = task.examples.get()
    assert example.kind == "happy" and example.external_id == ""


# --- problems: each names its place and field, and nothing is imported ----------------------------------------


def assert_refused(task, path: Path, *expected: str, args=()) -> str:
    before = rows()
    with pytest.raises(CommandError) as caught:
        run(task, path, *args)
    message = str(caught.value)
    assert message.startswith("Nothing was imported.")
    for text in expected:
        assert text in message
    assert rows() == before
    return message


GOOD = {"instruction": "Fine", "completion": "ok"}
BAD_UTF8 = "line 2: invalid UTF-8 at byte offset 12 of the line (29 of the file)"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (jsonl(GOOD) + '{"instruction": "x",}\n', 'line 2: invalid JSON: trailing comma is not allowed at column 20'),
        (jsonl(GOOD, GOOD) + jsonl({"context": "no instruction"}), 'line 3, field "instruction": missing'),
        (jsonl({"prompt": "", "completion": "no prompt"}), 'line 1, field "instruction": missing'),
        (jsonl({"instruction": 5}), 'line 1, field "instruction": expected a string, got a number'),
        (jsonl(GOOD, {"instruction": "x", "input": ["a"]}), 'line 2, field "input": expected a string, got an array'),
        (jsonl({"prompt": "x", "completion": True}), 'line 1, field "completion": expected a string, got true/false'),
        (jsonl({"instruction": "x", "id": 1.5}), 'line 1, field "id": expected a string or a whole number'),
        (jsonl(["instruction"]), "line 1: expected a JSON object {…}, got an array"),
        (jsonl(GOOD, {"instruction": "x", "kind": "weird"}), 'line 2, field "kind": unknown kind "weird"; use happy'),
        (
            jsonl({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]}),
            'line 1, field "messages[1].role": unknown role "tool"; use system, user or assistant',
        ),
        (
            jsonl({"messages": [{"role": "user", "content": 3}]}),
            'line 1, field "messages[0].content": expected a string, got a number',
        ),
        (
            jsonl({"messages": [{"role": "assistant", "content": "a"}]}),
            'line 1, field "messages": the last message before the assistant\'s answer must be the user\'s',
        ),
        (jsonl({"instruction": "a", "prompt": "b"}), 'line 1, field "prompt": gives the instruction again'),
        (jsonl({"instruction": "a\u0000b"}), 'line 1, field "instruction": contains a NUL character'),
        (b'{"instruction": "raw\x00nul"}\n', 'line 1, field "instruction": contains a NUL character'),
        (jsonl({"instruction": "x" * 100_001}), 'line 1, field "instruction": 100,001 characters, over the limit'),
        (
            jsonl({"messages": [{"role": "user", "content": "y" * 100_001}]}),
            'line 1, field "messages[0].content": 100,001 characters, over the limit of 100,000',
        ),
        (jsonl({"instruction": "x", "id": "i" * 201}), 'line 1, field "id": longer than 200 characters'),
        (
            jsonl({"instruction": "a", "id": "d1"}, GOOD, {"instruction": "b", "id": "d1"}),
            'line 3, field "id": "d1" repeats the id of line 1',
        ),
        (jsonl(GOOD, {"instruction": "b", "id": "taken"}), 'line 2, field "id": "taken" is already the id of an'),
        (b'{"prompt": "ok"}\n{"prompt": "\xe9"}\n', BAD_UTF8),
        (b"", "The file holds no records."),
    ],
    ids=[
        "invalid-json",
        "missing-instruction",
        "missing-prompt",
        "wrong-type-number",
        "wrong-type-array",
        "wrong-type-bool",
        "wrong-type-id",
        "not-an-object",
        "unknown-kind",
        "unknown-role",
        "message-content-type",
        "messages-without-user",
        "two-instructions",
        "nul-escaped",
        "nul-raw",
        "field-too-long",
        "message-too-long",
        "id-too-long",
        "duplicate-id-in-file",
        "duplicate-id-in-task",
        "invalid-utf8",
        "empty-file",
    ],
)  # fmt: skip
def test_jsonl_problem_is_named_and_nothing_is_imported(task, existing, tmp_path, content, expected):
    assert_refused(task, write(tmp_path, "bad.jsonl", content), expected)


def test_up_to_twenty_problems_are_listed_then_counted(task, existing, tmp_path):
    content = jsonl(*([GOOD] + [{"instruction": "x", "kind": f"k{i}"} for i in range(25)]))
    message = assert_refused(task, write(tmp_path, "many.jsonl", content), "line 2, field", "line 21, field")
    assert "line 22," not in message
    assert message.endswith("… and 5 more problems.")


def test_a_file_over_the_upload_limit_is_refused(task, existing, tmp_path, settings):
    settings.MAX_IMPORT_BYTES = 10
    path = write(tmp_path, "big.jsonl", jsonl(GOOD))
    assert_refused(task, path, "The file is 44 bytes, over the import limit of 10 bytes.")


def test_submitted_examples_need_a_completion(task, existing, tmp_path):
    path = write(tmp_path, "p.jsonl", jsonl(GOOD, {"prompt": "no answer"}))
    assert_refused(task, path, 'line 2, field "completion": missing, and an example submitted needs one',
                   args=("--status", "submitted"))  # fmt: skip


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("instruction,kind\nok,edge\nbad,weird\n", 'row 3, field "kind": unknown kind "weird"'),
        ("prompt,id\na,1\nb,2\nc,1\n", 'row 4, field "id": "1" repeats the id of row 2'),
        ("instruction,completion\n,orphan\n", 'row 2, field "instruction": missing'),
        ("instruction,input\nok,a\x00b\n", 'row 2, field "input": contains a NUL character'),
        ("instruction,messages\n,not json\n", 'row 2, field "messages": invalid JSON'),
        ("instruction,completion\na,b\nc,d,e\n", "file: not valid CSV: Expected 2 fields in line 3, saw 3"),
        (b"instruction,completion\na,b\nc,caf\xe9\n", "line 3: invalid UTF-8 at byte offset 5 of the line (32 of"),
    ],
    ids=["unknown-kind", "duplicate-id", "missing-instruction", "nul", "bad-messages", "malformed", "invalid-utf8"],
)
def test_csv_problem_names_the_row_and_nothing_is_imported(task, existing, tmp_path, content, expected):
    assert_refused(task, write(tmp_path, "bad.csv", content), expected)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[\n  {"instruction": "a"},\n  {"instruction": "b",}\n]', "line 3: invalid JSON: Expecting property name"),
        ('[\n  {"instruction": "a"},\n  {"instruction": "b", "kind": 1}\n]', 'record 2 (line 3), field "kind"'),
        ('{"instruction": "a"}', None),  # a lone object is one JSONL record: accepted
        ('[{"instruction": "a"}', "the file ends before the array is closed"),
        ('[{"instruction": "a"}] x', "there is text after the closing ]"),
        ('"text"', "a JSON file must hold one array of records"),
        (b'[{"instruction": "\xff"}]', "line 1: invalid UTF-8 at byte offset 18 of the line"),
    ],
    ids=["syntax", "bad-record", "object", "unclosed", "trailing", "not-array", "invalid-utf8"],
)
def test_json_array_problem_names_the_line_and_nothing_is_imported(task, existing, tmp_path, content, expected):
    path = write(tmp_path, "bad.json", content)
    if expected is None:
        assert "Imported 1 examples" in run(task, path)
    else:
        assert_refused(task, path, expected)


def test_unknown_task_and_missing_file(task, tmp_path):
    with pytest.raises(CommandError, match="No task with slug 'nope'"):
        call_command("import_examples", "nope", str(tmp_path / "x.jsonl"))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_examples", task.slug, str(tmp_path / "missing.jsonl"))


# --- the parts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.jsonl", "[]", "jsonl"),
        ("a.ndjson", "{}", "jsonl"),
        ("a.csv", "{}", "csv"),
        ("a.json", "\ufeff  [", "json"),
        ("a.json", '{"a": 1}', "jsonl"),
        ("upload", "[{}]", "json"),
        ("upload", "{}\n{}", "jsonl"),
        ("upload", "a,b\n", "csv"),
    ],
)
def test_detect_format(tmp_path, name, content, expected):
    path = write(tmp_path, "file", content)
    assert importing.detect_format(path=path, filename=name) == expected


def test_default_mapping_matches_names_and_aliases():
    mapping = importing.default_mapping(["Prompt", "instruction", "output", "ID", "notes", " kind "])
    assert mapping == {"Prompt": "instruction", "instruction": "instruction", "output": "completion",
                       "ID": "external_id", "notes": "", " kind ": "kind"}  # fmt: skip


def test_source_keys_and_preview(task, tmp_path):
    path = write(tmp_path, "p.jsonl", jsonl(*SHAPES, *({"question": f"q{i}"} for i in range(12))))
    assert importing.source_keys(path=path, file_format="jsonl") == [
        "instruction", "input", "context", "output", "id", "kind", "prompt", "completion", "messages", "question",
    ]  # fmt: skip
    rows_ = importing.preview(path=path, file_format="jsonl", mapping={"question": "instruction"})
    assert len(rows_) == importing.PREVIEW_RECORDS
    assert rows_[0]["record"].completion == "4" and rows_[2]["record"].instruction == "How are you?"
    assert rows_[3]["record"].instruction == "q0" and rows_[3]["where"] == "line 4"
    unmapped = importing.preview(path=path, file_format="jsonl", mapping={})
    assert unmapped[3]["problems"] == [
        'field "instruction": missing: give an instruction (or a prompt, or chat messages)'
    ]


def test_locate_bad_utf8_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(importing.limits, "READ_CHUNK", 4)
    path = write(tmp_path, "x", "ab\ncdé\n".encode() + b"x\xc3")  # "é" split across chunks; a cut at the end
    assert importing.locate_bad_utf8(path) == (3, 1, 9)
    assert importing.locate_bad_utf8(write(tmp_path, "y", "ab\ncdé\n".encode())) is None


def test_large_json_array_streams_in_small_chunks(task, tmp_path, monkeypatch):
    monkeypatch.setattr(importing.limits, "READ_CHUNK", 16)  # every record crosses chunks
    records = [{"instruction": f"Question {i} ü", "completion": "x" * (i % 40), "id": i} for i in range(300)]
    counts = importing.examples_import(
        task=task, path=write(tmp_path, "a.json", json.dumps(records)), file_format="json"
    )
    assert counts["records"] == 300 and task.examples.count() == 300
    assert task.examples.get(external_id="299").instruction == "Question 299 ü"


def test_batches_and_duplicate_checks_span_batch_boundaries(task, tmp_path, monkeypatch):
    monkeypatch.setattr(importing.limits, "BATCH_SIZE", 7)
    records = [{"instruction": f"q{i}", "id": f"i{i}"} for i in range(30)]
    importing.examples_import(task=task, path=write(tmp_path, "a.jsonl", jsonl(*records)), file_format="jsonl")
    assert task.examples.count() == 30 and not Transition.objects.exists()  # imported as new: nothing moved
    again = write(tmp_path, "b.jsonl", jsonl(*records[:3], {"instruction": "late", "id": "i1"}))
    task.examples.all().delete()
    with pytest.raises(importing.ImportFailed, match='line 4, field "id": "i1" repeats the id of line 2'):
        importing.examples_import(task=task, path=again, file_format="jsonl")


@pytest.mark.parametrize(
    "text", ["", "plain", "a\\b", "tab\there", "two\nlines\r\n", "\\n is not a newline", "\t\\\r\n" * 3, "ü\n€"]
)
def test_copy_escaping_matches_the_reference_translation(text):
    reference = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})  # PostgreSQL's COPY text
    assert importing._escaped(text) == text.translate(reference)


def test_generated_uuids_are_random_version_4_uuids():
    import uuid

    made = importing._uuid4s(2000)
    parsed = [uuid.UUID(value) for value in made]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == v for u, v in zip(parsed, made, strict=True))
    assert len(set(made)) == 2000 and {v[19] for v in made} == set("89ab")  # every variant digit occurs


@pytest.mark.postgres
def test_the_copy_loader_restores_the_thread_switch_interval(task, tmp_path):
    import sys

    from django.db import connection

    from tests.conftest import require_service

    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "the COPY loader runs on PostgreSQL only (set DATABASE_URL)")
    before = sys.getswitchinterval()
    importing.examples_import(task=task, path=write(tmp_path, "ok.jsonl", jsonl(GOOD)), file_format="jsonl")
    with pytest.raises(importing.ImportFailed):
        bad = write(tmp_path, "bad.jsonl", jsonl(GOOD, {"instruction": "x", "kind": "weird"}))
        importing.examples_import(task=task, path=bad, file_format="jsonl")
    assert sys.getswitchinterval() == before and task.examples.count() == 1


def test_overlapping_imports_share_the_short_switch_interval_and_the_last_one_restores_it():
    import sys

    before = sys.getswitchinterval()
    with importing._short_switch_interval(0.0005):
        with importing._short_switch_interval(0.0005):  # a second import in another thread of the process
            assert sys.getswitchinterval() == 0.0005
        assert sys.getswitchinterval() == 0.0005  # the first is still running
    assert sys.getswitchinterval() == before
    with pytest.raises(RuntimeError), importing._short_switch_interval(0.0005):
        raise RuntimeError("the import failed")
    assert sys.getswitchinterval() == before


# --- the job's side ------------------------------------------------------------------------------------------


def import_job(task, path: Path):
    from annotate.models import ImportJob

    return ImportJob.objects.create(
        task=task, filename=path.name, path=str(path), file_format="jsonl", size=path.stat().st_size
    )


def test_a_failing_job_records_its_problems_and_deletes_its_upload(task, existing, tmp_path):
    path = write(tmp_path, "bad.jsonl", jsonl(GOOD, {"instruction": "x", "kind": "weird"}))
    job = import_job(task, path)
    before = rows()
    importing.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "failed" and job.error.startswith('line 2, field "kind": unknown kind "weird"')
    assert rows() == before and not path.exists()


def test_a_job_cancelled_while_it_inserts_rolls_everything_back(task, existing, tmp_path, monkeypatch):
    path = write(tmp_path, "many.jsonl", jsonl(*({"prompt": f"p{i}", "completion": "c"} for i in range(30))))
    job = import_job(task, path)
    monkeypatch.setattr(importing.limits, "BATCH_SIZE", 5)
    monkeypatch.setattr(importing.limits, "PROGRESS_SECONDS", 0)
    heartbeat = importing.jobs.job_heartbeat
    inserted_before_cancel = []

    def cancelled_by_someone_else(job, **kwargs):
        if Example.objects.count() > before[0]:  # some batches in: the row says cancelled (another connection)
            inserted_before_cancel.append(Example.objects.count() - before[0])
            return False
        return heartbeat(job, **kwargs)

    before = rows()
    monkeypatch.setattr(importing.jobs, "job_heartbeat", cancelled_by_someone_else)
    importing.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert inserted_before_cancel[0] == 5  # one batch was in the transaction...
    assert rows() == before  # ...and rolled back
    assert job.state != "succeeded" and not path.exists()


def test_a_job_cancelled_while_it_lists_the_problems_stops(task, tmp_path, monkeypatch):
    from pairsmith.jobs import job_cancel

    records = [*({"prompt": f"p{i}"} for i in range(2999)), {"prompt": "last", "kind": "weird"}]
    path = write(tmp_path, "many.jsonl", jsonl(*records))
    job = import_job(task, path)
    monkeypatch.setattr(importing.limits, "PROGRESS_SECONDS", 0)
    monkeypatch.setattr(importing.limits, "BATCH_SIZE", 1000)
    heartbeat = importing.jobs.job_heartbeat
    notices = []

    def cancel_when_listing(job, **kwargs):
        # The import met line 3,000, rolled back, and reads the file again to name every problem, outside its
        # transaction: the row says so, and a cancel then stops it.
        notices.append(kwargs.get("notice"))
        if kwargs.get("notice"):
            job_cancel(job)
        return heartbeat(job, **kwargs)

    monkeypatch.setattr(importing.jobs, "job_heartbeat", cancel_when_listing)
    importing.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert notices[-1] == importing.LISTING_PROBLEMS and "" in notices  # inserting first, then listing
    assert job.state == "cancelled" and Example.objects.count() == 0 and not path.exists()


def test_an_unexpected_error_fails_the_job_without_a_trace_for_the_user(task, tmp_path, monkeypatch):
    path = write(tmp_path, "ok.jsonl", jsonl(GOOD))
    job = import_job(task, path)
    monkeypatch.setattr(importing.loading, "audit_record", lambda **kwargs: 1 / 0)  # inside the import's transaction
    importing.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "failed" and job.error == (
        "The import stopped on an unexpected error (ZeroDivisionError); nothing was imported."
    )
    assert Example.objects.count() == 0


def test_a_finished_job_is_not_run_again(task, tmp_path):
    path = write(tmp_path, "ok.jsonl", jsonl(GOOD))
    job = import_job(task, path)
    importing.import_run(job_id=job.pk)
    importing.import_run(job_id=job.pk)  # a duplicate message: nothing to claim
    assert Example.objects.count() == 1


def test_a_line_over_the_record_limit_is_named_and_the_next_lines_still_read(task, tmp_path, monkeypatch):
    monkeypatch.setattr(importing.limits, "MAX_RECORD_BYTES", 64)
    monkeypatch.setattr(importing.limits, "READ_CHUNK", 16)
    content = jsonl(GOOD, {"instruction": "y" * 200}, {"instruction": "z", "kind": "odd"})
    with pytest.raises(importing.ImportFailed) as caught:
        importing.examples_import(task=task, path=write(tmp_path, "long.jsonl", content), file_format="jsonl")
    assert caught.value.messages == [
        "line 2: longer than 64 bytes, the limit of one record",
        'line 3, field "kind": unknown kind "odd"; use happy, edge, negative or ambiguous',
    ]
    assert Example.objects.count() == 0


def test_an_import_stores_each_examples_warnings_and_is_in_the_audit_log(task, lead, tmp_path):
    from annotate.models import AuditEvent

    leaked = "Hold the round button for ten seconds until the ring turns blue and the thermostat restarts"
    records = [
        {"instruction": "How do I reset it?", "input": leaked, "completion": leaked, "id": "a"},  # answer in the prompt
        {
            "instruction": "How do I pair it?",
            "completion": "Open the app, then tap Add device and follow it.",
            "id": "b",
        },
        {"instruction": "What does amber mean?", "id": "c"},  # not written yet: "empty" is no warning for it
    ]
    path = write(tmp_path, "warned.jsonl", jsonl(*records))
    importing.examples_import(task=task, path=path, file_format="jsonl", actor=lead, filename="support.jsonl")
    stored = {e.external_id: e for e in Example.objects.filter(task=task)}
    assert "leak" in [w["code"] for w in stored["a"].warnings] and ",leak," in stored["a"].warning_codes
    assert stored["a"].risk > 0
    assert stored["b"].warnings == [] and stored["b"].risk == 0
    assert stored["c"].warnings == [] and stored["c"].warning_codes == ""
    event = AuditEvent.objects.get(task=task, action="import")
    assert (event.actor, event.target, event.detail["records"]) == (lead, "support.jsonl", 3)
