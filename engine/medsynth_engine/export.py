"""Writing synthetic sets to disk: BraTS-style case folders or an nnU-Net v2 raw dataset, plus a manifest.

A set is written into a hidden temporary folder beside the target and renamed into place only when every
file and the manifest are complete, so an interrupted run leaves no half-written set and nothing that
existed is touched.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from MedSynthLib.conventions import LABEL_CHANNEL, NNUNET_FROM_BRATS

from .errors import MedSynthError
from .nifti_io import write_nifti
from .registry import SynthCase

__all__ = ["LAYOUTS", "SetWriter", "check_target", "new_case_id", "case_files"]

LAYOUTS = ("brats", "nnunet")
_NNUNET_CHANNEL_NAMES = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR", "ct": "CT"}
_SPACE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def new_case_id() -> str:
    """A random, meaningless case id (no order, time or source in it)."""
    return "ms-" + secrets.token_hex(5)


def check_target(out: Path) -> Path:
    """Refuse a target that exists and is not an empty folder, or whose parent cannot be written; create missing parents."""
    out = Path(out).absolute()
    if out.exists():
        if not out.is_dir():
            raise MedSynthError(f"{out} exists and is not a folder; choose a new output folder.")
        if any(out.iterdir()):
            raise MedSynthError(f"{out} is not empty; choose a new output folder (nothing is ever overwritten).")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise MedSynthError(f"{parent} is a file, not a folder; choose another output folder.")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise MedSynthError(f"Cannot create {parent}; choose an output folder you may write to.") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MedSynthError(f"Cannot write into {parent}; choose an output folder you may write to.")
    return out


def case_files(layout: str, case_id: str, channels: tuple[str, ...]) -> dict[str, str]:
    """Relative file path of every channel of a case in the given layout."""
    if layout == "brats":
        return {c: f"{case_id}/{case_id}_{c}.nii.gz" for c in channels}
    images = [c for c in channels if c != LABEL_CHANNEL]
    files = {c: f"imagesTr/{case_id}_{i:04d}.nii.gz" for i, c in enumerate(images)}
    if LABEL_CHANNEL in channels:
        files[LABEL_CHANNEL] = f"labelsTr/{case_id}.nii.gz"
    return files


@dataclass
class SetWriter:
    """Writes cases in parallel threads into a temporary folder; ``commit`` renames it into place.

    Use as a context manager: leaving the block with an exception removes the temporary folder.
    """

    out: Path
    layout: str
    channels: tuple[str, ...]
    workers: int = 2
    cases: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise MedSynthError(f"Unknown layout '{self.layout}'; use brats or nnunet.")
        if self.layout == "nnunet" and LABEL_CHANNEL not in self.channels:
            raise MedSynthError("The nnunet layout needs the seg channel (nnU-Net trains on labels); add seg to --channels.")
        if self.layout == "nnunet" and self.channels == (LABEL_CHANNEL,):
            raise MedSynthError("The nnunet layout needs at least one image channel besides seg.")
        self.out = check_target(self.out)
        self.tmp = self.out.parent / f".{self.out.name}.partial-{secrets.token_hex(4)}"
        self._pool = ThreadPoolExecutor(max_workers=self.workers)
        self._pending: list[Future] = []

    def __enter__(self) -> SetWriter:
        self.tmp.mkdir()
        if self.layout == "nnunet":
            (self.tmp / "imagesTr").mkdir()
            (self.tmp / "labelsTr").mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)

    def add(self, case: SynthCase, seed: int) -> str:
        """Queue one case for writing; returns its new random id. Raises the first write error seen."""
        self._raise_failed()
        while len(self._pending) >= 2 * self.workers:
            self._pending.pop(0).result()
        case_id = new_case_id()
        while any(c["id"] == case_id for c in self.cases):
            case_id = new_case_id()
        files = case_files(self.layout, case_id, self.channels)
        if self.layout == "brats":
            (self.tmp / case_id).mkdir()
        for channel, rel in files.items():
            array = case.arrays[channel]
            if array.ndim == 2:  # a 2D model's slice: one NIfTI slice, its affine's third axis the slice thickness
                array = array[:, :, None]
            if channel == LABEL_CHANNEL and self.layout == "nnunet":
                array = _to_nnunet_labels(array)
            self._pending.append(self._pool.submit(write_nifti, self.tmp / rel, array, case.affine))
        self.cases.append({"id": case_id, "seed": int(seed), "files": files, "params": case.params})
        return case_id

    def _raise_failed(self) -> None:
        for future in [f for f in self._pending if f.done()]:
            self._pending.remove(future)
            future.result()

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Wait for every file, write the manifest (and dataset.json), and rename the set into place."""
        for future in self._pending:
            future.result()
        self._pending.clear()
        self.cases.sort(key=lambda c: c["id"])
        manifest = {**manifest, "layout": self.layout, "cases": self.cases}
        _write_json(self.tmp / "manifest.json", manifest)
        if self.layout == "nnunet":
            _write_json(self.tmp / "dataset.json", _nnunet_dataset_json(self.channels, self.cases))
        if self.out.exists():
            self.out.rmdir()  # checked empty at the start
        os.replace(self.tmp, self.out)
        return self.out


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _to_nnunet_labels(seg: np.ndarray) -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)
    for brats, nnunet in NNUNET_FROM_BRATS.items():
        lut[brats] = nnunet
    return lut[seg.astype(np.uint8)]


def _nnunet_dataset_json(channels: tuple[str, ...], cases: list[dict[str, Any]]) -> dict[str, Any]:
    images = [c for c in channels if c != LABEL_CHANNEL]
    return {
        "channel_names": {str(i): _NNUNET_CHANNEL_NAMES[c] for i, c in enumerate(images)},
        # nnU-Net's own BraTS convention: region-based training on whole tumour, tumour core, enhancing tumour.
        "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]},
        "regions_class_order": [1, 2, 3],
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
        "label_mapping_from_brats": {str(k): v for k, v in NNUNET_FROM_BRATS.items() if k},
        # MONAI's load_decathlon_datalist reads this list directly; nnU-Net ignores it.
        "training": [
            {"image": [c["files"][ch] for ch in images], "label": c["files"][LABEL_CHANNEL]} for c in cases
        ],
    }


def space_error(exc: OSError, out: Path) -> MedSynthError | None:
    """The user-facing sentence for a full disk or a file-size limit, else None."""
    if exc.errno in _SPACE_ERRNOS:
        return MedSynthError(f"Ran out of disk space (or hit a file-size limit) while writing {out}; nothing was written.")
    return None

