"""The keywords of annotate.schemas' validator (used only there): jsonschema's Draft 2020-12 keywords, each charging
the steps it takes to the check that runs it, with `pattern`, `patternProperties` and the property matching of
`additionalProperties` and `unevaluatedProperties` on RE2 (linear-time matching) and a linear `uniqueItems`.
"""

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

# A regex search costs a step per this many characters searched (plus one).
_CHARS_PER_STEP = 256

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the lead's input, not the server's error


@lru_cache(maxsize=1024)
def regex(pattern: str):
    """The compiled RE2 of `pattern`. Raise re2.error when RE2 cannot compile it."""
    return re2.compile(pattern, _RE2_OPTIONS)


class StepLimit(Exception):
    """A check took more than JSON_SCHEMA_MAX_STEPS steps."""


class _Meter:
    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps


# The steps left to the check running in this thread (or task); None outside a check.
_METER: ContextVar[_Meter | None] = ContextVar("schema_meter", default=None)


@contextlib.contextmanager
def steps_allowed(steps: int):
    """Run the checks inside with this many steps; past them a keyword raises StepLimit."""
    token = _METER.set(_Meter(steps))
    try:
        yield
    finally:
        _METER.reset(token)


def _charge(steps: int) -> None:
    meter = _METER.get()
    if meter is not None:
        meter.left -= steps
        if meter.left < 0:
            raise StepLimit


# Keywords that apply subschemas: each error from below passes through them, one level at a time, and costs there.
_APPLICATORS = frozenset(
    ("$ref", "$dynamicRef", "additionalProperties", "allOf", "anyOf", "contains", "dependentSchemas", "if", "items")
    + ("not", "oneOf", "patternProperties", "prefixItems", "properties", "propertyNames", "unevaluatedItems")
    + ("unevaluatedProperties",)
)
# Resolving a reference costs about this many plain keywords (a pointer lookup and two new validators).
_REF_STEPS = 20


def _metered(name: str, keyword):
    """The keyword function, charging a step, plus one per entry of a list or object value (properties, required,
    enum: the keyword loops over them); an applicator also charges a step for each error it passes up."""
    cost = _REF_STEPS if name in ("$ref", "$dynamicRef") else 1

    def run(validator, value, instance, schema):
        _charge(cost + len(value) if isinstance(value, list | dict) else cost)
        return keyword(validator, value, instance, schema)

    def apply(validator, value, instance, schema):
        _charge(cost + len(value) if isinstance(value, list | dict) else cost)
        for error in keyword(validator, value, instance, schema) or ():
            _charge(1)
            yield error

    return apply if name in _APPLICATORS else run


def _search(pattern: str, text: str) -> bool:
    _charge(1 + len(text) // _CHARS_PER_STEP)
    return regex(pattern).search(text) is not None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: dict, schema: dict) -> list:
    """jsonschema's find_additional_properties, matching patterns with RE2."""
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [key for key in instance if key not in properties and not any(_search(pattern, key) for pattern in patterns)]


def _additional_properties(validator, additional, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            joined = ", ".join(repr(extra) for extra in sorted(extras, key=str))
            yield ValidationError(f"Additional properties are not allowed ({joined} {verb} unexpected)")


def _valid(errors: Iterator) -> bool:
    return next(errors, None) is None


def _evaluated_keys(validator, instance: dict, schema) -> set:
    """jsonschema's find_evaluated_property_keys_by_schema (4.26), matching patterns with RE2."""
    if validator.is_type(schema, "boolean"):
        return set()
    keys: set = set()
    for keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(keyword)
        if ref is not None:
            resolved = validator._resolver.lookup(ref)
            evolved = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys |= _evaluated_keys(evolved, instance, resolved.contents)
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if (subschema := schema.get(keyword)) is not None:
            keys |= {key for key, value in instance.items() if _valid(validator.descend(value, subschema))}
    for pattern in schema.get("patternProperties", {}):
        keys |= {key for key in instance if _search(pattern, key)}
    for key, subschema in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys |= _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if _valid(validator.descend(instance, subschema)):
                keys |= _evaluated_keys(validator, instance, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys |= _evaluated_keys(validator, instance, schema["if"])
            if "then" in schema:
                keys |= _evaluated_keys(validator, instance, schema["then"])
        elif "else" in schema:
            keys |= _evaluated_keys(validator, instance, schema["else"])
    return keys


def _unevaluated_properties(validator, unevaluated, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    invalid = [
        key
        for key in instance
        if key not in evaluated and not _valid(validator.descend(instance[key], unevaluated, path=key, schema_path=key))
    ]
    if invalid:
        verb = "was" if len(invalid) == 1 else "were"
        if unevaluated is False:
            joined = ", ".join(repr(key) for key in sorted(invalid, key=str))
            yield ValidationError(f"Unevaluated properties are not allowed ({joined} {verb} unexpected)")
        else:
            joined = ", ".join(repr(key) for key in invalid)
            yield ValidationError(
                f"Unevaluated properties are not valid under the given schema ({joined} {verb} unevaluated and invalid)"
            )


def _canonical(value: Any) -> Any:
    """A hashable form of a JSON value, equal for values jsonschema's `equal` finds equal: 1 == 1.0, True != 1,
    object key order ignored. Recursion is bounded by JSON_DOCUMENT_MAX_DEPTH (documents are checked first)."""
    if value is True or value is False:
        return ("bool", value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return ("array", tuple(map(_canonical, value)))
    if isinstance(value, dict):
        return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))
    return value


def _unique_items(validator, unique, instance, schema):
    if not (unique and validator.is_type(instance, "array")):
        return
    _charge(len(instance))
    first: dict = {}
    for index, item in enumerate(instance):
        seen = first.setdefault(_canonical(item), index)
        if seen != index:
            yield ValidationError(f"{instance!r} has non-unique elements (item {index} repeats item {seen})")
            return


_KEYWORDS = {
    **Draft202012Validator.VALIDATORS,
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
    "uniqueItems": _unique_items,
}
Validator = validators.extend(
    Draft202012Validator, validators={name: _metered(name, keyword) for name, keyword in _KEYWORDS.items()}
)
