"""A case folder read for display: every channel as a RAS-ordered array (x right, y anterior, z superior)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..conventions import LABEL_CHANNEL
from ..scene import case_channel_files

__all__ = ["CaseImages", "read_case"]


@dataclass
class CaseImages:
    """The channels of one case, reoriented to the closest RAS axes so views need no per-file logic."""

    case_id: str
    spacing: tuple[float, float, float]
    images: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None
    affine: np.ndarray | None = None  # RAS affine of the reoriented arrays (voxel -> mm), for masks drawn on them

    @property
    def shape(self) -> tuple[int, int, int]:
        first = next(iter(self.images.values()), self.labels)
        return tuple(first.shape)

    def focus(self) -> tuple[int, int, int]:
        """The voxel to centre the views on: the tumour's centre if there is one, else the volume's centre."""
        if self.labels is not None and self.labels.any():
            return tuple(int(round(c)) for c in np.argwhere(self.labels > 0).mean(axis=0))
        return tuple(s // 2 for s in self.shape)


def read_case(case_dir: Path) -> CaseImages:
    """Read a BraTS-style case folder with nibabel; every file must share one grid."""
    import nibabel as nib

    case_dir = Path(case_dir)
    files = case_channel_files(case_dir)
    case = None
    for channel, path in files.items():
        try:
            image = nib.as_closest_canonical(nib.load(str(path)))
            data = np.asanyarray(image.dataobj)
        except Exception as exc:  # nibabel raises many types for broken files
            raise ValueError(f"{path} is not a readable NIfTI file ({exc.__class__.__name__}).") from None
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise ValueError(f"{path} is not a 3D volume.")
        spacing = tuple(float(s) for s in image.header.get_zooms()[:3])
        if case is None:
            case = CaseImages(case_dir.name, spacing, affine=np.asarray(image.affine, dtype=float))
        elif data.shape != case.shape:
            raise ValueError(f"{path} has shape {data.shape}, unlike the case's other files {case.shape}.")
        if channel == LABEL_CHANNEL:
            case.labels = data.astype(np.uint8)
        else:
            case.images[channel] = data
    return case
