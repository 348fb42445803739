"""Real anatomy for the phantom: the MNI ICBM152 2009 grey/white-matter maps shipped inside nilearn's wheel.

The maps are read straight from nilearn's package data (no download, and nilearn itself is not imported,
which would cost seconds). CSF is what the brain mask holds beyond grey and white matter. Two derived
maps are precomputed once per process: the distance (mm) from the brain surface outwards, used for the
skull and scalp shells, and the centre of the deep CSF (the lateral ventricles).

Copyright notice of the maps (ICBM 2009a nonlinear symmetric): Copyright (C) 1993-2009 Louis Collins,
McConnell Brain Imaging Centre, Montreal Neurological Institute, McGill University. Used under its
permissive licence; see Resources/LICENSES/MNI-ICBM152.txt.
"""

from __future__ import annotations

import importlib.util
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..errors import MedSynthError

__all__ = ["Atlas", "AtlasLoader", "nilearn_data_dir"]

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


def nilearn_data_dir() -> Path:
    """Folder of nilearn's packaged data, found without importing nilearn."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise MedSynthError("The phantom needs the MNI152 tissue maps from nilearn; run 'make setup' to install it.")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@dataclass(frozen=True)
class Atlas:
    """Tissue maps on the MNI 1 mm grid (RAS affine), as float32 arrays in 0-1.

    Attributes:
        maps: array (4, X, Y, Z): white matter, grey matter, CSF, brain mask.
        outer_distance_mm: distance from the brain surface (0 inside), for the head shells.
        affine: voxel to RAS mm.
        ventricle_centre_mm: RAS centre of the deep CSF.
        ventricle_radius_mm: radius of a sphere of the deep CSF's volume.
        brain_centre_mm: centre of the brain's bounding box.
        tumour_sites_mm: RAS points of supratentorial white matter where tumours may be seeded.
        sha256: hashes of the source files, recorded as the phantom's "weights".
        tensors: what the renderer derives from the maps once per device and keeps (see ``render``).
    """

    maps: np.ndarray
    outer_distance_mm: np.ndarray
    affine: np.ndarray
    ventricle_centre_mm: np.ndarray
    ventricle_radius_mm: float
    brain_centre_mm: np.ndarray
    tumour_sites_mm: np.ndarray
    sha256: dict[str, str]
    tensors: dict = field(default_factory=dict, compare=False, repr=False)


#: Atlases some loader still holds, by source folder: a second loader in the process (another model, a job
#: kind that renders a study) shares the one already built instead of spending seconds building its own;
#: once no loader holds it, it is freed (the engine's model cache decides that by dropping the plugin).
_SHARED: weakref.WeakValueDictionary[str, Atlas] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


class AtlasLoader:
    """Loads the atlas once and keeps it (thread-safe); one loader belongs to one phantom model object."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._data_dir = data_dir
        self._atlas: Atlas | None = None

    def get(self) -> Atlas:
        with _SHARED_LOCK:
            if self._atlas is None:
                folder = self._data_dir or nilearn_data_dir()
                key = str(Path(folder).resolve())
                atlas = _SHARED.get(key)
                if atlas is None:
                    atlas = _build_atlas(folder)
                    _SHARED[key] = atlas
                self._atlas = atlas
            return self._atlas


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build_atlas(data_dir: Path) -> Atlas:
    paths = {key: data_dir / name for key, name in _FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise MedSynthError(f"The MNI152 map {path} is missing; reinstall nilearn with 'make setup'.")
    images = {key: nib.load(str(path)) for key, path in paths.items()}
    affine = images["t1"].affine.astype(np.float64)
    t1 = np.asarray(images["t1"].dataobj, dtype=np.float32)
    gm = np.asarray(images["gm"].dataobj, dtype=np.float32)
    wm = np.asarray(images["wm"].dataobj, dtype=np.float32)
    gm /= max(float(gm.max()), 1.0)
    wm /= max(float(wm.max()), 1.0)
    # nilearn's template is skull-stripped: the brain mask is its support, with holes filled.
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(t1 > 0.02 * t1.max(), iterations=2))
    mask_f = mask.astype(np.float32)
    gm *= mask_f
    wm *= mask_f
    total = gm + wm
    over = total > 1.0
    gm[over] /= total[over]
    wm[over] /= total[over]
    csf = np.clip(mask_f - gm - wm, 0.0, 1.0)
    spacing = np.abs(np.diag(affine)[:3])
    outer = ndimage.distance_transform_edt(~mask, sampling=spacing).astype(np.float32)
    # Depth inside the brain only needs thresholds, so a 2 mm grid is enough (and 8x cheaper).
    inner = ndimage.distance_transform_edt(mask[::2, ::2, ::2], sampling=2 * spacing)
    inner = np.repeat(np.repeat(np.repeat(inner, 2, 0), 2, 1), 2, 2)[: mask.shape[0], : mask.shape[1], : mask.shape[2]]
    deep_csf = (csf > 0.6) & (inner > 12.0)
    ijk = np.argwhere(deep_csf)
    vent_centre = (affine @ np.r_[ijk.mean(axis=0), 1.0])[:3]
    vent_radius = float((3.0 * len(ijk) * np.prod(spacing) / (4.0 * np.pi)) ** (1.0 / 3.0))
    bbox = np.argwhere(mask)
    centre_ijk = (bbox.min(axis=0) + bbox.max(axis=0)) / 2.0
    brain_centre = (affine @ np.r_[centre_ijk, 1.0])[:3]
    # Gliomas are mostly supratentorial and grow in white matter: seed points deep in it, above z = -10 mm.
    sites = np.argwhere((wm > 0.8) & (inner > 15.0))
    sites_mm = (affine[:3, :3] @ sites.T).T + affine[:3, 3]
    sites_mm = sites_mm[sites_mm[:, 2] > -10.0][::7].astype(np.float32)
    return Atlas(
        maps=np.stack([wm, gm, csf, mask_f]).astype(np.float32),
        outer_distance_mm=outer,
        affine=affine,
        ventricle_centre_mm=vent_centre,
        ventricle_radius_mm=vent_radius,
        brain_centre_mm=brain_centre,
        tumour_sites_mm=sites_mm,
        sha256={name: _sha256(path) for name, path in paths.items()},
    )
