"""The field types job params share, so each kind's schema says exactly what its code accepts.

The engine serves these schemas (``GET /job-kinds``, OpenAPI): a request the schema allows must not be
refused as malformed, and one it forbids must be. So every check a field makes is written into its JSON
Schema too (a pattern, a range), and params are strict: ``"5"`` is not a number.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from MedSynthLib.conventions import ALL_CHANNELS

__all__ = [
    "JobParams", "MAX_SEED", "PathText", "DeviceName", "ChannelList", "OptionalChannelList", "Triple", "validation_sentence",
]

#: Seeds stay below 2**53: JSON numbers beyond it are not exact in every client (JavaScript, float parsers).
MAX_SEED = 2**53 - 1
_PATH_PATTERN = r"^(/|~(/|$))[^\x00]*$"
_DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:[0-9]{1,3})?)$"
_CHANNEL = "(" + "|".join(sorted(ALL_CHANNELS, key=len, reverse=True)) + ")"
_CHANNELS_PATTERN = rf"^ *{_CHANNEL} *(, *{_CHANNEL} *)*$"


class JobParams(BaseModel):
    """Base of every kind's params: unknown names are refused (a typo never silently becomes a default)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), strict=True)

    @model_validator(mode="before")
    @classmethod
    def _json_integers(cls, data: Any) -> Any:
        """``210.0`` is an integer in JSON Schema (and in JavaScript clients): take it as 210."""
        return {k: _integral(v) for k, v in data.items()} if isinstance(data, dict) else data


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _absolute(value: str) -> str:
    if not re.fullmatch(_PATH_PATTERN, value):
        raise ValueError(f"the path '{value}' must be absolute (the engine's working folder is not yours)")
    return value


def _device(value: str) -> str:
    if not re.fullmatch(_DEVICE_PATTERN, value):
        raise ValueError(f"unknown device '{value}'; use auto, cpu, cuda, cuda:N or mps")
    return value


def _channels(value: Any) -> Any:
    """``"t1, seg"`` or ``["seg", "t1"]`` as a list in canonical order, each channel once."""
    if isinstance(value, str):
        if not re.fullmatch(_CHANNELS_PATTERN, value):
            raise ValueError(f"'{value}' is not a comma-separated list of channels from {', '.join(ALL_CHANNELS)}")
        names = [item.strip() for item in value.split(",")]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        unknown = [item for item in value if item not in ALL_CHANNELS]
        if unknown or not value or len(set(value)) != len(value):
            raise ValueError(f"give each channel once, from {', '.join(ALL_CHANNELS)}")
        names = value
    else:
        return value  # the union's own type check refuses it
    return [c for c in ALL_CHANNELS if c in names]


#: An absolute path (``~`` is this engine's user's home); it must also lie under a folder the engine may use.
PathText = Annotated[
    str, Field(min_length=1, max_length=4096, json_schema_extra={"pattern": _PATH_PATTERN}), AfterValidator(_absolute)
]
DeviceName = Annotated[str, Field(max_length=64, json_schema_extra={"pattern": _DEVICE_PATTERN}), AfterValidator(_device)]
_ChannelItems = Annotated[
    list[str], Field(min_length=1, max_length=len(ALL_CHANNELS), json_schema_extra={
        "items": {"enum": list(ALL_CHANNELS), "type": "string"}, "uniqueItems": True,
    }),
]
_ChannelText = Annotated[str, Field(json_schema_extra={"pattern": _CHANNELS_PATTERN})]
#: Channels as ``"t1,seg"`` or ``["t1", "seg"]``; stored as a list in canonical order.
ChannelList = Annotated[_ChannelText | _ChannelItems, BeforeValidator(_channels)]
OptionalChannelList = Annotated[_ChannelText | _ChannelItems | None, BeforeValidator(_channels)]


def Triple(kind: type, *, ge: float | None = None, gt: float | None = None, le: float) -> Any:  # noqa: N802
    """One number or three (X, Y, Z), each within the bounds; stored as three."""
    item = Annotated[kind, Field(ge=ge, gt=gt, le=le)]
    return Annotated[item | Annotated[list[item], Field(min_length=3, max_length=3)] | None, AfterValidator(_three)]


def _three(value: Any) -> Any:
    if value is None or isinstance(value, list):
        return value
    return [value] * 3


def validation_sentence(exc: ValidationError, what: str = "parameter", skip: int = 0) -> str:
    """One sentence for the first problem pydantic found (``skip``: leading location parts to leave out).

    Where a field may take several forms (one number or three), the error of the form the value was meant as is
    chosen, not the type mismatch of another form.
    """
    errors = exc.errors()
    first = _where(errors[0], skip)
    same = [e for e in errors if _where(e, skip) == first]
    error = next((e for e in same if not str(e.get("type", "")).endswith("_type")), same[0])
    return error_sentence(error, what, first)


def error_sentence(error: Any, what: str, where: str) -> str:
    """One sentence for one pydantic error at ``where`` (dotted field names; empty for the whole body)."""
    if error.get("type") == "extra_forbidden":
        return f"Unknown {what} '{where}'; check its spelling against the documented names."
    if error.get("type") == "missing":
        return f"The {what} '{where}' is required."
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if not where:
        return f"The {what}s are not valid: {message}."
    return f"The {what} '{where}' is not valid: {message}."


def _where(error: Any, skip: int) -> str:
    parts = list(error.get("loc", ()))[skip:]
    return ".".join(str(p) for p in parts if not isinstance(p, int) and not _is_type_tag(p))


def _is_type_tag(part: Any) -> bool:
    """Pydantic's union members in an error location (``str``, ``list[...]``, ``constrained-int``...)."""
    text = str(part)
    return text in ("str", "int", "float", "bool", "none") or "[" in text or text.startswith("constrained-")
