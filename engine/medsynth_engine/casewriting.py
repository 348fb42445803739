"""The parts of writing a generated set that every way of generating shares (plain runs, cohorts): case seeds, the
manifest, the arguments a resumed run must repeat, write errors in one sentence, and the check of a model's output."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from MedSynthLib.conventions import BRATS_LABEL_NAMES, BRATS_LABELS

from . import __version__
from .errors import MedSynthError
from .journal import file_sha256, resume_hint
from .setwriter import SetWriter, space_error

if TYPE_CHECKING:
    from .generate import GenerateRequest

__all__ = ["case_seed", "set_manifest", "set_arguments", "writing_errors", "check_case"]


def case_seed(seed: int, index: int) -> int:
    """Seed of case ``index`` of a run: depends on the run seed and the index only, not on n."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint32)[0])


def set_manifest(request: GenerateRequest, plugin: Any, shape: tuple[int, ...], spacing: tuple[float, ...]) -> dict[str, Any]:
    """The manifest of a set (without its cases, which ``SetWriter`` adds from its journal): software, model, parameters."""
    parameters = {
        "n": request.n,
        "seed": request.seed,
        "channels": list(request.channels),
        "layout": request.layout,
        "shape": list(shape),
        "spacing": list(spacing),
        "tumour": request.tumour,
    }
    if request.mask is not None:
        parameters["mask"] = True
    if request.truncation != 1.0:
        parameters["truncation"] = request.truncation
    if request.like is not None:
        parameters["like"] = True  # a user's slice: its path stays out of the manifest, its content in the journal
    return {
        "format": "medsynth-synthetic-set",
        "format_version": 1,
        "software": {"name": "MedSynth", "version": __version__},
        "model": {
            "id": plugin.card.id,
            "kind": plugin.card.kind,
            "architecture": plugin.card.architecture,
            "weights_sha256": plugin.weights_sha256(),
        },
        "parameters": parameters,
        "channels": list(request.channels),
        "labels": {str(k): v for k, v in BRATS_LABELS.items()},
        "label_names": {str(k): v for k, v in BRATS_LABEL_NAMES.items()},
        "synthetic": True,
    }


def set_arguments(request: GenerateRequest, plugin: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """What decides a set's bytes, recorded in its journal: a resumed run must repeat every one of them."""
    return {
        "kind": "generate",
        "software": __version__,
        "model": plugin.card.id,
        "weights_sha256": plugin.weights_sha256(),
        **{k: v for k, v in parameters.items() if k not in ("mask", "like")},
        "mask_sha256": file_sha256(Path(request.mask)) if request.mask is not None else None,
        **({"like_sha256": folder_sha256(Path(request.like))} if request.like is not None else {}),
        "audit_against": str(Path(request.audit_against).absolute()) if request.audit_against is not None else None,
        "audit_threshold": request.audit_threshold if request.audit_against is not None else None,
    }


def folder_sha256(folder: Path) -> str:
    """One checksum over the names and contents of the files in a case folder (``--like``), so a resume sees a change."""
    if not folder.is_dir():
        raise MedSynthError(f"--like {folder} is not a case folder; give the folder of one case (<case>_t1.nii.gz, ...).")
    lines = [f"{path.name} {file_sha256(path)}" for path in sorted(folder.iterdir()) if path.is_file()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@contextmanager
def writing_errors(out: Path, writer: SetWriter) -> Iterator[None]:
    """Turn write failures (no permission, full disk, other OS errors) into one sentence about ``out``; when the
    finished cases were kept for a resume, the sentence says how to continue."""
    try:
        yield
    except PermissionError:
        raise MedSynthError(f"Cannot write into {Path(out).absolute().parent}; choose an output folder you may write to.") from None
    except OSError as exc:
        error = space_error(exc, Path(out))
        if writer.tmp.exists():
            raise MedSynthError(f"Could not write {out} ({exc.strerror or exc}); {resume_hint(writer.out)}") from None
        if error is not None:
            raise error from None
        raise MedSynthError(f"Could not write {out}: {exc.strerror or exc}.") from None


def check_case(arrays: dict[str, np.ndarray], channels: tuple[str, ...], shape: tuple[int, ...], model: str) -> None:
    for channel in channels:
        array = arrays.get(channel)
        if array is None or tuple(array.shape) != tuple(shape):
            raise MedSynthError(f"Model '{model}' returned no {shape} volume for channel {channel}; the plugin is faulty.")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise MedSynthError(f"Model '{model}' produced NaN or infinite voxels in channel {channel}; nothing was written.")

