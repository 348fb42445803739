"""Where the files of each case are, for the three folder layouts hospitals hand over.

- BraTS-style: ``DIR/<case>/<case>_t1.nii.gz``, ``_t1ce``, ``_t2``, ``_flair``, ``_seg`` (BraTS 2023 names
  ``-t1n``, ``-t1c``, ``-t2w``, ``-t2f``, ``-seg`` are accepted too); a ``_mask`` (``medsynth prepare``'s brain
  mask) is not a channel and is passed over.
- nnU-Net v2 raw: ``DIR/dataset.json``, ``imagesTr/<case>_0000.nii.gz``..., ``labelsTr/<case>.nii.gz``;
  channel names come from ``dataset.json`` and labels are mapped back to BraTS codes when read.
- plain: ``DIR/*.nii.gz``, one channel per file, named by ``--channels`` (exactly one image channel).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from MedSynthLib.conventions import LABEL_CHANNEL

from ..errors import MedSynthError

__all__ = ["Case", "find_cases", "detect_layout", "find_case_files", "NIFTI_SUFFIXES", "MR_SEQUENCES"]

NIFTI_SUFFIXES = (".nii.gz", ".nii")
MR_SEQUENCES = ("t1", "t1ce", "t2", "flair")
_NIFTI_NAME = re.compile(r"^(?P<stem>.+?)(?:\.nii\.gz|\.nii)$")
#: File-name suffixes (after the case id and ``_`` or ``-``) for each channel, BraTS 2021 and 2023 names.
_BRATS_SUFFIXES: dict[str, str] = {
    "t1": "t1",
    "t1n": "t1",
    "t1ce": "t1ce",
    "t1c": "t1ce",
    "t1gd": "t1ce",
    "t2": "t2",
    "t2w": "t2",
    "flair": "flair",
    "t2f": "flair",
    "seg": LABEL_CHANNEL,
    "ct": "ct",
}
#: Files beside the channels that are not channels: the brain mask ``medsynth prepare`` writes.
_NOT_CHANNELS = frozenset({"mask"})
#: nnU-Net ``channel_names`` values (lower-cased) for each channel.
_NNUNET_NAMES: dict[str, str] = {
    "t1": "t1",
    "t1n": "t1",
    "t1w": "t1",
    "t1ce": "t1ce",
    "t1c": "t1ce",
    "t1gd": "t1ce",
    "t2": "t2",
    "t2w": "t2",
    "flair": "flair",
    "t2f": "flair",
}


@dataclass
class Case:
    """One subject: channel name -> file; ``nnunet_labels`` says the label file uses nnU-Net's 0-3 codes."""

    id: str
    files: dict[str, Path]
    nnunet_labels: bool = False
    extra: dict = field(default_factory=dict)


def _strip_nifti(name: str) -> str | None:
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def detect_layout(folder: Path) -> str:
    """``nnunet``, ``brats`` or ``plain`` for a data folder; a one-sentence error if it is none of them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MedSynthError(f"The data folder {folder} does not exist or is not a folder.")
    if (folder / "dataset.json").is_file() and (folder / "imagesTr").is_dir():
        return "nnunet"
    if any(_strip_nifti(p.name) for p in folder.iterdir() if p.is_file()):
        return "plain"
    if any(p.is_dir() and any(_strip_nifti(f.name) for f in p.iterdir()) for p in folder.iterdir()):
        return "brats"
    raise MedSynthError(
        f"The data folder {folder} holds no NIfTI files: expected BraTS-style case folders, an nnU-Net raw dataset or .nii.gz files."
    )


def find_cases(folder: Path, channels: tuple[str, ...] | None = None) -> tuple[str, list[Case]]:
    """The layout and the cases of a data folder, each with the files of the channels it has."""
    folder = Path(folder)
    layout = detect_layout(folder)
    if layout == "nnunet":
        cases = _nnunet_cases(folder)
    elif layout == "brats":
        cases = _brats_cases(folder)
    else:
        cases = _plain_cases(folder, channels)
    if not cases:
        raise MedSynthError(f"The data folder {folder} holds no cases.")
    return layout, cases


def _brats_cases(folder: Path) -> list[Case]:
    cases = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files: dict[str, Path] = {}
        for path in sorted(sub.iterdir()):
            stem = _strip_nifti(path.name)
            if stem is None:
                continue
            match = re.search(r"[_-]([A-Za-z0-9]+)$", stem)
            if match and match.group(1).lower() in _NOT_CHANNELS:
                continue
            channel = _BRATS_SUFFIXES.get(match.group(1).lower()) if match else None
            if channel is None:
                raise MedSynthError(f"{path} is not named <case>_<channel>.nii.gz with a channel of t1, t1ce, t2, flair, seg or ct.")
            if channel in files:
                raise MedSynthError(f"The case folder {sub} holds two {channel} files ({files[channel].name}, {path.name}).")
            files[channel] = path
        if files:
            cases.append(Case(id=sub.name, files=files))
    return cases


def _nnunet_cases(folder: Path) -> list[Case]:
    meta_path = folder / "dataset.json"
    try:
        meta = json.loads(meta_path.read_text())
        names = {int(k): str(v) for k, v in meta["channel_names"].items()}
        ending = str(meta.get("file_ending", ".nii.gz"))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise MedSynthError(f"{meta_path} is not an nnU-Net v2 dataset.json with channel_names.") from None
    index_to_channel: dict[int, str] = {}
    for index, name in names.items():
        channel = _NNUNET_NAMES.get(name.lower().replace("-", "").replace("_", ""))
        if channel is None:
            raise MedSynthError(f"{meta_path} names channel {index} '{name}'; MedSynth reads T1, T1ce, T2 and FLAIR.")
        index_to_channel[index] = channel
    cases: dict[str, Case] = {}
    pattern = re.compile(r"^(.+)_(\d{4})" + re.escape(ending) + "$")
    for path in sorted((folder / "imagesTr").iterdir()):
        match = pattern.match(path.name)
        if not match:
            continue
        case_id, index = match.group(1), int(match.group(2))
        if index not in index_to_channel:
            raise MedSynthError(f"{path} is channel {index}, which {meta_path} does not list.")
        cases.setdefault(case_id, Case(id=case_id, files={}, nnunet_labels=True)).files[index_to_channel[index]] = path
    labels = folder / "labelsTr"
    for case in cases.values():
        label = labels / f"{case.id}{ending}"
        if label.is_file():
            case.files[LABEL_CHANNEL] = label
    return [cases[k] for k in sorted(cases)]


def _plain_cases(folder: Path, channels: tuple[str, ...] | None) -> list[Case]:
    images = [c for c in (channels or ()) if c != LABEL_CHANNEL]
    if channels is None or len(images) != 1 or LABEL_CHANNEL in channels:
        raise MedSynthError(
            f"{folder} is a plain folder of NIfTI files; say which sequence they are with one channel, e.g. --channels t1."
        )
    cases = []
    for path in sorted(folder.iterdir()):
        stem = _strip_nifti(path.name)
        if stem is not None and not path.name.startswith("."):
            cases.append(Case(id=stem, files={images[0]: path}))
    return cases


# -- one case, for the tools that work on a single scan (add-channel, add-tumour) ------------------------


def _channel_of_name(stem: str) -> tuple[str, str | None]:
    """(case id, channel) from a file stem such as ``BraTS-001_t1ce``; channel None when no suffix matches."""
    match = re.match(r"^(?P<case>.+)[_-](?P<suffix>[A-Za-z0-9]+)$", stem)
    if match and match.group("suffix").lower() in _BRATS_SUFFIXES:
        return match.group("case"), _BRATS_SUFFIXES[match.group("suffix").lower()]
    return stem, None


def find_case_files(case: Path) -> tuple[str, dict[str, Path], Path]:
    """The case id, its files by channel, and its folder, for a case folder or a single NIfTI file."""
    case = Path(case)
    if not case.exists() and not case.is_symlink():
        raise MedSynthError(f"The case {case} does not exist.")
    if not case.is_dir():  # a file, or something named like one that the reader will refuse in one sentence
        match = _NIFTI_NAME.match(case.name)
        if not match:
            raise MedSynthError(f"{case} is not a NIfTI file (.nii or .nii.gz).")
        case_id, channel = _channel_of_name(match.group("stem"))
        if channel in ("seg", "ct"):
            raise MedSynthError(f"{case} is named as a {channel} channel, not an MR sequence; give the case's T1, T1ce, T2 or FLAIR file.")
        if channel is None:
            case_id, channel = match.group("stem"), "t1"
        return case_id, {channel: case}, case.parent
    files: dict[str, Path] = {}
    ids: dict[str, str] = {}
    for path in sorted(case.iterdir()):
        match = _NIFTI_NAME.match(path.name)
        if not match or path.name.startswith("."):
            continue  # a NIfTI-named folder, device or broken link is kept: the reader refuses it by name
        case_id, channel = _channel_of_name(match.group("stem"))
        if channel is None:
            continue
        if channel in files:
            raise MedSynthError(f"The case folder {case} holds two {channel} files ({files[channel].name}, {path.name}).")
        files[channel], ids[channel] = path, case_id
    if not any(c in files for c in MR_SEQUENCES):
        raise MedSynthError(f"The case folder {case} has no MR sequence file (<case>_t1.nii.gz, _t1ce, _t2 or _flair).")
    case_id = case.name if case.name in ids.values() else next(ids[c] for c in (*MR_SEQUENCES, "seg", "ct") if c in ids)
    return case_id, files, case
