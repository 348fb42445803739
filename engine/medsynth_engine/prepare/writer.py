"""Writing prepared cases: a hidden temporary folder renamed into place, NIfTI headers with geometry only,
and the hospital's key kept outside the output.

Each case is complete before the next starts, and the set appears under its name only when the run ends, so an
interrupted run leaves nothing half-written. The key (which source study became which case) is written 0600
through a temporary name, and refused inside the output folder: the output must be shareable as it is.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import MedSynthError
from ..killpoint import killpoint
from ..modelfile import write_atomic
from ..nifti_io import write_nifti
from ..setwriter import check_target

__all__ = ["PreparedSetWriter", "check_key_path", "write_key", "sitk_to_ras"]


def sitk_to_ras(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """(array in x, y, z order, RAS affine) of a SimpleITK (LPS) image."""
    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return array, np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def _storage(array: np.ndarray) -> np.ndarray:
    """int16 when the intensities use that range well (scanner units usually do), else float32."""
    high = float(array.max()) if array.size else 0.0
    if 100.0 <= high < 32767.0:
        return np.round(array).astype(np.int16)
    return array.astype(np.float32)


def check_key_path(key: Path | None, out: Path) -> Path | None:
    """The key's absolute path; refused inside the output folder or when it exists (it is never overwritten)."""
    if key is None:
        return None
    key = Path(key).absolute()
    out = Path(out).absolute()
    if key == out or key.is_relative_to(out):
        raise MedSynthError(f"The key file {key} is inside the output folder; keep it elsewhere, for the hospital only.")
    if key.exists():
        raise MedSynthError(f"The key file {key} already exists; choose a new file (keys are never overwritten).")
    if not key.parent.is_dir():
        raise MedSynthError(f"The folder of the key file {key} does not exist.")
    return key


def write_key(key: Path, entries: list[dict]) -> None:
    """The key as JSON, mode 0600 from the start, through a temporary name."""
    tmp = key.with_name(f".{key.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"cases": entries}, handle, indent=2)
        os.replace(tmp, key)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class PreparedSetWriter:
    """Context manager: cases go into ``.OUT.partial-*``; ``commit`` renames it to ``OUT``; an exception removes it."""

    def __init__(self, out: Path) -> None:
        self.out = check_target(Path(out))
        self.tmp = self.out.parent / f".{self.out.name}.partial-{secrets.token_hex(4)}"

    def __enter__(self) -> PreparedSetWriter:
        self.tmp.mkdir()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def write_case(self, case_id: str, images: dict[str, sitk.Image], transforms: dict[str, sitk.Transform], qc_png: bytes, info: dict) -> None:
        """One case folder, complete or not at all: ``<case>_<channel>.nii.gz``, ``<case>_qc.png``, ``transforms/``."""
        final = self.tmp / case_id
        staging = self.tmp / f".{case_id}.partial"
        staging.mkdir()
        try:
            for channel, image in images.items():
                array, affine = sitk_to_ras(image)
                array = array.astype(np.uint8) if channel in ("mask", "seg") else _storage(array)
                write_nifti(staging / f"{case_id}_{channel}.nii.gz", array, affine)
            (staging / "transforms").mkdir()
            for name, transform in transforms.items():
                sitk.WriteTransform(transform, str(staging / "transforms" / f"{name}.tfm"))
            write_atomic(staging / f"{case_id}_qc.png", qc_png)
            write_atomic(staging / f"{case_id}_prepare.json", json.dumps(info, indent=2).encode())
            staging.rename(final)
            killpoint("prepare.case")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def write_file(self, name: str, data: bytes) -> None:
        write_atomic(self.tmp / name, data)

    def commit(self) -> Path:
        killpoint("prepare.written")
        if self.out.exists():
            self.out.rmdir()  # check_target allowed only an empty folder
        os.replace(self.tmp, self.out)
        return self.out
