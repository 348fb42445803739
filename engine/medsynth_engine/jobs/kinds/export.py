"""``export`` jobs: ``medsynth export`` (a set re-written in another layout or channel subset) in a worker process.

The set is a folder (``source``) or a finished job's output (``job``): exactly one of the two, which the
schema states (``oneOf``), so a request with neither is malformed (422), not a surprise at run time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from MedSynthLib.conventions import parse_channels

from ...errors import MedSynthError
from ...setwriter import SetWriter
from ..inputs import check_headers
from ..journalled import RESUMED_MESSAGE, SetProgress, resume_from_journal
from ..schema import JobParams, OptionalChannelList, PathText
from ..spec import Conflict, JobKind, Missing, PrepareContext, Prepared, RunContext

__all__ = ["ExportParams", "KIND"]


class ExportParams(JobParams):
    """Re-write a set (``source`` folder, or the output of job ``job``) in another layout or channel subset."""

    model_config = {"json_schema_extra": {"oneOf": [{"required": ["source"]}, {"required": ["job"]}]}}

    source: PathText = None  # no null: with exactly one of source and job present, the schema's oneOf is exact
    job: str = Field(None, min_length=1, max_length=64)
    out: PathText | None = None
    layout: Literal["brats", "nnunet"] = "brats"
    channels: OptionalChannelList = None
    audit_against: PathText | None = None
    audit_threshold: float = Field(0.5, gt=0.0, le=1.0)
    #: Continue the interrupted export into ``out`` from its journal / drop what it left and start afresh.
    resume: bool = False
    discard: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ExportParams:
        if (self.source is None) == (self.job is None):
            raise ValueError("an export job needs exactly one of 'source' (a set folder) or 'job' (a finished job's id)")
        return self


def prepare(params: ExportParams, ctx: PrepareContext) -> Prepared:
    from ...setexport import read_set_manifest

    if params.job is not None:
        source_job = ctx.store.get(params.job)
        if source_job is None:
            raise Missing(f"There is no job '{params.job}' to export from.")
        if source_job["state"] != "succeeded":
            raise Conflict(f"Job {params.job} has not succeeded ({source_job['state']}); only finished sets can be exported.")
        source = Path(source_job["output_dir"])
    else:
        source = ctx.policy.check(params.source, "source")
        if not source.exists():
            raise Missing(f"The source {source} does not exist; give the folder of a MedSynth set.")
    manifest = read_set_manifest(source)
    out = ctx.path(params.out, "out") or ctx.job_dir / "output"
    try:
        channels = parse_channels(params.channels if params.channels is not None else manifest["channels"])
    except ValueError as exc:
        raise MedSynthError(str(exc)) from None
    missing = [c for c in channels if c not in manifest["channels"]]
    if missing:
        raise Conflict(f"The source set has no {', '.join(missing)} channel; it holds {', '.join(manifest['channels'])}.")
    check_headers(source / case["files"][c] for case in manifest["cases"] for c in channels if isinstance(case.get("files", {}).get(c), str))
    # checks layout, channels, target and leftovers of an interrupted run; writes nothing
    SetWriter(out, params.layout, channels, workers=1, resume=params.resume, discard=params.discard)
    stored = params.model_dump()
    stored.update(source=str(source), out=str(out))
    if params.audit_against is not None:
        from ...evaluate.gate import audit_channels

        train = ctx.policy.check(params.audit_against, "audit_against")
        audit_channels(channels, train)  # refuses a training set that cannot be audited against, before queueing
        stored["audit_against"] = str(train)
    return Prepared(stored, out)


def run(params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from ...setexport import export_set

    started = time.monotonic()
    progress = SetProgress(ctx)

    audit_against = Path(params["audit_against"]) if params.get("audit_against") else None
    out = export_set(
        Path(params["source"]), Path(params["out"]), layout=params["layout"], channels=params.get("channels"), progress=progress,
        audit_against=audit_against, audit_threshold=params.get("audit_threshold", 0.5),
        resume=bool(params.get("resume")), discard=bool(params.get("discard")), resumed=progress.resumed,
    )
    return {"output_dir": str(out), "seconds": round(time.monotonic() - started, 3)}


KIND = JobKind(
    name="export",
    params=ExportParams,
    prepare=prepare,
    run=run,
    summary="Re-write a set (a folder or a finished job's output) as an anonymised BraTS or nnU-Net set.",
    resume=resume_from_journal,
    requeue_on_restart=True,
    resumed_message=RESUMED_MESSAGE,
)
