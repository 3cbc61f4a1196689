"""A task's JSON Schema: the one place that parses, checks, compiles and runs it, with bounded work.

The `jsonschema` library (Draft 2020-12) does the validating, extended so that what a lead types cannot make a
request fetch anything, hang, or grow faster than linearly:

- Nothing is fetched: a `$ref`/`$dynamicRef` that does not start with "#" is refused when the lead saves the schema,
  and the validators resolve references in a registry whose `retrieve` refuses every URI (jsonschema's default one
  GETs http(s) and file URLs).
- `pattern`, `patternProperties` (and the property matching of `additionalProperties` and
  `unevaluatedProperties`) run on RE2, whose matching time is linear in the text; a pattern RE2 cannot compile
  (lookaround, backreferences) is refused when the lead saves the schema.
- `uniqueItems` hashes a canonical form of each item (jsonschema compares every pair of unhashable items).
- `$schema` is allowed only at the top, where it is dropped (the schema is read as Draft 2020-12): jsonschema switches
  to its stock validator class for a (sub)schema naming a dialect, which would run without these changes.
- Limits, each a setting with the default below (README, Configuration): the schema's size, depth and subschemas
  (checked when the lead saves it), the checked document's size and depth, the steps one check may take (a step is
  one keyword applied to one value; a few local `$ref`s can otherwise make the work exponential) and the errors
  collected.

The keywords themselves (RE2, uniqueItems, the step meter) are in annotate/schema_keywords.py.
"""

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from typing import Any

import orjson
import re2
import referencing
import referencing.exceptions
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, UnknownType, best_match

from .schema_keywords import StepLimit, Validator, regex, steps_allowed

logger = logging.getLogger(__name__)

# Defaults of the settings of the same names.
JSON_SCHEMA_MAX_BYTES = 64 * 1024  # the schema as stored (compact JSON, UTF-8)
JSON_SCHEMA_MAX_DEPTH = 64  # nesting of arrays and objects; jsonschema recurses about 8 frames a level
# Objects, true and false in the schema: each may be a subschema, which the metaschema check reads in about 0.8 ms
# (its $dynamicRef resolution is slow), so 1,000 take about a second, and 20,000 empty ones would fit in 64 KiB.
JSON_SCHEMA_MAX_SUBSCHEMAS = 1_000
JSON_DOCUMENT_MAX_CHARS = 100_000  # a completion checked against the schema (the longest one an editor saves)
JSON_DOCUMENT_MAX_DEPTH = 64
JSON_SCHEMA_MAX_STEPS = 200_000  # a step takes 1 to 6 µs: at most about a second
JSON_SCHEMA_MAX_ERRORS = 100  # counted for "(N more problems)"; the message shows the most relevant one
_DEFAULTS = {
    "JSON_SCHEMA_MAX_BYTES": JSON_SCHEMA_MAX_BYTES,
    "JSON_SCHEMA_MAX_DEPTH": JSON_SCHEMA_MAX_DEPTH,
    "JSON_SCHEMA_MAX_SUBSCHEMAS": JSON_SCHEMA_MAX_SUBSCHEMAS,
    "JSON_DOCUMENT_MAX_CHARS": JSON_DOCUMENT_MAX_CHARS,
    "JSON_DOCUMENT_MAX_DEPTH": JSON_DOCUMENT_MAX_DEPTH,
    "JSON_SCHEMA_MAX_STEPS": JSON_SCHEMA_MAX_STEPS,
    "JSON_SCHEMA_MAX_ERRORS": JSON_SCHEMA_MAX_ERRORS,
}
# Python refuses to read an integer longer than this (sys.int_info.default_max_str_digits): the JSON fallback parser
# raises a bare ValueError past it, so the number is measured and named instead.
MAX_NUMBER_DIGITS = 4_300
# orjson stops at this depth (and every JSON value orjson reads is a JSON value Python's json reads, but deeper).
PARSER_MAX_DEPTH = 1_024
# Messages quote at most this much of a value, a pattern or a path.
_SHOWN_CHARS = 200
# How many problems of one schema a save lists.
_MAX_LISTED = 5


def limit(name: str) -> int:
    """The limit `name` (a key of _DEFAULTS): the Django setting when there is one, else the default."""
    from django.conf import settings

    return int(getattr(settings, name, _DEFAULTS[name]) if settings.configured else _DEFAULTS[name])


def _short(text: str, size: int = _SHOWN_CHARS) -> str:
    """`text` cut in its middle to `size` characters: messages start and end with what matters."""
    if len(text) <= size:
        return text
    half = (size - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


# --- parsing ---------------------------------------------------------------------------------------------------


class JSONProblem(ValueError):
    """Why a text is not usable JSON. `reason` completes "Not valid JSON: …" (or "… is " for kind "deep")."""

    def __init__(self, kind: str, reason: str, **detail: Any) -> None:
        super().__init__(reason)
        self.kind = kind  # "syntax", "number" (too long or too large), "deep"
        self.reason = reason
        self.detail = detail


_NUMBER = re.compile(r"-?([0-9]+)(\.[0-9]+)?([eE][+-]?[0-9]+)?")  # no nested repeats: linear


def _depth_over(value: Any, max_depth: int) -> bool:
    """Whether arrays and objects nest more than `max_depth` levels in `value` (iterative: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(text: str, *, max_depth: int | None = None) -> Any:
    """The JSON value of `text`. Raise JSONProblem naming what is wrong and where: a syntax error, NaN or Infinity,
    a number longer than MAX_NUMBER_DIGITS or too large for a double, arrays and objects nested more than
    `max_depth` levels (at most PARSER_MAX_DEPTH)."""
    depth = min(max_depth or PARSER_MAX_DEPTH, PARSER_MAX_DEPTH)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _explain(text, exc, depth) from None
    if depth < PARSER_MAX_DEPTH and _depth_over(value, depth):
        raise JSONProblem("deep", f"nested more than {depth:,} levels deep (the limit)", limit=depth)
    return value


def _explain(text: str, exc: orjson.JSONDecodeError, depth: int) -> JSONProblem:
    where = {"line": exc.lineno, "column": exc.colno}
    at = f"at line {exc.lineno}, column {exc.colno}"
    if exc.msg.startswith("depth limit exceeded"):
        return JSONProblem("deep", f"nested more than {depth:,} levels deep (the limit)", limit=depth)
    if exc.msg.startswith("number is infinity"):
        number = _NUMBER.match(text, exc.pos)
        digits = len(number.group(1)) if number else 0
        if digits > MAX_NUMBER_DIGITS and number and not number.group(2) and not number.group(3):
            return JSONProblem(
                "number",
                f"a number longer than {MAX_NUMBER_DIGITS:,} digits (the limit) {at}",
                digits=digits,
                limit=MAX_NUMBER_DIGITS,
                **where,
            )
        return JSONProblem("number", f"a number too large to read (beyond ±1.8e308) {at}", **where)
    if text.startswith(("NaN", "Infinity", "-Infinity"), exc.pos):
        return JSONProblem("syntax", f"NaN or Infinity {at}", **where)
    # Python's json words syntax errors better ("Expecting ',' delimiter"). A deep or huge-number text does not come
    # here (both are orjson's errors above); what Python's json reads and orjson does not (a lone surrogate) keeps
    # orjson's words.
    try:
        json.loads(text)
    except json.JSONDecodeError as syntax:
        return JSONProblem(
            "syntax",
            f"{syntax.msg} at line {syntax.lineno}, column {syntax.colno}",
            line=syntax.lineno,
            column=syntax.colno,
        )
    except (RecursionError, ValueError):
        pass
    return JSONProblem("syntax", f"{exc.msg} {at}", **where)


# --- the schema as a lead saves it -----------------------------------------------------------------------------


def _pointer(parts: tuple) -> str:
    """An RFC 6901 JSON pointer ("/properties/name/pattern")."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts) or "/"


def _objects(schema: Any) -> Iterator[tuple[tuple, dict]]:
    """Every object in the schema with its location, data (enum, const, ...) included: a `$ref` pointer can make any
    object of the document a subschema."""
    stack: list[tuple[tuple, Any]] = [((), schema)]
    while stack:
        parts, node = stack.pop()
        if isinstance(node, dict):
            yield parts, node
            stack.extend(((*parts, k), v) for k, v in reversed(node.items()) if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(((*parts, i), v) for i, v in reversed(list(enumerate(node))) if isinstance(v, dict | list))


def _subschemas(schema: Any) -> int:
    """How many objects, true and false values the schema holds (data included: the bound is what matters)."""
    count, stack = 0, [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, bool | dict):
            count += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def _regex_problem(pattern: str) -> str | None:
    try:
        regex(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "not a regular expression"
        return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return None


def _serialized(schema: Any, **options: Any) -> str:
    """Compact JSON of `schema`. Raise JSONProblem for an integer longer than MAX_NUMBER_DIGITS."""
    try:
        return json.dumps(schema, ensure_ascii=False, separators=(",", ":"), allow_nan=False, **options)
    except ValueError as exc:
        if "digits" in str(exc):
            raise JSONProblem(
                "number", f"a number longer than {MAX_NUMBER_DIGITS:,} digits (the limit)", limit=MAX_NUMBER_DIGITS
            ) from None
        raise JSONProblem("number", "NaN or Infinity, which are not JSON") from None


def _check_regex(instance: object) -> bool:
    return not isinstance(instance, str) or regex(instance) is not None


# The metaschema's "format": "regex" (pattern values, patternProperties names) checked by RE2, which runs them.
_SCHEMA_FORMATS = FormatChecker()
_SCHEMA_FORMATS.checks("regex", raises=re2.error)(_check_regex)


def schema_problems(schema: Any) -> list[str]:
    """What keeps `schema` from being a task's JSON Schema, each naming its limit or location; [] when it is fine.
    The checks run in order of cost, each on a schema the cheaper ones bounded: depth, size, subschemas, references,
    `$schema` and patterns, then the Draft 2020-12 metaschema."""
    max_depth = limit("JSON_SCHEMA_MAX_DEPTH")
    if _depth_over(schema, max_depth):
        return [f"The JSON Schema is nested more than {max_depth:,} levels deep (the limit)."]
    try:
        size = len(_serialized(schema).encode())
    except JSONProblem as problem:
        return [f"The JSON Schema holds {problem.reason}."]
    max_bytes = limit("JSON_SCHEMA_MAX_BYTES")
    if size > max_bytes:
        return [f"The JSON Schema is {size:,} bytes; the limit is {max_bytes:,} bytes."]
    max_subschemas = limit("JSON_SCHEMA_MAX_SUBSCHEMAS")
    if (count := _subschemas(schema)) > max_subschemas:
        return [f"The JSON Schema has {count:,} subschemas (objects, true and false); the limit is {max_subschemas:,}."]
    problems = []
    for parts, node in _objects(schema):
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if isinstance(ref, str) and not ref.startswith("#"):
                problems.append(
                    f"The schema refers to “{_short(ref)}” (at {_pointer((*parts, keyword))}): only references "
                    "inside the schema (starting with #, like #/$defs/name) are allowed; nothing is fetched."
                )
        if "$schema" in node and parts:
            problems.append(
                f"“$schema” is allowed only at the top of the schema (found at {_pointer((*parts, '$schema'))})."
            )
        patterns = [("pattern", node["pattern"])] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            patterns += [(("patternProperties", p), p) for p in node["patternProperties"]]
        for where, pattern in patterns:
            reason = _regex_problem(pattern)
            if reason is not None:
                location = _pointer((*parts, *where) if isinstance(where, tuple) else (*parts, where))
                problems.append(
                    f"The pattern “{_short(pattern, 80)}” (at {location}) cannot be used: {_short(reason, 120)}. "
                    "Patterns run on RE2, which has no lookaround or backreferences, so that matching time stays "
                    "linear."
                )
    if problems:
        more = len(problems) - _MAX_LISTED
        return problems[:_MAX_LISTED] + ([f"… and {more:,} more problem{'s' if more > 1 else ''}."] if more > 0 else [])
    try:
        Draft202012Validator.check_schema(schema, format_checker=_SCHEMA_FORMATS)
    except SchemaError as exc:
        return [f"Not a valid JSON Schema: {_short(exc.message)}"]
    except RecursionError:  # the depth limit keeps this away unless it is set far above its default
        return [f"The JSON Schema is nested too deeply to check (the limit is {max_depth:,} levels)."]
    return []


# --- the validator (its keywords: schema_keywords) -------------------------------------------------------------


def _refuse(uri: str):
    raise referencing.exceptions.NoSuchResource(ref=uri)


# Every reference resolves inside the schema; anything else is refused, never fetched (an old row's schema included).
REGISTRY: referencing.Registry = referencing.Registry(retrieve=_refuse)


@dataclass(frozen=True)
class Mismatch:
    """The result of checking a document: the most relevant error (its JSON path and message) and how many were
    collected (`more`: the check stopped collecting, there may be others); or, with `stopped`, why the check could
    not finish."""

    path: str = "$"
    message: str = ""
    errors: int = 0
    more: bool = False
    stopped: str = ""
    detail: dict = field(default_factory=dict)


class CompiledSchema:
    """A task's schema, checked and compiled once (compile_schema caches it), to check documents with."""

    def __init__(self, schema: dict | bool) -> None:
        if isinstance(schema, dict) and "$schema" in schema:
            # Read as Draft 2020-12 whatever it names: another dialect would switch to jsonschema's stock classes.
            schema = {key: value for key, value in schema.items() if key != "$schema"}
        self.validator = Validator(schema, registry=REGISTRY)

    def check(self, value: Any) -> Mismatch | None:
        """How `value` (parsed, within JSON_DOCUMENT_MAX_DEPTH) breaks the schema, or None when it does not."""
        max_errors = limit("JSON_SCHEMA_MAX_ERRORS")
        steps = limit("JSON_SCHEMA_MAX_STEPS")
        try:
            with steps_allowed(steps):
                errors = list(islice(self.validator.iter_errors(value), max_errors + 1))
            error = best_match(errors) if errors else None
            if error is None:
                return None
            return Mismatch(_short(error.json_path), _short(error.message), len(errors), len(errors) > max_errors)
        except StepLimit:
            return Mismatch(
                stopped=f"the check stopped after {steps:,} steps (the limit): the schema asks too much work of "
                "this completion",
                detail={"limit": steps},
            )
        except RecursionError:
            return Mismatch(stopped="the schema's references ($ref) nest deeper than the check can follow")
        except referencing.exceptions.Unresolvable as exc:
            return Mismatch(stopped=f"the schema refers to “{_short(str(exc.ref), 80)}”, which is not in the schema")
        except UnknownType as exc:
            return Mismatch(stopped=f"the schema names an unknown type, {_short(repr(exc.type), 80)}")
        except Exception as exc:  # a $ref pointing at data that is no schema: the lead's input, never a server error
            logger.warning("JSON Schema check failed", exc_info=True)
            return Mismatch(stopped=f"the schema cannot be applied ({type(exc).__name__})")


def compile_schema(schema: Any) -> CompiledSchema | None:
    """The compiled schema, or None when there is none or it has a problem (schema_problems: Task.clean refuses such
    a schema; an old row with one is not checked against it, and nothing it names is fetched)."""
    if schema is None:
        return None
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # deeper than 255 levels, or an integer beyond 64 bits
        if _depth_over(schema, limit("JSON_SCHEMA_MAX_DEPTH")):
            return None
        try:
            key = _serialized(schema, sort_keys=True).encode()
        except JSONProblem:
            return None
    return _compiled(key, limit("JSON_SCHEMA_MAX_BYTES"), limit("JSON_SCHEMA_MAX_DEPTH"))


@lru_cache(maxsize=64)
def _compiled(key: bytes, max_bytes: int, max_depth: int) -> CompiledSchema | None:
    """Compiling costs far more than checking a small document, so each schema compiles once per process (the
    limits are part of the key: schema_problems reads them)."""
    schema = json.loads(key)
    if schema_problems(schema):
        return None
    return CompiledSchema(schema)


def check_document(text: str, schema: CompiledSchema | None) -> tuple[str, dict] | None:
    """What is wrong with `text` as the JSON of a completion checked against `schema` (None: any JSON), as a
    sentence and its detail; None when nothing is."""
    if schema is not None and len(text) > (max_chars := limit("JSON_DOCUMENT_MAX_CHARS")):
        return (
            f"The completion is {len(text):,} characters; the schema check reads at most {max_chars:,} (the limit).",
            {"limit": max_chars},
        )
    try:
        value = parse_json(text, max_depth=limit("JSON_DOCUMENT_MAX_DEPTH") if schema is not None else None)
    except JSONProblem as problem:
        if problem.kind == "deep":
            return f"The completion is {problem.reason}.", problem.detail
        return f"The completion is not valid JSON: {problem.reason}.", problem.detail
    if schema is None:
        return None
    mismatch = schema.check(value)
    if mismatch is None:
        return None
    if mismatch.stopped:
        return f"The completion could not be checked against the task's schema: {mismatch.stopped}.", mismatch.detail
    where = "the top level" if mismatch.path == "$" else mismatch.path
    n = mismatch.errors - 1  # the others besides the one shown
    more = f" ({'at least ' if mismatch.more else ''}{n:,} more problem{'s' if n > 1 else ''})" if n else ""
    detail = {"path": mismatch.path, "errors": mismatch.errors}
    return f"The JSON does not match the task's schema at {where}: {mismatch.message}{more}.", detail
