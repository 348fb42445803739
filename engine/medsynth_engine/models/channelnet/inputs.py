"""MR input of the channel models (segnet, mr2ct): which sequences a case has, normalised inside the head.

Both models take the four MR sequences as eight input channels: each sequence normalised (clipped to its
0.5-99.5 percentiles inside the head, then zero mean and unit variance there), followed by one constant
presence map per sequence (1 where the sequence was given, 0 where it is missing and its image is zeros).
Training drops sequences at random, so one network serves a case with any subset of t1, t1ce, t2, flair.
The phantom and real scanners differ in intensity scale; this normalisation removes the scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.layouts import find_cases
from ...data.preprocess import PreprocessSpec, preprocess_case, resample_to_spacing, to_sitk
from ...data.validate import CaseProblem, validate_case
from ...errors import MedSynthError

__all__ = [
    "SEQUENCES",
    "head_mask",
    "normalise",
    "assemble",
    "drop_sequences",
    "ModelGrid",
    "PairedSet",
    "load_paired_set",
    "HU_RANGE",
]

SEQUENCES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
#: CT numbers the ct channel may take (air to dense cortical bone), the range scanners store.
HU_RANGE = (-1024.0, 3071.0)
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5


def head_mask(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Voxels above 10% of the 99th percentile in any given sequence (the skull-stripped brain or the head)."""
    mask: np.ndarray | None = None
    for array in arrays.values():
        high = float(np.percentile(array, 99.0))
        part = array > 0.1 * high if high > 0 else array > array.min()
        mask = part if mask is None else mask | part
    if mask is None:
        raise MedSynthError("No MR sequence (t1, t1ce, t2 or flair) was given.")
    return mask


def normalise(array: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One sequence clipped to its head percentiles, then zero mean, unit variance inside the head."""
    inside = array[mask] if mask.any() else array.ravel()
    low, high = np.percentile(inside, [LOW_PERCENTILE, HIGH_PERCENTILE])
    clipped = np.clip(array.astype(np.float32), low, high)
    values = clipped[mask] if mask.any() else clipped.ravel()
    std = float(values.std())
    return ((clipped - float(values.mean())) / (std if std > 1e-6 else 1.0)).astype(np.float32)


def assemble(arrays: dict[str, np.ndarray], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """(8, X, Y, Z) network input from whichever sequences ``arrays`` holds: normalised images, then presence maps."""
    given = {c: a for c, a in arrays.items() if c in SEQUENCES}
    if not given:
        raise MedSynthError("The case has no MR sequence (t1, t1ce, t2 or flair) to work from.")
    shape = shape or next(iter(given.values())).shape
    mask = head_mask(given)
    out = np.zeros((2 * len(SEQUENCES), *shape), dtype=np.float32)
    for i, channel in enumerate(SEQUENCES):
        if channel in given:
            out[i] = normalise(given[channel], mask)
            out[len(SEQUENCES) + i] = 1.0
    return out


def corner_holding(voxel: torch.Tensor, shape: tuple[int, ...], patch: int, generator: torch.Generator) -> list[int]:
    """A patch corner that puts ``voxel`` at a uniformly random place inside the patch (clipped to the volume).

    Not at the patch's centre: a UNet trained on patches centred on tumour learns that a patch's centre is tumour
    (zero padding tells it where the centre is), and sliding-window inference, which weights window centres most,
    turns that into tumour where the image shows none. Measured on the seg-phantom trained that way, healthy heads,
    T1 alone: tumour probability 0.14-0.15 at window centres, 0.04 24 voxels out, 0.01-0.02 at the edges; Gaussian
    window weighting labelled up to 4x the voxels equal weighting did (bench/bench_window_bias.py, add_channel.md).
    """
    offsets = torch.randint(patch, (len(shape),), generator=generator)
    return [min(max(int(c) - int(o), 0), s - patch) for c, o, s in zip(voxel, offsets, shape, strict=True)]


def drop_sequences(x: torch.Tensor, generator: torch.Generator, keep: float, t1_only: float = 0.0) -> torch.Tensor:
    """Sequence dropout for training: each present sequence is kept with probability ``keep`` (at least one stays).

    ``t1_only`` is the share of samples reduced to T1 alone (where T1 is present), the common clinical case.
    """
    n = len(SEQUENCES)
    x = x.clone()
    for b in range(x.shape[0]):
        present = x[b, n:, 0, 0, 0] > 0.5
        draw = torch.rand(n + 1, generator=generator)
        kept = present & (draw[:n] < keep)
        if present[0] and draw[n] < t1_only:
            kept = torch.zeros_like(present)
            kept[0] = True
        if not kept.any():
            kept[int(torch.nonzero(present)[int(draw[0] * int(present.sum())) % int(present.sum())])] = True
        for i in range(n):
            if not kept[i]:
                x[b, i] = 0.0
                x[b, n + i] = 0.0
    return x


@dataclass
class ModelGrid:
    """A volume resampled to the model's spacing (RAS), and the way back onto the case's own grid."""

    original: sitk.Image
    resampled: sitk.Image

    @staticmethod
    def of(array: np.ndarray, affine: np.ndarray, spacing: tuple[float, float, float]) -> ModelGrid:
        original = to_sitk(np.zeros(array.shape, dtype=np.uint8), affine)
        image = resample_to_spacing(sitk.DICOMOrient(to_sitk(array.astype(np.float32), affine), "RAS"), spacing, label=False)
        return ModelGrid(original=original, resampled=image)

    def to_model(self, array: np.ndarray, affine: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
        """Another channel of the same case on the model grid (X, Y, Z)."""
        image = resample_to_spacing(sitk.DICOMOrient(to_sitk(array.astype(np.float32), affine), "RAS"), spacing, label=False)
        return sitk.GetArrayFromImage(image).transpose(2, 1, 0)

    def model_array(self) -> np.ndarray:
        return sitk.GetArrayFromImage(self.resampled).transpose(2, 1, 0)

    def back(self, array: np.ndarray, fill: float) -> np.ndarray:
        """A model-grid array (X, Y, Z) resampled linearly onto the case's original grid (X, Y, Z)."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(array.astype(np.float32).transpose(2, 1, 0)))
        image.CopyInformation(self.resampled)
        out = sitk.Resample(image, self.original, sitk.Transform(), sitk.sitkLinear, float(fill), sitk.sitkFloat32)
        return sitk.GetArrayFromImage(out).transpose(2, 1, 0)


@dataclass
class PairedSet:
    """Training cases on the model grid: network inputs (N, 8, X, Y, Z) and targets (N, X, Y, Z)."""

    layout: str
    inputs: torch.Tensor
    targets: torch.Tensor
    sequences: dict[str, int]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def load_paired_set(
    folder: Path,
    spec: PreprocessSpec,
    target: str,
    *,
    skip_bad: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PairedSet:
    """Every case with ``target`` (seg or ct) and at least one MR sequence, on the model grid.

    Cases may have different subsets of sequences. CT comes back in HU: the preprocessing scales each channel
    to [-1, 1] by its percentiles, and that scale is inverted here (the top 0.5% of bone is clipped).
    """
    layout, cases = find_cases(Path(folder))
    inputs, targets, problems = [], [], []
    counts = dict.fromkeys(SEQUENCES, 0)
    usable = [c for c in cases if target in c.files and any(s in c.files for s in SEQUENCES)]
    if not usable:
        what = "tumour labels (seg)" if target == LABEL_CHANNEL else "CT (ct)"
        raise MedSynthError(f"No case in {folder} has both {what} and an MR sequence; this model trains on paired MR and {target}.")
    for done, case in enumerate(usable, start=1):
        channels = tuple(c for c in (*SEQUENCES, target) if c in case.files)
        try:
            arrays, affine = validate_case(case, channels)
        except CaseProblem as exc:
            problems.append({"case": exc.case, "file": str(exc.path or ""), "problem": exc.problem})
            continue
        out, scale = preprocess_case(arrays, affine, spec)
        mr = {c: out[c] for c in SEQUENCES if c in out}
        inputs.append(assemble(mr))
        if target == LABEL_CHANNEL:
            targets.append(out[target].astype(np.uint8))
        else:
            low, high = scale[target]
            targets.append(((out[target] + 1.0) / 2.0 * (high - low) + low).astype(np.float32))
        for c in mr:
            counts[c] += 1
        if progress:
            progress(done, len(usable))
    if problems and not skip_bad:
        raise MedSynthError(f"{problems[0]['problem'].rstrip('.')}; fix the data or use --skip-bad to train on the other cases.")
    if len(inputs) < 2:
        raise MedSynthError(f"Training needs at least 2 usable cases with MR and {target}; {folder} has {len(inputs)}.")
    return PairedSet(
        layout=layout,
        inputs=torch.from_numpy(np.stack(inputs)),
        targets=torch.from_numpy(np.stack(targets)),
        sequences=counts,
        skipped=problems,
    )
