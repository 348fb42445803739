"""Reading the two sets an evaluation compares, case by case, through the shared data readers.

A thin adapter over ``medsynth_engine.data``: it finds the cases of a BraTS-style, nnU-Net or plain folder,
settles which image channels both sets are compared on (refusing sets whose channels differ), and reads one
case at a time (reoriented to RAS without resampling), so a large training set is streamed, never held whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from MedSynthLib.conventions import ALL_CHANNELS, LABEL_CHANNEL

from ..data.layouts import Case, find_cases
from ..data.validate import validate_case
from ..errors import MedSynthError

__all__ = ["CaseSet", "open_set", "common_channels", "read_case", "iter_cases", "LoadedCase"]

IMAGE_CHANNELS = ("t1", "t1ce", "t2", "flair", "ct")


@dataclass
class CaseSet:
    """A data folder as a list of cases (files only, nothing read yet)."""

    name: str  # how messages name the set: "synthetic", "training", "real"
    folder: Path
    layout: str
    cases: list[Case]

    def __len__(self) -> int:
        return len(self.cases)

    def image_channels(self) -> tuple[str, ...]:
        """The image channels every case of the set has."""
        common = set.intersection(*(set(c.files) for c in self.cases))
        return tuple(c for c in ALL_CHANNELS if c in common and c != LABEL_CHANNEL)

    def has_labels(self) -> bool:
        return all(LABEL_CHANNEL in c.files for c in self.cases)


@dataclass
class LoadedCase:
    """One case read into memory: arrays in RAS voxel order, its affine and voxel size in mm."""

    id: str
    arrays: dict[str, np.ndarray]
    affine: np.ndarray
    spacing: tuple[float, float, float]


def open_set(folder: Path | str, name: str, channels: tuple[str, ...] | None = None) -> CaseSet:
    """Find the cases of ``folder``; every failure names the set and says what was expected."""
    folder = Path(folder)
    if not folder.exists():
        raise MedSynthError(f"The {name} folder {folder} does not exist.")
    if folder.is_dir() and not any(p for p in folder.iterdir() if not p.name.startswith(".")):
        raise MedSynthError(f"The {name} folder {folder} is empty; point it at a BraTS-style, nnU-Net or NIfTI folder.")
    try:
        layout, cases = find_cases(folder, channels)
    except MedSynthError as exc:
        raise MedSynthError(f"The {name} set: {str(exc)[0].lower()}{str(exc)[1:]}") from None
    return CaseSet(name=name, folder=folder, layout=layout, cases=cases)


def common_channels(sets: list[CaseSet], channels: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The image channels the comparison uses: ``channels`` if given (each set must have them), else all of them,
    which must then be the same in every set."""
    if channels is not None:
        wanted = tuple(c for c in channels if c != LABEL_CHANNEL)
        if not wanted:
            raise MedSynthError("Choose at least one image channel (t1, t1ce, t2, flair or ct) to compare.")
        for case_set in sets:
            missing = [c for c in wanted if c not in case_set.image_channels()]
            if missing:
                raise MedSynthError(f"The {case_set.name} set ({case_set.folder}) lacks {', '.join(missing)} in some or all cases.")
        return wanted
    found = [s.image_channels() for s in sets]
    for case_set, chans in zip(sets, found, strict=True):
        if not chans:
            raise MedSynthError(f"The {case_set.name} set ({case_set.folder}) has no image channel present in every case.")
    if any(chans != found[0] for chans in found[1:]):
        described = " but ".join(f"the {s.name} set has {', '.join(c)}" for s, c in zip(sets, found, strict=True))
        shared = [c for c in found[0] if all(c in other for other in found[1:])]
        hint = f"pass --channels {','.join(shared)} to compare the channels they share" if shared else "they share no image channel"
        raise MedSynthError(f"The channels differ: {described}; {hint}.")
    return found[0]


def read_case(case: Case, channels: tuple[str, ...]) -> LoadedCase:
    """Read and check ``channels`` of one case (one-sentence error naming the file), reoriented to RAS."""
    arrays, affine = validate_case(case, channels)
    ornt = nib.orientations.io_orientation(affine)
    ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
    transform = nib.orientations.ornt_transform(ornt, ras)
    arrays = {c: np.ascontiguousarray(nib.orientations.apply_orientation(a, transform)) for c, a in arrays.items()}
    shape = next(iter(arrays.values())).shape
    affine = affine @ nib.orientations.inv_ornt_aff(transform, shape)
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    return LoadedCase(id=case.id, arrays=arrays, affine=affine, spacing=spacing)  # type: ignore[arg-type]


def iter_cases(case_set: CaseSet, channels: tuple[str, ...], indices: list[int] | None = None) -> Iterator[tuple[int, LoadedCase]]:
    """Read the cases of a set one at a time (all of them, or those at ``indices``)."""
    for index in range(len(case_set)) if indices is None else indices:
        yield index, read_case(case_set.cases[index], channels)
