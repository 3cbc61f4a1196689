"""A lead's JSON Schema cannot make the server fetch anything, hang, recurse past its stack, or do unbounded work.

Some tests run a check under `deadline`: a generous time bound that is only a guard, so that a regression fails
instead of hanging the suite (Python's `re` checks for signals while it backtracks; so does any Python loop). What
they assert is the check's result.
"""

import contextlib
import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import referencing.exceptions
from django.core.exceptions import ValidationError
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate import schemas
from annotate.models import Task
from annotate.quality import TaskRules, check_example
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db
EVIL = "^([a-z0-9]+)+$"  # nested repeats: exponential backtracking in Python's re
CANARY = "canary-7f3a9"


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail with TimeoutError when the block runs longer than `seconds` (a guard, see the module docstring)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def http_server():
    """A web server on a free loopback port that records every request; it serves a schema holding CANARY."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"const": CANARY}).encode())

        do_POST = do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", requests
    server.shutdown()
    server.server_close()


def rules(schema) -> TaskRules:
    return TaskRules(output_format="json", json_schema=schema)


def findings(schema, completion) -> list[str]:
    return [f.message for f in check_example(rules(schema), instruction="Extract.", completion=completion)]


def settings_post(task, schema_text: str) -> dict:
    return {
        "name": task.name,
        "output_format": "json",
        "json_schema": schema_text,
        "approvals_required": "1",
        "validation_ratio": "0.1",
        "split_seed": "s",
    }


@pytest.fixture
def json_task(task):
    task.output_format = "json"
    task.save()
    return task


def save_settings(client, lead, task, schema):
    client.force_login(lead)
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return client.post(reverse("annotate:task_edit", args=[task.slug]), settings_post(task, text))


# --- references: nothing is fetched ----------------------------------------------------------------------------


def test_a_ref_to_a_url_is_refused_on_the_settings_page_and_never_fetched(client, lead, json_task, http_server):
    base, requests = http_server
    url = f"{base}/person.json"
    response = save_settings(client, lead, json_task, {"type": "object", "properties": {"a": {"$ref": url}}})
    assert response.status_code == 200
    assertContains(response, f"The schema refers to “{url}” (at /properties/a/$ref)")
    assertContains(response, "only references inside the schema")
    assert Task.objects.get(pk=json_task.pk).json_schema is None
    assert requests == []


@pytest.mark.parametrize("keyword", ["$ref", "$dynamicRef"])
@pytest.mark.parametrize("ref", ["file:///etc/hostname", "person.json", "//127.0.0.1:9/x", "urn:x:y"])
def test_every_reference_not_starting_with_a_hash_is_refused_by_task_clean(keyword, ref):
    task = Task(slug="j", name="J", output_format="json", json_schema={"items": {keyword: ref}})
    with pytest.raises(ValidationError) as refused:
        task.clean()
    assert refused.value.message_dict["json_schema"] == [
        f"The schema refers to “{ref}” (at /items/{keyword}): only references inside the schema (starting with #, "
        "like #/$defs/name) are allowed; nothing is fetched."
    ]


def test_an_old_rows_remote_refs_are_never_fetched_nor_shown(client, annotator, json_task, http_server, tmp_path):
    """A schema saved before the check (written to the row directly): the feedback neither fetches the URL nor
    reads the file, so nothing of theirs reaches the annotator."""
    base, requests = http_server
    local = tmp_path / "secret.json"
    local.write_text(json.dumps({"const": CANARY}))
    example = ExampleFactory(task=json_task, author=annotator, status="draft")
    client.force_login(annotator)
    for ref in (f"{base}/schema.json", local.as_uri()):
        Task.objects.filter(pk=json_task.pk).update(json_schema={"$ref": ref})
        response = client.post(
            reverse("annotate:feedback", args=[json_task.slug, example.uuid]), {"completion": '"anything"'}
        )
        assert response.status_code == 200
        assertNotContains(response, CANARY)
    assert requests == []


def test_the_registry_refuses_to_retrieve_anything(http_server):
    base, requests = http_server
    for uri in (f"{base}/schema.json", "file:///etc/hostname"):
        with pytest.raises(referencing.exceptions.NoSuchResource):
            schemas.REGISTRY.get_or_retrieve(uri)
    assert requests == []


def test_a_schema_with_a_remote_id_resolves_its_own_refs_without_fetching(http_server):
    base, requests = http_server
    schema = {"$id": f"{base}/root.json", "$defs": {"n": {"type": "integer"}}, "items": {"$ref": "#/$defs/n"}}
    assert findings(schema, "[1, 2]") == []
    [missing] = findings({"$id": f"{base}/root.json", "$ref": "#/$defs/missing"}, "1")
    assert "could not be checked against the task's schema" in missing and "/$defs/missing" in missing
    assert requests == []


def test_local_refs_anchors_and_recursion_still_work():
    schema = {
        "$defs": {
            "name": {"type": "string", "minLength": 1},
            "node": {"$anchor": "node", "type": "object", "properties": {"kids": {"items": {"$ref": "#node"}}}},
        },
        "type": "object",
        "properties": {"name": {"$ref": "#/$defs/name"}, "tree": {"$ref": "#/$defs/node"}},
    }
    assert findings(schema, '{"name": "Anna", "tree": {"kids": [{"kids": [{}]}]}}') == []
    [bad_name] = findings(schema, '{"name": ""}')
    assert "at $.name: '' should be non-empty" in bad_name
    [bad_kid] = findings(schema, '{"tree": {"kids": [{"kids": [5]}]}}')
    assert "at $.tree.kids[0].kids[0]: 5 is not of type 'object'" in bad_kid


def test_a_ref_cycle_is_a_finding_not_a_server_error():
    [stuck] = findings({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "1")
    assert stuck == (
        "The completion could not be checked against the task's schema: the schema's references ($ref) nest deeper "
        "than the check can follow."
    )


# --- patterns: RE2, linear time --------------------------------------------------------------------------------


def test_a_catastrophic_pattern_answers_at_once_with_the_right_result():
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": EVIL}}}
    with deadline(10):
        assert findings(schema, json.dumps({"code": "a" * 54})) == []
        [mismatch] = findings(schema, json.dumps({"code": "a" * 53 + "!"}))
    assert f"at $.code: '{'a' * 53}!' does not match '{EVIL}'" in mismatch


def test_pattern_properties_and_the_properties_they_leave_use_re2_too():
    schema = {"patternProperties": {EVIL: {"type": "integer"}}, "additionalProperties": False}
    key = "a" * 53 + "!"
    with deadline(10):
        assert findings(schema, json.dumps({"a" * 54: 1})) == []
        [extra] = findings(schema, json.dumps({key: 1}))
        assert f"'{key}' does not match any of the regexes: '{EVIL}'" in extra
        unevaluated = {"patternProperties": {EVIL: {}}, "unevaluatedProperties": False}
        [left] = findings(unevaluated, json.dumps({"ok": 1, key: 2}))
        assert f"Unevaluated properties are not allowed ('{key}' was unexpected)" in left


def test_a_ref_to_the_root_does_not_escape_to_a_stock_validator():
    """jsonschema picks its stock class for a schema naming a dialect in `$schema`: through a `$ref` to the root the
    child would run on Python's re. The root's `$schema` is read and dropped instead."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": ["object", "string"],
        "pattern": EVIL,
        "properties": {"child": {"$ref": "#"}},
    }
    with deadline(10):
        [mismatch] = findings(schema, json.dumps({"child": "a" * 53 + "!"}))
    assert "at $.child:" in mismatch and "does not match" in mismatch


def test_a_nested_dollar_schema_is_refused():
    nested = {"properties": {"a": {"$schema": "http://json-schema.org/draft-07/schema#", "pattern": EVIL}}}
    assert schemas.schema_problems(nested) == [
        "“$schema” is allowed only at the top of the schema (found at /properties/a/$schema)."
    ]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("^(?=a)b", "invalid perl operator: (?="), (r"(a)\1", r"invalid escape sequence: \1"), ("a(", "missing )")],
)
def test_a_pattern_re2_cannot_run_is_refused_naming_it(client, lead, json_task, pattern, reason):
    schema = {"properties": {"code": {"pattern": pattern}}, "patternProperties": {"^x_": {}}}
    response = save_settings(client, lead, json_task, schema)
    assert response.status_code == 200
    assertContains(
        response,
        f"The pattern “{pattern}” (at /properties/code/pattern) cannot be used: {reason}",
    )
    assert Task.objects.get(pk=json_task.pk).json_schema is None


def test_patterns_python_would_refuse_but_re2_runs_are_accepted():
    schema = {"type": "string", "pattern": r"^\p{Lu}\p{Ll}+$"}
    assert schemas.schema_problems(schema) == []
    assert findings(schema, '"Zoë"') == []
    assert len(findings(schema, '"zoë"')) == 1


# --- uniqueItems: linear -------------------------------------------------------------------------------------


def big_array(n: int = 2_300) -> list[dict]:
    return [{"id": i, "name": f"c{i}", "ok": i % 2 == 0} for i in range(n)]


def test_unique_items_on_98_kb_of_objects_is_right_and_fast():
    items = big_array()
    text = json.dumps(items)
    assert 95_000 < len(text) < 100_000
    schema = {"type": "array", "uniqueItems": True}
    with deadline(10):  # jsonschema alone: about a minute
        assert findings(schema, text) == []
        # the same object, keys in another order and 17 written as 17.0
        duplicate = {"ok": False, "name": "c17", "id": 17.0}
        [found] = findings(schema, json.dumps([*items[:-1], duplicate]))
    assert "at the top level:" in found and found.endswith(
        f"has non-unique elements (item {len(items) - 1} repeats item 17)."
    )


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([1, 1.0], False),
        ([1, True], True),
        ([0, False], True),
        (["1", 1], True),
        ([None, False], True),
        ([[1], [True]], True),
        ([[1, 2], [1.0, 2]], False),
        ([{"a": 1, "b": [2]}, {"b": [2.0], "a": 1}], False),
        ([{"a": 1}, {"a": 1, "b": None}], True),
        ([{"a": [1, {"b": True}]}, {"a": [1, {"b": 1}]}], True),
        ([1.5, 1.5], False),
    ],
)
def test_unique_items_follows_json_schema_equality(items, unique):
    assert (findings({"uniqueItems": True}, json.dumps(items)) == []) is unique


# --- limits: the schema ----------------------------------------------------------------------------------------


def nested(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def nested_text(depth: int) -> str:
    """nested(depth) as JSON text, built as text: Python's json cannot write 1,500 levels."""
    return '{"type": "object", "properties": {"a": ' * depth + '{"type": "string"}' + "}}" * depth


@pytest.mark.parametrize("depth", [40, 150, 1_500])
def test_a_deep_schema_is_a_form_error_on_the_settings_page(client, lead, json_task, depth):
    """150 levels made the metaschema check recurse past Python's limit, 1,500 the JSON parser: both were a 500."""
    response = save_settings(client, lead, json_task, nested_text(depth))
    assert response.status_code == 200
    assertContains(response, "The JSON Schema is nested more than 64 levels deep (the limit).")
    assert Task.objects.get(pk=json_task.pk).json_schema is None


def test_a_schema_within_the_depth_limit_is_saved(client, lead, json_task):
    response = save_settings(client, lead, json_task, nested(31))  # 63 levels of arrays and objects
    assert response.status_code == 302
    assert Task.objects.get(pk=json_task.pk).json_schema == nested(31)


def test_the_schema_size_limit_names_the_limit(client, lead, json_task, settings):
    settings.JSON_SCHEMA_MAX_BYTES = 1_000
    schema = {"enum": [f"value {i}" for i in range(200)]}
    size = len(json.dumps(schema, separators=(",", ":")))
    response = save_settings(client, lead, json_task, schema)
    assertContains(response, f"The JSON Schema is {size:,} bytes; the limit is 1,000 bytes.")
    assert Task.objects.get(pk=json_task.pk).json_schema is None


def test_the_subschema_limit_names_the_limit(client, lead, json_task):
    response = save_settings(client, lead, json_task, {"anyOf": [{}] * 1_000})
    assertContains(response, "The JSON Schema has 1,001 subschemas (objects, true and false); the limit is 1,000.")
    assert Task.objects.get(pk=json_task.pk).json_schema is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"maximum": NaN}', "Not valid JSON: NaN or Infinity at line 1, column 13."),
        ('{"maximum": 1' + "0" * 400 + "}", "Not valid JSON: a number too large to read (beyond ±1.8e308)"),
        ('{"maximum": 1' + "0" * 5_000 + "}", "Not valid JSON: a number longer than 4,300 digits (the limit)"),
    ],
)
def test_numbers_a_json_column_cannot_hold_are_form_errors(client, lead, json_task, text, message):
    response = save_settings(client, lead, json_task, text)
    assert response.status_code == 200
    assertContains(response, message)
    assert Task.objects.get(pk=json_task.pk).json_schema is None


def test_an_invalid_schema_still_gets_the_metaschema_message(client, lead, json_task):
    response = save_settings(client, lead, json_task, {"type": "nonsense"})
    assertContains(
        response, "Not a valid JSON Schema: &#x27;nonsense&#x27; is not valid under any of the given schemas"
    )


# --- limits: the checked document and the work -----------------------------------------------------------------


def test_exponential_local_refs_stop_at_the_step_limit():
    defs = {f"a{i}": {"anyOf": [{"$ref": f"#/$defs/a{i + 1}"}, {"$ref": f"#/$defs/a{i + 1}"}]} for i in range(40)}
    defs["a40"] = {"type": "string"}
    schema = {"$defs": defs, "$ref": "#/$defs/a0"}
    with deadline(30):  # 2**40 paths without the limit
        [stopped] = findings(schema, "1")
    assert schemas.schema_problems(schema) == []  # a schema a lead may save
    assert stopped == (
        "The completion could not be checked against the task's schema: the check stopped after 200,000 steps "
        "(the limit): the schema asks too much work of this completion."
    )
    assert findings(schema, '"text"') == []  # the first path matches: few steps


def test_the_step_limit_counts_deterministically(settings):
    """A step per keyword applied, plus one per entry of its value: `type` 1, `items` 2, then `type` 1 per item."""
    schema = {"type": "array", "items": {"type": "integer"}}
    settings.JSON_SCHEMA_MAX_STEPS = 1 + 2 + 50
    assert findings(schema, json.dumps(list(range(50)))) == []
    [stopped] = findings(schema, json.dumps(list(range(51))))
    assert "the check stopped after 53 steps (the limit)" in stopped


def test_errors_are_counted_up_to_the_limit():
    schema = {"properties": {"a": {"type": "integer"}, "b": {"items": {"type": "integer"}}}}
    [few] = findings(schema, json.dumps({"a": "x", "b": ["y", 3]}))  # the shallower error is the more relevant
    assert few == "The JSON does not match the task's schema at $.a: 'x' is not of type 'integer' (1 more problem)."
    [many] = findings(schema, json.dumps({"b": ["y"] * 500}))
    assert many.endswith("(at least 100 more problems).")


def test_a_document_over_the_size_limit_is_named(settings):
    settings.JSON_DOCUMENT_MAX_CHARS = 1_000
    assert findings({"type": "array"}, json.dumps(list(range(200)))) == []  # 890 characters
    [too_long] = findings({"type": "array"}, json.dumps(list(range(400))))
    assert too_long == "The completion is 1,890 characters; the schema check reads at most 1,000 (the limit)."


def test_a_document_deeper_than_the_limit_is_named():
    schema = {"$defs": {"t": {"type": "array", "items": {"$ref": "#/$defs/t"}}}, "$ref": "#/$defs/t"}
    assert findings(schema, "[" * 64 + "]" * 64) == []
    assert findings(schema, "[" * 65 + "]" * 65) == ["The completion is nested more than 64 levels deep (the limit)."]
    # without a schema only the parser's own limit applies
    assert findings(None, "[" * 65 + "]" * 65) == []


def test_long_values_are_shortened_in_messages():
    [message] = findings({"type": "object"}, json.dumps(["x" * 5_000]))
    assert len(message) < 300 and "…" in message and message.endswith("is not of type 'object'.")


def test_a_ref_into_data_that_is_no_schema_is_a_finding():
    [odd] = findings({"$ref": "#/enum/0", "enum": [{"properties": 5}]}, "{}")
    assert odd.endswith(
        "could not be checked against the task's schema: the schema cannot be applied (AttributeError)."
    )
