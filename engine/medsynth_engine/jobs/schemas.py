"""The params schema of every job kind, as JSON Schema, served at ``GET /job-kinds`` so clients validate a request
against the engine's own definition (jobs/params.py) instead of keeping copies of its limits."""

from __future__ import annotations

from typing import Any

from .params import AddChannelParams, AddTumourParams, ExportParams, FinetuneParams, GenerateParams

__all__ = ["JOB_PARAMS", "job_kinds_document"]

#: Job kind -> its params model (the one definition CLI, engine and clients share).
JOB_PARAMS = {
    "generate": GenerateParams,
    "finetune": FinetuneParams,
    "export": ExportParams,
    "add-channel": AddChannelParams,
    "add-tumour": AddTumourParams,
}


def job_kinds_document() -> dict[str, Any]:
    """``{"kinds": {kind: {"params_schema": <JSON Schema>}}}``."""
    return {"kinds": {kind: {"params_schema": model.model_json_schema()} for kind, model in JOB_PARAMS.items()}}
