"""A 3D real set judged against a 2D model or set: each real volume sliced the way the 2D families' training slices it.

A user's real data are 3D cases; a 2D model makes single slices. Each real volume goes through the 2D training's
own slicer (``models.slices2d.slices.slice_case``: the shared preprocessing onto a cube of the synthetic slices'
pixel size and slice thickness, then the ``--slices-per-case`` axial slices with the most head plus tumour),
and each kept slice is put back on its case's intensity scale, as a generated slice is written on the training
data's scale. From there a real slice takes exactly the path of a synthetic one (``planar.preprocess_plane``),
so like is compared with like. Every slice keeps its case as its subject, for TSTR's per-subject split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from MedSynthLib.conventions import LABEL_CHANNEL

from ..data.preprocess import PreprocessSpec
from ..errors import MedSynthError
from ..models.slices2d.options import DEFAULT_SLICES_PER_CASE
from ..models.slices2d.slices import slice_case
from .planar import plane
from .sets import CaseSet, LoadedCase, read_case

__all__ = ["Slicing", "slicing_for", "slice_planes", "check_slices_per_case", "DEFAULT_SLICES_PER_CASE"]


def check_slices_per_case(value: object) -> int:
    """``--slices-per-case`` as given, or one sentence when it is not a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MedSynthError(f"--slices-per-case must be a positive whole number, not {value!r}.")
    return value


@dataclass(frozen=True)
class Slicing:
    """How a 3D set is cut into 2D slices: the training grid (X, Y, Z) it is preprocessed onto and slices per case."""

    spec: PreprocessSpec
    per_case: int

    @property
    def per_volume(self) -> int:
        """Slices each volume gives (the training slicer keeps at most the grid's depth)."""
        return min(self.per_case, self.spec.shape[2])

    def describe(self, n_cases: int) -> dict[str, Any]:
        """What the report says about the slicing of the real set."""
        return {
            "from": "3D volumes",
            "cases": n_cases,
            "slices": n_cases * self.per_volume,
            "slices_per_case": self.per_case,
            "axis": "axial",
            "selection": "per case the axial slices with the most head plus tumour voxels, as the 2D training takes them",
            "grid": {"shape": list(self.spec.shape), "spacing": [round(s, 4) for s in self.spec.spacing]},
        }


def slicing_for(synthetic: CaseSet, channels: tuple[str, ...], per_case: int) -> Slicing:
    """The training grid behind the synthetic slices: their pixel grid in plane, as deep as it is wide, at their
    slice thickness (a 2D family's training cube), keeping ``per_case`` (checked by the caller) slices of each volume."""
    first = read_case(synthetic.cases[0], channels)
    arrays, spacing = plane(first, synthetic, 0)
    shape = next(iter(arrays.values())).shape
    flat = [axis for axis, n in enumerate(next(iter(first.arrays.values())).shape) if n == 1]
    thickness = first.spacing[flat[-1]]  # the axis ``plane`` takes the slice across
    return Slicing(PreprocessSpec(shape=(*shape, max(shape)), spacing=(*spacing, thickness)), per_case)  # type: ignore[arg-type]


def slice_planes(case: LoadedCase, slicing: Slicing) -> list[tuple[dict[str, np.ndarray], tuple[float, float]]]:
    """A real volume's kept slices, each as (X, Y) arrays on its case's intensity scale and their pixel size."""
    images, labels, scale = slice_case(case.arrays, case.affine, slicing.spec, slicing.per_case)
    names = [c for c in case.arrays if c != LABEL_CHANNEL]
    spacing = (float(slicing.spec.spacing[0]), float(slicing.spec.spacing[1]))
    planes = []
    for k in range(len(images)):
        arrays = {c: (images[k, i] + 1.0) / 2.0 * (scale[c][1] - scale[c][0]) + scale[c][0] for i, c in enumerate(names)}
        if labels is not None:
            arrays[LABEL_CHANNEL] = labels[k]
        planes.append((arrays, spacing))
    return planes
