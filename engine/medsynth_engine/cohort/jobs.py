"""The generate job's ``cohort`` and ``balance`` params: a path (checked against the engine's folders) or the document."""

from __future__ import annotations

from typing import Any

from .spec import parse_cohort, read_cohort

__all__ = ["cohort_fields"]


def cohort_fields(cohort: str | dict | None, policy: Any, balance: str | None = None) -> dict[str, Any]:
    """``cohort=`` (the parsed document, stored with the job) and ``balance=`` for ``GenerateRequest``."""
    fields: dict[str, Any] = {} if balance is None else {"balance": balance}
    if cohort is None:
        return fields
    spec = read_cohort(policy.check(cohort, "cohort")) if isinstance(cohort, str) else parse_cohort(cohort)
    return {**fields, "cohort": spec.to_dict()}
