"""Check every file of a case before training: readable, 3D, finite, one grid per case, valid label codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from MedSynthLib.conventions import BRATS_LABELS, LABEL_CHANNEL, NNUNET_FROM_BRATS

from ..errors import MedSynthError
from ..inputcheck import AFFINE_TOLERANCE_MM, check_same_grid
from ..nifti_io import read_nifti
from .layouts import Case

__all__ = ["CaseProblem", "validate_case", "AFFINE_TOLERANCE_MM"]

_BRATS_FROM_NNUNET = {v: k for k, v in NNUNET_FROM_BRATS.items()}
_VALID_BRATS = {0, *BRATS_LABELS}


class CaseProblem(MedSynthError):
    """A case that cannot be trained on; the message names the file and the problem."""

    def __init__(self, case: str, path: Path | None, problem: str) -> None:
        self.case = case
        self.path = path
        self.problem = problem
        super().__init__(problem)


def validate_case(case: Case, channels: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read and check the requested channels of a case; returns arrays (labels as BraTS codes) and the affine."""
    missing = [c for c in channels if c not in case.files]
    if missing:
        first = next(iter(case.files.values()), None)
        where = first.parent if first is not None else case.id
        raise CaseProblem(case.id, None, f"Case {case.id} in {where} has no {', '.join(missing)} file.")
    arrays: dict[str, np.ndarray] = {}
    reference: tuple[str, Path, np.ndarray] | None = None
    for channel in channels:
        path = case.files[channel]
        try:
            array, affine = read_nifti(path)
        except MedSynthError as exc:
            raise CaseProblem(case.id, path, str(exc)) from None
        if reference is None:
            reference = (channel, path, affine)
            shape = array.shape
        else:
            try:
                check_same_grid(path, array.shape, affine, reference[1], shape, reference[2])
            except MedSynthError as exc:
                raise CaseProblem(case.id, path, str(exc)) from None
        if channel == LABEL_CHANNEL:
            array = _labels(case, path, array)
        elif not np.any(array):
            raise CaseProblem(case.id, path, f"{path} is empty (every voxel is zero).")
        arrays[channel] = array
    assert reference is not None
    return arrays, reference[2]


def _labels(case: Case, path: Path, array: np.ndarray) -> np.ndarray:
    if np.issubdtype(array.dtype, np.floating):
        if not np.array_equal(array, np.round(array)):
            raise CaseProblem(case.id, path, f"{path} is a label map with non-integer values.")
    codes = set(np.unique(array).astype(np.int64).tolist())
    if case.nnunet_labels:
        bad = codes - set(_BRATS_FROM_NNUNET)
        if bad:
            raise CaseProblem(case.id, path, f"{path} holds nnU-Net label(s) {sorted(bad)}; expected 0-3 (BraTS regions).")
        lut = np.zeros(max(_BRATS_FROM_NNUNET) + 1, dtype=np.uint8)
        for nnunet, brats in _BRATS_FROM_NNUNET.items():
            lut[nnunet] = brats
        return lut[array.astype(np.int64)]
    bad = codes - _VALID_BRATS
    if bad:
        raise CaseProblem(case.id, path, f"{path} holds label(s) {sorted(bad)}; BraTS labels are 0, 1 (NCR), 2 (ED) and 4 (ET).")
    return array.astype(np.uint8)
