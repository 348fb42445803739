"""Add a tumour segmentation (seg) or a CT (ct) channel to an existing case, generated or real.

The case is a BraTS-style folder (``<case>/<case>_t1.nii.gz``...) or one NIfTI file. The new channel lands
beside it as ``<case>_seg.nii.gz`` (plus ``<case>_seg.seg.nrrd`` with BraTS segment names and colours that
3D Slicer opens directly) or ``<case>_ct.nii.gz``, on exactly the case's grid and affine, through temporary
names and renames, the NIfTI last: it is the channel, the .seg.nrrd a view of it, so a run killed between the
renames leaves no NIfTI (or the old one) and the next run makes both again. An existing channel only with ``replace``.

A brain mask (``<case>_mask.nii.gz``, which ``medsynth prepare`` writes beside each case, or any mask file given)
makes the input brain-extracted before the model sees it (zero outside the mask, as the training data were)
and keeps tumour labels inside the brain: a T1 with its skull is the input the seg model gets wrong most
(bench/results/add_channel.md). The ct channel uses a mask only when one is given: mr2ct-phantom reads the skull
from a whole-head MR and only guesses it around a brain-extracted one.

N4 bias-field correction (``biasfield``) runs on each input sequence first, by default for the seg channel: the
shipped seg model labels oedema where a healthy head's bias field is strong, and N4 takes that away
(bench/results/add_channel.md, "N4 inside add-channel"); ``n4=False`` (``--n4 off``) skips it, ``True`` forces it for ct.

Models are channel models (families whose capabilities name a channel: seg, mr2ct), not generators: shipped
ones live in ``weights/<id>/``, and any model folder written by ``medsynth finetune --model seg|mr2ct`` works too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from MedSynthLib.conventions import BRATS_LABEL_COLOURS, BRATS_LABEL_NAMES, BRATS_LABELS

from .data.layouts import MR_SEQUENCES, find_case_files
from .errors import MedSynthError
from .inputcheck import check_same_grid
from .killpoint import killpoint
from .modelfile import read_card
from .nifti_io import read_nifti, write_nifti
from .registry import ModelRegistry, default_registry
from .weights import model_folder, shipped_folder

__all__ = [
    "AddChannelRequest", "add_channel", "channel_models", "channels_offered", "default_channel_model", "resolve_channel_model",
    "find_case_files", "find_brain_mask", "tumour_outcome", "outcome_sentence", "model_inputs", "n4_default", "MIN_TUMOUR_ML",
]

#: Below this labelled volume a seg result is reported as "no tumour found": the shipped seg model labels up to
#: ~1 ml of scattered voxels in healthy heads (bench/results/add_channel.md), gliomas are larger.
MIN_TUMOUR_ML = 1.0


def tumour_outcome(codes: np.ndarray, affine: np.ndarray) -> dict:
    """Labelled volume (ml) per BraTS label and in all, and whether that is a tumour (``MIN_TUMOUR_ML`` or more)."""
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine, dtype=float)[:3, :3]))) / 1000.0
    by_label = {BRATS_LABELS[code]: round(float((codes == code).sum()) * voxel_ml, 2) for code in sorted(BRATS_LABELS)}
    total = round(float((codes > 0).sum()) * voxel_ml, 2)
    return {"tumour_found": total >= MIN_TUMOUR_ML, "tumour_ml": total, "tumour_ml_by_label": by_label}


def outcome_sentence(outcome: dict) -> str:
    """What the seg channel found, in words (CLI, job message, panel): a clinician reads "no tumour found", not an
    empty label map."""
    if not outcome["tumour_found"]:
        return f"no tumour found ({outcome['tumour_ml']:g} ml labelled in all, under the {MIN_TUMOUR_ML:g} ml a tumour needs)"
    parts = ", ".join(f"{name} {ml:g} ml" for name, ml in outcome["tumour_ml_by_label"].items() if ml)
    return f"tumour found: {outcome['tumour_ml']:g} ml ({parts})"


def n4_default(channel: str) -> bool:
    """Whether add-channel corrects the bias field when not told: for seg (measured to remove its false tumours in
    healthy heads); not for ct (mr2ct was not measured with it)."""
    return channel == "seg"


def model_inputs(arrays: dict[str, np.ndarray], affine: np.ndarray, brain: np.ndarray | None = None, n4: bool = False,
                 names: dict[str, Path] | None = None) -> dict[str, np.ndarray]:
    """What the channel model sees: each sequence N4-corrected (``n4``; fitted inside ``brain`` when given, else on
    Otsu's foreground), then zero outside ``brain``. The benchmark (bench_channel_shift) measures through this.

    ``names``: the files the arrays came from, for the one sentence a failed correction gives.
    """
    out = {}
    for channel, array in arrays.items():
        if n4:
            from .biasfield import n4_array

            try:
                array = n4_array(array, affine, brain)
            except (ValueError, RuntimeError) as exc:
                where = (names or {}).get(channel, channel)
                raise MedSynthError(f"N4 bias correction failed on {where} ({str(exc).strip().splitlines()[-1]}); "
                                    "add the channel without it (--n4 off; a job's n4: false).") from None
        if brain is not None:
            array = np.where(brain, array, np.zeros((), dtype=array.dtype))
        out[channel] = array
    return out


@dataclass
class AddChannelRequest:
    """What ``medsynth add-channel`` takes.

    Args:
        case: BraTS-style case folder (``<case>/<case>_t1.nii.gz``...) or one NIfTI file (t1 unless its name
            ends ``_t1ce``, ``_t2`` or ``_flair``).
        channel: ``seg`` or ``ct``.
        model: shipped channel-model id or model folder; default ``default_channel_model(channel)``.
        out: folder to write into; default the case folder (the single file's folder).
        replace: overwrite an existing channel of that name.
        device: auto (None), cpu, cuda, cuda:N or mps.
        amp: None takes the fast path where it helps (bf16 + channels_last on GPU, channels_last on CPU);
            True forces bf16 autocast; False is eager float32.
        brain_mask: a brain mask on the case's grid; default for seg the case's own ``<case>_mask.nii.gz`` when it
            has one (for ct none: the skull a whole-head MR shows is what a CT is made of).
        no_brain_mask: ignore any brain mask (the model sees the whole head).
        n4: N4 bias-field correction of each input sequence first; None: ``n4_default(channel)`` (on for seg).
    """

    case: Path
    channel: str
    model: str | None = None
    out: Path | None = None
    replace: bool = False
    device: str | None = None
    amp: bool | None = None
    brain_mask: Path | None = None
    no_brain_mask: bool = False
    n4: bool | None = None


def find_brain_mask(case_id: str, folder: Path) -> Path | None:
    """The case's own brain mask (``<case>_mask.nii.gz`` or ``-mask``, ``.nii``), as ``medsynth prepare`` writes it."""
    for name in (f"{case_id}{sep}mask{ext}" for sep in ("_", "-") for ext in (".nii.gz", ".nii")):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_brain_mask(path: Path, reference: Path, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """The mask as booleans on the case's grid; one sentence when it is on another grid or empty."""
    array, mask_affine = read_nifti(path)
    check_same_grid(path, array.shape, mask_affine, reference, shape, affine)
    mask = np.asarray(array) > 0
    if not mask.any():
        raise MedSynthError(f"The brain mask {path} is empty (no voxel above zero).")
    return mask


def _read_case(files: dict[str, Path]) -> tuple[dict[str, np.ndarray], np.ndarray, Path]:
    """The MR sequences of a case, checked to share one grid; returns arrays, affine and the reference file."""
    arrays: dict[str, np.ndarray] = {}
    reference: tuple[Path, np.ndarray, tuple[int, ...]] | None = None
    for channel in (c for c in MR_SEQUENCES if c in files):
        array, affine = read_nifti(files[channel])
        if reference is None:
            reference = (files[channel], affine, array.shape)
        else:
            check_same_grid(files[channel], array.shape, affine, reference[0], reference[2], reference[1])
        if not np.any(array):
            raise MedSynthError(f"{files[channel]} is empty (every voxel is zero).")
        arrays[channel] = array
    if reference is None:
        raise MedSynthError("The case has no MR sequence (t1, t1ce, t2 or flair) to work from.")
    return arrays, reference[1], reference[0]


def default_channel_model(channel: str, registry: ModelRegistry | None = None) -> str | None:
    """The default model for ``channel``: the first shipped model of a built-in family that adds it."""
    registry = registry or default_registry()
    for model_id in registry.ids("channel"):
        family = registry.family_for(model_id)
        if family.capabilities.channel == channel:
            return model_id
    return None


def channels_offered(registry: ModelRegistry | None = None) -> list[str]:
    """The channels some installed family can add (``seg``, ``ct``, ...)."""
    registry = registry or default_registry()
    return sorted({f.capabilities.channel for f in registry.families() if f.capabilities.channel})


def resolve_channel_model(channel: str, model: str | None, registry: ModelRegistry | None = None):
    """The loaded channel model for ``channel`` (default, shipped id or folder); one sentence if it is unknown or of the wrong kind."""
    registry = registry or default_registry()
    offered = channels_offered(registry)
    if channel not in offered:
        raise MedSynthError(f"Unknown channel '{channel}'; add-channel makes {' or '.join(offered)}.")
    name = model or default_channel_model(channel, registry)
    try:
        family = registry.family_for(name) if name else None
    except MedSynthError:
        family = None
    if family is None or name == family.name or model_folder(name) is None:
        known = ", ".join(row["id"] for row in channel_models(registry) if row["channel"] == channel) or "none installed"
        raise MedSynthError(f"Unknown {channel} model '{name}'; known: {known} (or give a model folder).")
    if family.capabilities.channel != channel:
        raise MedSynthError(
            f"The model '{name}' is a '{family.architecture}' model; the {channel} channel needs a model that adds it "
            f"such as {default_channel_model(channel, registry)}."
        )
    return registry.get(name)


def channel_models(registry: ModelRegistry | None = None) -> list[dict]:
    """The shipped channel models: id, channel, card summary (``medsynth models``, ``GET /channel-models``)."""
    registry = registry or default_registry()
    rows = []
    for model_id in registry.ids("channel"):
        family = registry.family_for(model_id)
        folder = shipped_folder(model_id)
        try:
            card = read_card(folder)
        except MedSynthError as exc:
            rows.append({"id": model_id, "channel": None, "error": str(exc)})
            continue
        channel = family.capabilities.channel
        rows.append(
            {
                "id": model_id,
                "channel": channel,
                "kind": card.kind,
                "family": family.name,
                "capabilities": family.capabilities.to_json(),
                "architecture": family.architecture,
                "inputs": list(card.architecture.get("sequences", MR_SEQUENCES)),
                "spacing": list(card.spacing),
                "patch": card.architecture.get("patch"),
                "default": default_channel_model(channel, registry) == model_id,
                "training_data": card.training_data,
                "metrics": card.metrics.get("evaluation", {}),
                "weights": f"built-in ({folder})",
                "weights_sha256": card.weights.get("sha256", ""),
            }
        )
    return rows


def _segmentation_nrrd(path: Path, codes: np.ndarray, affine: np.ndarray) -> None:
    """``codes`` (BraTS labels, RAS affine) as a Slicer .seg.nrrd: one segment per label, BraTS names and colours."""
    import slicerio

    segments = [
        {
            "id": BRATS_LABELS[code],
            "name": BRATS_LABEL_NAMES[code],
            "color": list(BRATS_LABEL_COLOURS[code]),
            "labelValue": code,
            "layer": 0,
            "extent": [0, codes.shape[0] - 1, 0, codes.shape[1] - 1, 0, codes.shape[2] - 1],
        }
        for code in sorted(BRATS_LABELS)
    ]
    ijk_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=float)
    segmentation = {"voxels": codes.astype(np.uint8), "ijkToLPS": ijk_to_lps, "segments": segments}
    slicerio.write_segmentation(str(path), segmentation, compression_level=1)  # level 9 costs seconds, saves little on labels


def _write_together(outputs: list[tuple[Path, Callable[[Path], None]]]) -> None:
    """Write every output under a temporary name, then rename them all, the first output last: it is the commit
    point (the channel's NIfTI; the others are views of it). On any failure none is left behind; temporaries that
    a killed run left are removed first."""
    temps: list[tuple[Path, Path]] = []
    for final, _ in outputs:
        for stale in final.parent.glob(f".{final.name}.*.partial*"):
            stale.unlink(missing_ok=True)
    try:
        for final, writer in outputs:
            tmp = final.with_name(f".{final.name}.{os.getpid()}.partial{''.join(final.suffixes[-2:])}")
            temps.append((tmp, final))
            writer(tmp)
        killpoint("add-channel.written")
        done: list[Path] = []
        try:
            for tmp, final in reversed(temps):
                os.replace(tmp, final)
                done.append(final)
                killpoint("add-channel.renamed")
        except BaseException:
            for final in done:
                final.unlink(missing_ok=True)
            raise
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def add_channel(request: AddChannelRequest, progress: Callable[[float, str], None] | None = None) -> dict:
    """Predict ``request.channel`` for the case and write it beside the case; returns what was done.

    Returns ``{"channel", "model", "inputs", "brain_mask" (the mask file used, or None), "n4" (whether the inputs
    were bias-corrected), "n4_seconds", "written": [absolute paths], "seconds", "network_seconds"}``, and
    for seg the ``tumour_outcome`` (``tumour_found`` False: "no tumour found", reported as such, not an error).
    """
    from .device import select_device

    started = time.monotonic()
    report = progress or (lambda fraction, message: None)
    registry = default_registry()
    offered = channels_offered(registry)
    if request.channel not in offered:
        raise MedSynthError(f"Unknown channel '{request.channel}'; add-channel makes {' or '.join(offered)}.")
    if request.brain_mask is not None and request.no_brain_mask:
        raise MedSynthError("Give a brain mask or ask for none, not both.")
    case_id, files, folder = find_case_files(Path(request.case))
    out = Path(request.out) if request.out is not None else folder
    if out.exists() and not out.is_dir():
        raise MedSynthError(f"The output path {out} is a file, not a folder; choose another --out.")
    nifti = out / f"{case_id}_{request.channel}.nii.gz"
    targets = [nifti] + ([out / f"{case_id}_seg.seg.nrrd"] if request.channel == "seg" else [])
    existing = [nifti] if nifti.exists() else []  # a view without its NIfTI is what a killed run left: made again
    if existing and not request.replace:
        raise MedSynthError(f"{existing[0]} already exists; add --replace to overwrite it.")
    model = resolve_channel_model(request.channel, request.model, registry)
    device = select_device(request.device)
    report(0.05, f"reading {case_id}")
    arrays, affine, reference = _read_case(files)
    own_mask = find_brain_mask(case_id, folder) if request.channel == "seg" else None  # a CT needs the skull the head shows
    mask_file = None if request.no_brain_mask else (Path(request.brain_mask) if request.brain_mask else own_mask)
    brain = None
    if mask_file is not None:
        brain = _read_brain_mask(mask_file, reference, arrays[next(iter(arrays))].shape, affine)
    n4 = n4_default(request.channel) if request.n4 is None else bool(request.n4)
    if n4:
        report(0.1, f"correcting the bias field (N4) of {', '.join(arrays)}")
    t = time.monotonic()
    arrays = model_inputs(arrays, affine, brain, n4=n4, names=files)
    n4_seconds = time.monotonic() - t if n4 else 0.0
    array = model.predict(arrays, affine, device=device, amp=request.amp, progress=report)
    if brain is not None and request.channel == "seg":
        array[~brain] = 0
    report(0.9, f"writing {nifti.name}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MedSynthError(f"The output folder {out} cannot be created ({exc.strerror}); choose another --out.") from None
    outputs: list[tuple[Path, Callable[[Path], None]]] = [(nifti, lambda p: write_nifti(p, array, affine))]
    if request.channel == "seg":
        outputs.append((targets[1], lambda p: _segmentation_nrrd(p, array, affine)))
    _write_together(outputs)
    outcome = tumour_outcome(array, affine) if request.channel == "seg" else {}
    report(1.0, f"wrote {', '.join(p.name for p in targets)}" + (f"; {outcome_sentence(outcome)}" if outcome else ""))
    return {
        **outcome,
        "channel": request.channel,
        "model": model.id,
        "inputs": list(arrays),
        "brain_mask": str(mask_file.resolve()) if mask_file is not None else None,
        "n4": n4,
        "n4_seconds": round(n4_seconds, 3),
        "written": [str(p.resolve()) for p in targets],
        "seconds": round(time.monotonic() - started, 3),
        "network_seconds": round(model.network_seconds, 3),
    }
