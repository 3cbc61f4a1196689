"""What `datasets` can load from a tools task's export: one Arrow type per column.

`datasets.load_dataset("json")` gives every column one Arrow type, inferred from the values: objects become structs
(the union of their keys), lists one element type; a key holding a string in one record and a number in another, or
an empty object, stops the load. `values_agree` and `arguments_agree` decide, before an export writes anything,
whether the tool sets and the calls' arguments can go into the file as JSON objects or must go as JSON text
(annotate/rendering.TemplateSpec, exports/formats/messages.py).
"""

from typing import Any

_SCALARS = {"string": "string", "integer": "int", "boolean": "bool"}
_CONFLICT = "conflict"


def _merge(a: Any, b: Any) -> Any:
    """The type of a column holding values of types a and b (None: only nulls), or _CONFLICT."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        merged = dict(a)
        for key, kind in b.items():
            merged[key] = _merge(merged.get(key), kind)
            if merged[key] == _CONFLICT:
                return _CONFLICT
        return merged
    if isinstance(a, list) and isinstance(b, list):
        inner = _merge(a[0], b[0])
        return _CONFLICT if inner == _CONFLICT else [inner]
    return _CONFLICT


def value_type(value: Any, depth: int = 0) -> Any:
    """The Arrow-like type of a JSON value (dict for a struct, [t] for a list, a name for a scalar), or _CONFLICT.
    Iterative in spirit: values here are tool definitions, bounded by the JSON Schema depth limit."""
    if depth > 100:
        return _CONFLICT
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        inner = None
        for item in value:
            inner = _merge(inner, value_type(item, depth + 1))
            if inner == _CONFLICT:
                return _CONFLICT
        return [inner]
    out = {}
    for key, item in value.items():
        kind = value_type(item, depth + 1)
        if kind == _CONFLICT:
            return _CONFLICT
        out[key] = kind
    return out


def _has_empty_struct(kind: Any) -> bool:
    stack = [kind]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if not node:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def values_agree(values: list) -> bool:
    """Whether one Arrow type holds every value in `values` (the tool sets of a task's template versions): no key
    with two types, and no object that is empty in every value (`{}` merges with its siblings' keys, but a struct
    with no field at all cannot be written)."""
    merged = None
    for value in values:
        merged = _merge(merged, value_type(value))
        if merged == _CONFLICT:
            return False
    return not _has_empty_struct(merged)


def _schema_type(schema: Any, depth: int = 0) -> Any:
    """The one Arrow type every value valid against `schema` has, or _CONFLICT when values may differ: a single
    `type` of string, integer, boolean, an array of such items, or an object whose properties are all listed
    (`additionalProperties: false`), or an `enum` of one JSON type. "number" may be 3 or 3.5 (int or float), so it
    conflicts."""
    if not isinstance(schema, dict) or depth > 64:
        return _CONFLICT
    kind = schema.get("type")
    if kind is None and isinstance(schema.get("enum"), list) and schema["enum"]:
        merged = None
        for item in schema["enum"]:
            merged = _merge(merged, value_type(item))
        return merged if merged in ("string", "int", "bool") else _CONFLICT
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        inner = _schema_type(schema.get("items"), depth + 1)
        return _CONFLICT if inner == _CONFLICT else [inner]
    if kind == "object":
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or not isinstance(properties, dict):
            return _CONFLICT
        if not properties:  # `{}` only: fine in the merged struct of all functions, not as a nested struct
            return {} if depth == 0 else _CONFLICT
        out = {}
        for key, sub in properties.items():
            out[key] = _schema_type(sub, depth + 1)
            if out[key] == _CONFLICT:
                return _CONFLICT
        return out
    return _CONFLICT


def arguments_agree(tool_sets: list[list]) -> bool:
    """Whether the arguments of every call to the functions of these tool sets fit one Arrow struct (they are checked
    against their function's parameters when saved, so the schemas say what they hold)."""
    merged = None
    for tools in tool_sets:
        for definition in tools or ():
            parameters = definition["function"].get("parameters") or {}
            merged = _merge(merged, _schema_type(parameters))
            if merged == _CONFLICT:
                return False
    return bool(merged)
