"""Validation of the phantom's contrast against real population-average MRI (see bench/validate_phantom.py).

Renders the neutral subject (the atlas itself: no deformation, bias, noise or tumour) and correlates, inside
the brain, its T1 with the MNI ICBM152 2009a T1 template (an average of 152 real T1 scans) and, when the
optional swane-supplement wheel is installed, its FLAIR with the doMAP population-mean FLAIR; the two real
templates correlated with each other serve as the reference.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from .atlas import AtlasLoader, nilearn_data_dir
from .params import neutral_subject
from .render import Grid, render


def resample_to(grid: Grid, image: nib.Nifti1Image) -> np.ndarray:
    """Trilinear samples of ``image`` at the centres of ``grid``'s voxels."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij"), -1).reshape(-1, 3)
    world = ijk @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    inv = np.linalg.inv(image.affine)
    vox = world @ inv[:3, :3].T + inv[:3, 3]
    data = np.asarray(image.dataobj, dtype=np.float32)
    return ndimage.map_coordinates(data, vox.T, order=1, mode="constant").reshape(grid.shape)


def correlations(spacing: float = 2.0) -> dict[str, float]:
    atlas = AtlasLoader().get()
    shape = tuple(int(round(n / spacing)) for n in (180, 216, 180))
    grid = Grid.centred(shape, (spacing,) * 3, atlas.brain_centre_mm)
    phantom = render(neutral_subject(), atlas, grid, ("t1", "flair"))
    brain = phantom["t1"] > 0
    real_t1 = resample_to(grid, nib.load(str(nilearn_data_dir() / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")))
    r = lambda a, b: float(np.corrcoef(a[brain], b[brain])[0, 1])  # noqa: E731
    out = {"phantom T1 vs real T1 template": r(phantom["t1"], real_t1)}
    spec = importlib.util.find_spec("swane_supplement")
    if spec is not None:
        folder = Path(next(iter(spec.submodule_search_locations))) / "resources" / "doMAP_template"
        real_flair = resample_to(grid, nib.load(str(folder / "mean_flair.nii.gz")))
        out["phantom FLAIR vs real mean FLAIR"] = r(phantom["flair"], real_flair)
        out["reference: real T1 template vs real mean FLAIR"] = r(real_t1, real_flair)
        out["reference: phantom T1 vs real mean FLAIR"] = r(phantom["t1"], real_flair)
    return out
