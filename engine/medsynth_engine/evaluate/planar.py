"""2D sets in the evaluation: cases of single-slice NIfTI files, as the 2D families (dcgan2d, stylegan2d) write them.

A set is 2D when the files of its first case hold one slice (one axis of length 1); every later case must then
be a slice too (a volume among slices is refused, naming its file). A 2D synthetic set is judged against real
slices, or against real volumes cut into slices as the 2D training cuts them (``sliced``); a 3D one only against
volumes. A slice goes through the
training preprocessing in its plane (reoriented to RAS, resampled to the grid's pixel size with the same
anti-alias, a box centred on the head, [-1, 1] per channel), so slices of any in-plane resolution compare on
one grid, as volumes do in 3D.
"""

from __future__ import annotations

import json
import math

import numpy as np
import SimpleITK as sitk

from MedSynthLib.conventions import LABEL_CHANNEL

from ..data.preprocess import PreprocessSpec, crop_and_scale, resample_to_spacing
from ..errors import MedSynthError
from ..nifti_io import read_header
from .sets import CaseSet, LoadedCase, read_case

__all__ = ["set_dims", "pair_dims", "recorded_subjects", "plane", "plane_spec", "preprocess_plane"]

_WORDS = {2: "2D slices (single-slice NIfTI)", 3: "3D volumes"}


def set_dims(case_set: CaseSet) -> int:
    """2 when the first case's first file holds a single slice, else 3 (only its header is read)."""
    case = case_set.cases[0]
    shape = read_header(next(iter(case.files.values())))
    return 2 if sorted(shape)[0] == 1 and sorted(shape)[1] > 1 else 3


def pair_dims(synthetic: CaseSet, real: CaseSet) -> tuple[int, bool]:
    """The dimensionality an evaluation runs in, and whether the real set's volumes are to be sliced (2D synthetic
    slices against 3D real cases); 3D synthetic volumes against real slices are refused in one sentence."""
    syn_dims, real_dims = set_dims(synthetic), set_dims(real)
    if syn_dims == 3 and real_dims == 2:
        raise MedSynthError(
            f"The synthetic set ({synthetic.folder}) holds {_WORDS[3]} but the real set ({real.folder}) holds {_WORDS[2]}; "
            "a 3D model is judged against real volumes."
        )
    return syn_dims, syn_dims == 2 and real_dims == 3


def recorded_subjects(case_set: CaseSet) -> dict[str, str]:
    """Case id -> subject, as a 2D set's ``manifest.json`` records it (``"subject"`` of each entry of ``cases``);
    empty when the set records none, and then every slice counts as its own subject."""
    path = case_set.folder / "manifest.json"
    try:
        cases = json.loads(path.read_text()).get("cases", []) if path.is_file() else []
    except (OSError, ValueError, AttributeError) as exc:
        raise MedSynthError(f"The {case_set.name} set's {path} cannot be read as a manifest ({exc}); fix or remove it.") from None
    return {str(c["id"]): str(c["subject"]) for c in cases if isinstance(c, dict) and "id" in c and c.get("subject") is not None}


def plane(case: LoadedCase, case_set: CaseSet, index: int) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """The case's arrays as (X, Y) slices and their in-plane pixel size (mm); a volume in a 2D set is refused."""
    shape = next(iter(case.arrays.values())).shape
    flat = [axis for axis, n in enumerate(shape) if n == 1]
    if not flat:
        path = next(iter(case_set.cases[index].files.values()))
        raise MedSynthError(f"{path} holds a volume of {'x'.join(map(str, shape))} voxels, but the {case_set.name} set holds single slices.")
    axis = flat[-1]
    spacing = tuple(s for a, s in enumerate(case.spacing) if a != axis)
    return {c: np.take(a, 0, axis=axis) for c, a in case.arrays.items()}, spacing  # type: ignore[return-value]


def plane_spec(case_set: CaseSet, channels: tuple[str, ...], grid: int) -> PreprocessSpec:
    """The synthetic set's own in-plane grid, coarsened so no side exceeds ``grid`` pixels (same field of view)."""
    arrays, spacing = plane(read_case(case_set.cases[0], channels), case_set, 0)
    shape = next(iter(arrays.values())).shape
    factor = max(1.0, max(shape) / grid)
    return PreprocessSpec(shape=tuple(max(16, math.ceil(n / factor)) for n in shape), spacing=tuple(s * factor for s in spacing))  # type: ignore[arg-type]


def preprocess_plane(arrays: dict[str, np.ndarray], spacing: tuple[float, float], spec: PreprocessSpec) -> dict[str, np.ndarray]:
    """(X, Y) slices (RAS) at ``spacing`` -> the 2D ``spec``'s grid: images in [-1, 1], labels as BraTS codes."""
    resampled: dict[str, np.ndarray] = {}
    for channel, array in arrays.items():
        label = channel == LABEL_CHANNEL
        image = sitk.GetImageFromArray(np.ascontiguousarray(array.astype(np.uint8 if label else np.float32).T))
        image.SetSpacing([float(s) for s in spacing])
        out = sitk.GetArrayFromImage(resample_to_spacing(image, spec.spacing, label)).T
        resampled[channel] = out if label else np.clip(out, float(array.min()), float(array.max()))  # as preprocess_case
    return crop_and_scale(resampled, spec)[0]
