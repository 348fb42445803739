"""Checks of the panel's inputs before a job is submitted, each failure one sentence that says what to change.

Limits on values the engine also checks (counts, steps, margins) come from the schema the engine serves
(:mod:`MedSynthLib.jobschema`) when the controller has it; what is checked here is what only this machine can
know (folders exist, are readable, writable and new) and how the panel's fields map onto a job's params.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .conventions import parse_channels

__all__ = [
    "InputError",
    "CHANNEL_TOOLS",
    "validate_generate",
    "validate_finetune",
    "validate_export",
    "validate_add_channel",
    "validate_tumour",
    "input_case_name",
    "case_folders",
]

#: The "add a channel" tools of the Channels section: what each adds (the engine's add-channel models make them).
CHANNEL_TOOLS: dict[str, dict[str, str]] = {
    "seg": {"label": "segmentation"},
    "ct": {"label": "CT channel"},
}


class InputError(ValueError):
    """A panel input that cannot be used, said in one sentence that says what to change."""


def _channels(text: str | list[str] | tuple[str, ...]) -> list[str]:
    try:
        return list(parse_channels(text))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def validate_generate(
    *, model: str, count: int, seed: int, channels: str | list[str], tumour: bool, shape: int | list[int] | None = None,
    spacing: float | None = None, cohort: dict[str, Any] | None = None, truncation: float | None = None,
) -> dict[str, Any]:
    """Parameters of a ``generate`` job (BraTS layout, so the first case can be loaded), or an InputError.
    ``cohort``: strata (the Cohort section's document); the engine draws each case inside its stratum.
    ``truncation``: StyleGAN's psi (0-1), for models that take it."""
    if not model:
        raise InputError("No model is selected; connect to the engine and pick a model.")
    params: dict[str, Any] = {
        "model": model, "n": int(count), "seed": int(seed), "channels": _channels(channels),
        "layout": "brats", "tumour": bool(tumour),
    }
    if shape:
        params["shape"] = [int(n) for n in shape] if isinstance(shape, (list, tuple)) else int(shape)
    if spacing:
        params["spacing"] = float(spacing)
    if truncation is not None:
        if not 0.0 <= float(truncation) <= 1.0:
            raise InputError(f"Truncation {float(truncation):g} is out of range; choose between 0 (the average image) and 1 (none).")
        params["truncation"] = float(truncation)
    if cohort is not None:
        params.update(cohort=cohort, tumour=True)  # healthy cases are a stratum of the cohort, not --no-tumour
    return params


def case_folders(data: Path) -> list[Path]:
    """Sub-folders that hold at least one NIfTI file (a BraTS-style case)."""
    folders = []
    for child in sorted(data.iterdir()):
        if child.is_dir() and any(p.name.endswith((".nii.gz", ".nii")) for p in child.iterdir()):
            folders.append(child)
    return folders


def validate_finetune(
    *, data: str | os.PathLike, model: str, channels: str | list[str], steps: int, out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Parameters of a ``finetune`` job; the data folder must hold BraTS-style case folders."""
    if not str(data).strip():
        raise InputError("No data folder is chosen; pick a BraTS-style folder with one sub-folder per case.")
    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise InputError(f"The data folder {folder} does not exist; pick a BraTS-style folder with one sub-folder per case.")
    try:
        cases = case_folders(folder)
    except PermissionError:
        raise InputError(f"The data folder {folder} cannot be read; check its permissions.") from None
    if not cases:
        raise InputError(
            f"The data folder {folder} holds no case folders with NIfTI files; pick a BraTS-style folder "
            "(<case>/<case>_t1.nii.gz, ...)."
        )
    if not model:
        raise InputError("No base model is selected; pick the model to fine-tune.")
    params: dict[str, Any] = {"model": model, "data": str(folder.absolute()), "steps": int(steps), "channels": _channels(channels)}
    if out is not None and str(out).strip():
        params["out"] = str(_writable_new_folder(Path(out).expanduser(), "model"))
    return params


def _writable_new_folder(out: Path, what: str) -> Path:
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"The {what} folder {out} is not empty; choose a new folder (nothing is overwritten).")
    parent = out.parent
    if not parent.is_dir():
        raise InputError(f"The folder {parent} does not exist; create it or choose another {what} folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write into {parent}; choose a {what} folder you may write to.")
    return out


def validate_export(
    *, out: str | os.PathLike, layout: str, channels: str | list[str], job: str | None = None,
    source: str | os.PathLike | None = None, audit_against: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Parameters of an ``export`` job re-writing a generated set (a job's output or a set folder) into ``out``.

    ``audit_against`` (a training folder) turns on the export gate: the engine audits the set against it and
    leaves probable copies of training cases out before the set appears.
    """
    if not str(out).strip():
        raise InputError("No export folder is chosen; pick a new, empty folder.")
    if layout not in ("brats", "nnunet"):
        raise InputError(f"Unknown layout '{layout}'; choose brats or nnunet.")
    if not job and not (source and str(source).strip()):
        raise InputError("There is nothing to export yet; generate a set first (or choose a set folder).")
    params: dict[str, Any] = {"out": str(_writable_new_folder(Path(out).expanduser(), "export")), "layout": layout}
    params["channels"] = _channels(channels)
    if job:
        params["job"] = job
    else:
        params["source"] = str(Path(source).expanduser().absolute())
    if audit_against is not None and str(audit_against).strip():
        train = Path(audit_against).expanduser().absolute()
        if not train.is_dir():
            raise InputError(f"The training folder to audit against, {train}, does not exist; choose the folder the model learned from.")
        params["audit_against"] = str(train)
    return params


def input_case_name(volume_name: str) -> str:
    """A case id for a volume the panel saves for the engine: its name without a trailing channel word, file-safe."""
    words = volume_name.strip().split()
    if len(words) > 1 and words[-1].lower() in ("t1", "t1ce", "t2", "flair", "ct", "seg"):
        words = words[:-1]
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(words)).strip("-")[:64] or "volume"


def validate_add_channel(*, channel: str, case_dir: str | os.PathLike, model: str | None = None,
                         replace: bool = False) -> dict[str, Any]:
    """Parameters of an ``add-channel`` job adding ``channel`` (seg or ct) to the saved case folder ``case_dir``."""
    if channel not in CHANNEL_TOOLS:
        raise InputError(f"Unknown channel '{channel}'; the panel adds seg or ct.")
    case = Path(case_dir).expanduser().absolute()
    if not case.exists():
        raise InputError(f"The case {case} does not exist; save the volume for the engine first.")
    params: dict[str, Any] = {"case": str(case), "channel": channel, "replace": bool(replace)}
    if model:
        params["model"] = model
    return params


def validate_tumour(*, mask: str | os.PathLike, outline: bool, seed: int, model: str, margin_mm: float | None = None,
                    case_dir: str | os.PathLike | None = None, steps: int | None = None) -> dict[str, Any]:
    """Parameters of an ``add-tumour`` job (with ``case_dir``) or of a mask-conditioned ``generate`` job (without).

    ``steps`` (sampling steps; None or 0 for the model's default) applies to adding to a case only.
    """
    path = Path(mask).expanduser().absolute()
    if not path.is_file():
        raise InputError(f"The tumour mask {path} does not exist; draw the tumour (or choose a mask file) first.")
    if not model:
        raise InputError("No tumour model is selected; connect to an engine that has a mask-conditioned model (ldm3d).")
    params: dict[str, Any] = {"model": model, "seed": int(seed), "mask": str(path), "outline": bool(outline)}
    if case_dir is None:
        params.update(n=1, layout="brats", channels=["t1", "t1ce", "t2", "flair", "seg"])
        return params
    case = Path(case_dir).expanduser().absolute()
    if not case.is_dir():
        raise InputError(f"The case folder {case} does not exist; save the case for the engine first.")
    params["case"] = str(case)
    if margin_mm is not None:
        params["margin_mm"] = float(margin_mm)
    if steps:
        params["steps"] = int(steps)
    return params


