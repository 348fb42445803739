"""Brain masks offline: deepbet's network (the default; requirements-nodeps.txt) and the atlas fallback (no weights).

Atlas: the MNI152 brain mask, carried onto the case by the affine registration, is only a prior (an affine fit
misses the subject's own shape by millimetres). It is refined on the T1-weighted image: brain tissue is bright
there and the CSF rim and skull around it are dark, so the mask is the bright tissue connected to the prior's
core, cut loose from scalp and marrow by an erosion, with sulci and ventricles closed and filled, kept within a
band of the prior. Without a T1-weighted sequence the prior is used as it is (and the QC says so).

deepbet (MIT, weights inside its wheel as TorchScript archives): the files are checked against the SHA-256 that
the reviewed wheel (1.0.2) records before ``torch.jit.load`` opens them. TorchScript archives hold compiled
TorchScript and tensors, read by torch's restricted unpickler that resolves only torch types, not arbitrary
Python objects; the hash check means only the reviewed bytes are opened at all, and as a second guard every
pickle inside the archive is read opcode by opcode (never executed) and refused if it names any Python object
besides TorchScript's own classes, tensor storages, ``_rebuild_tensor_v2``, ``OrderedDict`` and the typed-list
builders of ``torch.jit._pickle``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import MedSynthError

__all__ = ["atlas_mask", "deepbet_available", "deepbet_mask", "check_torchscript", "DEEPBET_SHA256"]

#: SHA-256 (urlsafe base64, as the wheel's RECORD writes it) of deepbet 1.0.2's two TorchScript files.
DEEPBET_SHA256 = {
    "data/models/model.pt": "3o7nxpZU0N05NdxKXYRXHY7PRjemv8Ad85nEwryG4P0",
    "data/models/bbox_model.pt": "OaeytfeZ-qE5Hql7_NwLkpnyDYTyMWpP-JGNxGheQKo",
}


def _ball_dilate(mask: np.ndarray, radius_mm: float, spacing: float) -> np.ndarray:
    return ndimage.distance_transform_edt(~mask, sampling=spacing) <= radius_mm


def _ball_erode(mask: np.ndarray, radius_mm: float, spacing: float) -> np.ndarray:
    return ndimage.distance_transform_edt(mask, sampling=spacing) > radius_mm


def atlas_mask(prior: np.ndarray, t1_like: np.ndarray | None, spacing: float) -> np.ndarray:
    """A brain mask (bool) from the atlas ``prior`` (0-1, on the output grid), refined on a T1-weighted image."""
    core = prior >= 0.5
    if t1_like is None or not core.any():
        return core
    # Work inside the prior's box (plus the band): the distance transforms then cost half as much at 1 mm.
    lo = np.maximum(np.argwhere(core).min(axis=0) - int(np.ceil(12.0 / spacing)), 0)
    hi = np.argwhere(core).max(axis=0) + int(np.ceil(12.0 / spacing)) + 1
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    mask = np.zeros(core.shape, dtype=bool)
    mask[box] = _refine(core[box], t1_like[box], spacing)
    return mask


def _refine(core: np.ndarray, t1_like: np.ndarray, spacing: float) -> np.ndarray:
    # One distance map of the prior's core serves both of its erosions (6 and 10 mm): each map at 1 mm costs seconds.
    depth = ndimage.distance_transform_edt(core, sampling=spacing)
    inner = depth > 6.0
    if inner.sum() < 1000:
        return core
    level = float(np.median(t1_like[inner]))
    band = _ball_dilate(core, 8.0, spacing)
    # Grey matter is ~0.7-0.8 of the brain's median on T1, CSF and bone below ~0.5: 0.6 separates them.
    candidate = (t1_like > 0.6 * level) & band
    # Eroding by 6 mm cuts the bridges to scalp and marrow; the parts lying mostly in the prior's core are the brain
    # (at 1 mm the tentorium can part cerebellum from cerebrum, so not only the largest), grown back.
    labels, count = ndimage.label(_ball_erode(candidate, 6.0, spacing))
    if count == 0:
        return core
    overlap = np.bincount(labels[inner], minlength=count + 1)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = (overlap >= 0.2 * sizes) & (overlap > 0)
    keep[0] = False
    brain = _ball_dilate(keep[labels], 6.0, spacing) & candidate
    brain = _ball_erode(_ball_dilate(brain, 3.0, spacing), 3.0, spacing)  # close sulci
    brain = ndimage.binary_fill_holes(brain | (depth > 10.0))
    return brain & band


def _deepbet_files() -> dict[str, Path] | None:
    try:
        dist = importlib.metadata.distribution("deepbet")
    except importlib.metadata.PackageNotFoundError:
        return None
    found = {str(f): Path(dist.locate_file(f)) for f in dist.files or () if str(f) in DEEPBET_SHA256}
    return found if len(found) == len(DEEPBET_SHA256) else None


def deepbet_available() -> bool:
    """True when deepbet's weights are installed (make setup does it; ``pip install --no-deps deepbet==1.0.2`` is enough)."""
    return _deepbet_files() is not None


def _checked(path: Path, expected: str) -> Path:
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    if digest != expected:
        raise MedSynthError(f"{path} does not match the deepbet 1.0.2 weights MedSynth was reviewed with; reinstall deepbet==1.0.2 or use --skull-strip atlas.")
    return path


#: The only Python objects a TorchScript archive's pickles may name (TorchScript classes, ``__torch__.*``, aside).
_TORCHSCRIPT_GLOBALS = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2")} | {
    ("torch.jit._pickle", name) for name in ("build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
                                             "build_tensor_from_id", "restore_type_tag")
}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}


def _allowed_global(module: str, name: str) -> bool:
    if module == "__torch__" or module.startswith("__torch__."):
        return True  # resolved in TorchScript's own compilation unit, never imported as Python
    return (module, name) in _TORCHSCRIPT_GLOBALS or (module == "torch" and name.endswith("Storage"))


def check_torchscript(path: Path) -> Path:
    """``path`` if every pickle in the TorchScript archive names only torch's own objects; else one sentence.

    The pickles are read with ``pickletools`` (opcodes only, nothing executed or imported).
    """
    import pickletools
    import zipfile

    def refuse(why: str) -> MedSynthError:
        return MedSynthError(f"{path} is not plain TorchScript weights ({why}); MedSynth refuses to load it.")

    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile):
        raise refuse("not a TorchScript archive") from None
    with archive:
        for member in (n for n in archive.namelist() if n.endswith(".pkl")):
            previous: list[tuple[str, object]] = []
            try:
                for op, arg, _ in pickletools.genops(archive.read(member)):
                    if op.name in ("GLOBAL", "INST"):
                        module, name = str(arg).split(" ", 1)
                    elif op.name == "STACK_GLOBAL":
                        if len(previous) < 2 or any(o not in _STRING_OPS for o, _ in previous[-2:]):
                            raise refuse(f"{member} builds an object's name at run time")
                        module, name = str(previous[-2][1]), str(previous[-1][1])
                    elif op.name.startswith("EXT"):
                        raise refuse(f"{member} uses the pickle extension registry")
                    else:
                        if op.name != "MEMOIZE":
                            previous.append((op.name, arg))
                        continue
                    if not _allowed_global(module, name):
                        raise refuse(f"{member} names {module}.{name}")
                    previous.append((op.name, arg))
            except ValueError as exc:  # pickletools on damaged bytes
                raise refuse(f"{member} is not a readable pickle: {exc}") from None
    return path


def deepbet_mask(array: np.ndarray, affine: np.ndarray, device: str = "cpu") -> np.ndarray:
    """deepbet's brain mask (bool, in ``array``'s voxel order) of a T1-weighted volume with its RAS ``affine``.

    The network was trained on closest-canonical (RAS) voxel order, as deepbet's own ``run`` feeds it; a native
    grid (``--atlas none``: a sagittal or LPS-axial DICOM series) is reoriented to that order and the mask back.
    """
    from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

    orientation = io_orientation(affine)
    mask = _deepbet_canonical(apply_orientation(array, orientation), device)
    return apply_orientation(mask, ornt_transform(axcodes2ornt("RAS"), orientation)).astype(bool)


def _deepbet_canonical(ras_array: np.ndarray, device: str) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    files = _deepbet_files()
    if files is None:
        raise MedSynthError("deepbet is not installed; install it (pip install --no-deps deepbet==1.0.2) or use --skull-strip atlas.")
    models = {}
    for name, expected in DEEPBET_SHA256.items():
        model = torch.jit.load(str(check_torchscript(_checked(files[name], expected))), map_location=device)
        models[name] = model.eval()
    x = torch.nan_to_num(torch.from_numpy(np.ascontiguousarray(ras_array, dtype=np.float32)).to(device))
    small = F.interpolate(x[None, None], (128, 128, 128), mode="nearest-exact")[0, 0]
    low, high = small.quantile(0.005), small.quantile(0.995)

    def normalise(v: torch.Tensor) -> torch.Tensor:
        v = ((v - low) / (high - low)).clamp(0, 1)
        return 0.226 * (v - v.mean()) / v.std() + 0.449

    with torch.no_grad():
        rough = models["data/models/bbox_model.pt"](normalise(small)[None, None])[0, 1] > 0.5
        labels, count = ndimage.label(rough.cpu().numpy())
        if count == 0:
            raise MedSynthError("deepbet found no brain in the reference sequence; use --skull-strip atlas for this case.")
        biggest = np.argwhere(labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1)
        scale = np.array(x.shape) / 128.0
        lo, hi = biggest.min(axis=0) * scale, (biggest.max(axis=0) + 1) * scale
        margin = 0.1 * (hi - lo)
        box = tuple(slice(max(0, int(a - m)), min(s, int(b + m))) for a, b, m, s in zip(lo, hi, margin, x.shape, strict=True))
        crop = F.interpolate(x[box][None, None], (256, 256, 256), mode="nearest-exact")
        prob = models["data/models/model.pt"](normalise(crop))[0, 1]
        back = F.interpolate(prob[None, None], tuple(x[box].shape), mode="nearest-exact")[0, 0]
    mask = np.zeros(x.shape, dtype=bool)
    mask[box] = back.cpu().numpy() > 0.5
    labels, count = ndimage.label(mask)
    if count:
        mask = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    return ndimage.binary_fill_holes(mask)
