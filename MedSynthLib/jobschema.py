"""Check a job's params against the JSON Schema the engine serves (``GET /job-kinds``), standard library only.

The engine's pydantic models (jobs/params.py) are the one definition of what a job takes; the panel reads their
schema when it connects and refuses a request here, in one sentence naming the field, before sending it. Only the
subset those schemas use is understood: ``type``, ``required``, ``enum``/``const``, ``minimum``/``maximum`` (and
the exclusive forms), ``minLength``/``maxLength``, ``pattern``, ``items``/``minItems``/``maxItems``, ``anyOf``,
``additionalProperties: false`` and local ``$ref``. The engine checks again on submission.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SchemaError", "validate", "check_params"]

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, (list, tuple)),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}
_NAMES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
          "array": "a list", "object": "a mapping", "null": "empty"}


class SchemaError(ValueError):
    """A value the schema refuses; the message is one sentence that names the field."""


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    if not ref.startswith("#/"):
        raise SchemaError(f"Cannot follow the schema reference {ref}.")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return target


def validate(value: Any, schema: dict[str, Any], where: str = "value", root: dict[str, Any] | None = None) -> None:
    """Raise :class:`SchemaError` if ``value`` does not satisfy ``schema`` (the subset named above)."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                validate(value, option, where, root)
                return
            except SchemaError as exc:
                errors.append(exc)
        # Say why the option of the value's own type failed (e.g. a count out of range), else the types allowed.
        typed = [e for e, o in zip(errors, schema["anyOf"]) if _type_matches(value, _resolve(o, root))]
        if typed:
            raise typed[0]
        kinds = [_resolve(o, root).get("type") for o in schema["anyOf"]]
        raise SchemaError(f"{where} must be {' or '.join(_NAMES.get(k, str(k)) for k in kinds if k)}.")
    if "type" in schema and not _type_matches(value, schema):
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        raise SchemaError(f"{where} must be {' or '.join(_NAMES.get(t, t) for t in types)}, not {value!r}.")
    if "const" in schema and value != schema["const"]:
        raise SchemaError(f"{where} must be {schema['const']!r}.")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where} is {value!r}; choose one of {', '.join(map(str, schema['enum']))}.")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, where)
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise SchemaError(f"{where} is empty; fill it in." if not value else f"{where} is too short.")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaError(f"{where} is longer than {schema['maxLength']} characters.")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise SchemaError(f"{where} {value!r} is not in the expected form ({schema['pattern']}).")
    if isinstance(value, (list, tuple)):
        if len(value) < schema.get("minItems", 0):
            raise SchemaError(f"{where} needs at least {schema['minItems']} item(s).")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"{where} takes at most {schema['maxItems']} item(s).")
        if "items" in schema:
            for index, item in enumerate(value):
                validate(item, schema["items"], f"{where}[{index}]", root)
    if isinstance(value, dict):
        _check_object(value, schema, where, root)


def _type_matches(value: Any, schema: dict[str, Any]) -> bool:
    if "type" not in schema:
        return True
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return any(_TYPES.get(t, lambda v: True)(value) for t in types)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _check_number(value: float, schema: dict[str, Any], where: str) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and value < low or high is not None and value > high:
        span = f"from {_num(low)} to {_num(high)}" if low is not None and high is not None else (
            f"at least {_num(low)}" if low is not None else f"at most {_num(high)}")
        raise SchemaError(f"{where} {_num(value)} is out of range; the engine takes {span}.")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        raise SchemaError(f"{where} {_num(value)} is out of range; the engine takes above {_num(schema['exclusiveMinimum'])}.")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        raise SchemaError(f"{where} {_num(value)} is out of range; the engine takes below {_num(schema['exclusiveMaximum'])}.")


def _check_object(value: dict[str, Any], schema: dict[str, Any], where: str, root: dict[str, Any]) -> None:
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise SchemaError(f"{name} is missing; the engine needs it.")
    for name, item in value.items():
        if name in properties:
            validate(item, properties[name], name, root)
        elif schema.get("additionalProperties") is False:
            raise SchemaError(f"{name} is not a parameter this engine takes ({', '.join(sorted(properties))}).")


def check_params(kind: str, params: dict[str, Any], kinds: dict[str, Any]) -> None:
    """Check ``params`` of a ``kind`` job against the engine's ``GET /job-kinds`` document's ``kinds``.

    Kinds the engine did not describe (an older engine) pass; the engine checks every request itself anyway.
    """
    schema = (kinds.get(kind) or {}).get("params_schema")
    if schema:
        validate(params, schema, kind)
