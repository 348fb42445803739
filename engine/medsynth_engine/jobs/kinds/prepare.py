"""``prepare`` jobs: ``medsynth prepare`` (DICOM studies or raw NIfTI -> BraTS-ready cases) in a worker process.

Every path must lie in a folder the engine may use; the key file, like the command's, must lie outside the output.
What can be known before the run is checked at submission, each refusal one sentence naming the folder or file: an
input folder with no DICOM or NIfTI file, an output folder that is not free, a sequence map that does not parse,
a key inside the output, and (without ``skip_bad``) a NIfTI whose header is broken (4D, singular affine...).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..inputs import check_headers, nifti_files
from ..schema import DeviceName, JobParams, PathText
from ..spec import Conflict, JobKind, Missing, PrepareContext, Prepared, RunContext, request_fields

__all__ = ["PrepareParams", "KIND"]


class PrepareParams(JobParams):
    """``medsynth prepare``'s options; ``out`` defaults to the job's own folder."""

    input: PathText
    out: PathText | None = None
    atlas: Literal["mni152", "none"] = "mni152"
    skull_strip: Literal["auto", "model", "atlas", "none"] = "auto"
    n4: bool = False
    sequences: PathText | None = None
    keep_key: PathText | None = None
    spacing: float = Field(1.0, ge=0.5, le=4.0)
    device: DeviceName | None = None
    skip_bad: bool = False


def prepare(params: PrepareParams, ctx: PrepareContext) -> Prepared:
    from ...prepare.classify import load_sequence_map
    from ...prepare.skullstrip import deepbet_available
    from ...prepare.sources import holds_images

    source = ctx.policy.check(params.input, "input")
    if not source.is_dir():
        raise Missing(f"The input folder {source} does not exist; give a folder of DICOM or NIfTI files this engine may read.")
    if not holds_images(source):
        raise Conflict(f"The input folder {source} holds no DICOM or NIfTI file; give the folder of a PACS export or of NIfTI files.")
    out = ctx.path(params.out, "out") or ctx.job_dir / "output"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} is not empty; choose a new or empty out folder (nothing is overwritten).")
    if out == source or out.is_relative_to(source):
        raise Conflict(f"The output folder {out} is inside the input folder {source}; choose a folder elsewhere.")
    stored = params.model_dump()
    stored.update(input=str(source), out=str(out), device=ctx.device(params.device))
    if params.sequences:
        sequences = ctx.policy.check(params.sequences, "sequences")
        if not sequences.is_file():
            raise Missing(f"The sequence map {sequences} does not exist; give a JSON file such as {{\"AX T1 POST\": \"t1ce\"}}.")
        load_sequence_map(sequences)  # one sentence naming the file when it does not parse (400)
        stored["sequences"] = str(sequences)
    if params.keep_key:
        key = ctx.policy.check(params.keep_key, "keep-key")
        if key == out or key.is_relative_to(out):
            raise Conflict(f"The key file {key} is inside the output folder; keep it elsewhere, for the hospital only.")
        if key.exists():
            raise Conflict(f"The key file {key} already exists; choose a new file (keys are never overwritten).")
        if not key.parent.is_dir():
            raise Missing(f"The folder of the key file {key} does not exist; create it or choose another.")
        stored["keep_key"] = str(key)
    if params.skull_strip == "model" and not deepbet_available():
        raise Conflict("skull_strip 'model' needs deepbet in the engine's environment (pip install --no-deps deepbet==1.0.2); or use atlas.")
    if not params.skip_bad:  # with skip_bad, a broken file is left out and listed instead
        check_headers(nifti_files(source))
    return Prepared(stored, out)


def run(params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from ...prepare import PrepareRequest
    from ...prepare import prepare as prepare_studies

    fields = request_fields(params, ("input", "out", "sequences", "keep_key"))
    fields["spacing_mm"] = fields.pop("spacing", 1.0)
    return prepare_studies(PrepareRequest(**fields, log=ctx.log), progress=ctx.fraction_progress())


KIND = JobKind(
    name="prepare",
    params=PrepareParams,
    prepare=prepare,
    run=run,
    summary="Turn DICOM studies or raw NIfTI into BraTS-ready cases (classify, co-register, atlas, skull strip, QC).",
)
