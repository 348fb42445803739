"""The ``prepare`` job kind: its parameters (named as ``medsynth prepare``'s options) and their checks on submission.

Every path must lie in a folder the engine may use; the key file, like the command's, must lie outside the output.
The job runs in a child process (``worker.run_prepare_task``), one at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..errors import MedSynthError
from .params import _Params
from .paths import PathPolicy

__all__ = ["PrepareParams", "check_prepare"]


class PrepareParams(_Params):
    """``medsynth prepare``'s options; ``out`` defaults to the job's own folder."""

    input: str = Field(min_length=1, max_length=4096)
    out: str | None = Field(None, min_length=1, max_length=4096)
    atlas: Literal["mni152", "none"] = "mni152"
    skull_strip: Literal["auto", "model", "atlas", "none"] = "auto"
    n4: bool = False
    sequences: str | None = Field(None, min_length=1, max_length=4096)
    keep_key: str | None = Field(None, min_length=1, max_length=4096)
    spacing: float = Field(1.0, ge=0.5, le=4.0)
    device: str | None = Field(None, max_length=64)


def check_prepare(raw: dict[str, Any], job_dir: Path, policy: PathPolicy) -> tuple[dict[str, Any], Path]:
    """The stored parameters (absolute, allowed paths) and the output folder of a ``prepare`` job."""
    params = PrepareParams.model_validate(raw)
    source = policy.check(params.input, "input")
    if not source.is_dir():
        raise MedSynthError(f"The input folder {source} does not exist; give a folder of DICOM or NIfTI files this engine may read.")
    out = policy.check(params.out, "out") if params.out else job_dir / "output"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MedSynthError(f"{out} is not empty; choose a new or empty out folder (nothing is overwritten).")
    stored = params.model_dump()
    stored.update(input=str(source), out=str(out))
    for name in ("sequences", "keep_key"):
        if stored[name]:
            stored[name] = str(policy.check(stored[name], name.replace("_", "-")))
    if stored["keep_key"] and Path(stored["keep_key"]).is_relative_to(out):
        raise MedSynthError(f"The key file {stored['keep_key']} is inside the output folder; keep it elsewhere, for the hospital only.")
    return stored, out
