"""The job kinds this engine runs, one module each; a new kind is a new module and one name in ``KIND_MODULES``.

Each module holds ``KIND``, a ``jobs.spec.JobKind``: typed params (the one schema the engine serves and
checks), preparation at submit, the run, and its lane.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..spec import JobKind

__all__ = ["KIND_MODULES", "job_kinds", "job_kinds_document"]

KIND_MODULES = ("generate", "finetune", "export", "add_channel", "add_tumour", "progress", "prepare")


@cache
def job_kinds() -> Mapping[str, JobKind]:
    """Every kind by its name (``add-channel``...), read-only, in ``KIND_MODULES`` order."""
    kinds = {}
    for module in KIND_MODULES:
        kind = importlib.import_module(f"{__name__}.{module}").KIND
        kinds[kind.name] = kind
    return MappingProxyType(kinds)


def job_kinds_document() -> dict:
    """What ``GET /job-kinds`` serves: ``{"kinds": {name: {"params_schema", "lane", "runs_in", "resumable", ...}}}``."""
    return {"kinds": {name: kind.describe() for name, kind in job_kinds().items()}}
