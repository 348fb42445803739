"""Writing synthetic sets to disk: BraTS-style case folders or an nnU-Net v2 raw dataset, plus a manifest.

A set is written into a hidden temporary folder beside the target and renamed into place only when every
file and the manifest are complete, so nobody ever sees a half-written set and nothing that existed is
touched; the folder's journal lets an interrupted run continue where it stopped (``journal.py``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from MedSynthLib.conventions import LABEL_CHANNEL, NNUNET_FROM_BRATS

from .diskspace import check_space
from .errors import MedSynthError
from .journal import Journal, RunStopped, case_id, is_temporary, new_id_key, temporary_folder, verify
from .killpoint import killpoint
from .nifti_io import write_nifti
from .registry import SynthCase

__all__ = ["LAYOUTS", "SetWriter", "check_target", "case_files"]

LAYOUTS = ("brats", "nnunet")
_NNUNET_CHANNEL_NAMES = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR", "ct": "CT"}
_SPACE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


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
    """Writes cases in parallel threads into a journalled temporary folder; ``commit`` publishes it as ``out``.

    Use as a context manager. Cases are numbered by their index in the run and recorded in the journal once all
    their files are written (``journal.py``). Leaving the block on Ctrl-C, SIGTERM or ``RunStopped`` keeps the
    temporary folder, and so does a failed write once some case is finished, so the run can be resumed
    (``resume=True``: finished cases are verified and kept, the rest are for the caller to make again, see
    ``finished``); any other error removes it. A leftover folder is refused unless ``resume`` or ``discard``.

    Args:
        arguments: what decides the set's bytes (model, seed, shape...); a resumed run must repeat them exactly.
        id_key: what case ids derive from, with the case index (default: a random key kept in the journal).
        cases, case_bytes: how many cases the set has and about how large one is written: the file system must hold
            the ones still to write before the first is made (``diskspace``); 0 skips the check. ``commit`` refuses a
            set with fewer journalled cases than ``cases``.
        joining: another worker of the run (rank 0, ``sharding.py``) has set up or reopened the temporary folder;
            this writer adds its share of the cases to it and never commits.

    Memory stays bounded for any number of cases: ``add`` waits while ``bound`` cases are queued or being written,
    so the caller computes the next case while the writer threads write the previous ones, and never more. The files
    of one case are compressed side by side (``workers`` file threads, apart from the case threads that wait for
    them), so a run of one case does not write its channels one after another on one core.
    """

    out: Path
    layout: str
    channels: tuple[str, ...]
    workers: int = 2
    arguments: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    discard: bool = False
    id_key: str | None = None
    cases: int = 0
    case_bytes: int = 0
    joining: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise MedSynthError(f"Unknown layout '{self.layout}'; use brats or nnunet.")
        if self.layout == "nnunet" and LABEL_CHANNEL not in self.channels:
            raise MedSynthError("The nnunet layout needs the seg channel (nnU-Net trains on labels); add seg to --channels.")
        if self.layout == "nnunet" and self.channels == (LABEL_CHANNEL,):
            raise MedSynthError("The nnunet layout needs at least one image channel besides seg.")
        if self.resume and self.discard:
            raise MedSynthError("Give --resume or --discard, not both: one continues the interrupted run, the other drops it.")
        self.out = check_target(self.out)
        if is_temporary(self.out):
            raise MedSynthError(f"{self.out} lies inside the temporary folder of an unfinished run; choose an output folder elsewhere.")
        self.tmp = temporary_folder(self.out)
        self.set_dir = self.tmp / "set"
        self.journal = Journal(self.tmp / "journal")
        if self.tmp.exists() and not (self.resume or self.discard or self.joining):
            raise MedSynthError(
                f"An interrupted run into {self.out} left {self.tmp}; continue it with --resume (the same arguments), "
                f"or start again with --discard (or medsynth clean {self.out})."
            )
        self.finished: dict[int, dict[str, Any]] = {}
        self._pending: list[Future] = []

    @property
    def bound(self) -> int:
        """The most cases ``add`` lets wait for, or be in, the writer threads."""
        return self.workers + 1

    def __enter__(self) -> SetWriter:
        # The pools are made here, not in __init__: a writer made only to check a request (a job's prepare) starts
        # none and leaves none behind.
        self._pool = ThreadPoolExecutor(max_workers=self.workers)
        # A pool of its own: case threads wait for their files, so files in the case pool could deadlock it.
        self._files = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="medsynth-file")
        try:
            if self.joining:
                run = self.journal.run()
                self.id_key = run["id_key"]
                self.finished = self.journal.entries()  # verified by rank 0 before this worker joined
            elif self.discard and self.tmp.exists():
                shutil.rmtree(self.tmp)
            if self.tmp.exists():
                self._reopen()
                check_space(self.out, (self.cases - len(self.finished)) * self.case_bytes)  # the folder stays for later
            else:
                check_space(self.out, self.cases * self.case_bytes)  # before anything is written
                self.set_dir.mkdir(parents=True)
                if self.layout == "nnunet":
                    (self.set_dir / "imagesTr").mkdir()
                    (self.set_dir / "labelsTr").mkdir()
                self.id_key = self.id_key or new_id_key()
                self.journal.start(self.arguments, self.id_key)
        except BaseException:
            self._pool.shutdown(wait=False)
            self._files.shutdown(wait=False)
            raise
        return self

    def _reopen(self) -> None:
        """Continue the journalled run: keep the cases whose files match their checksums, remove everything else."""
        run = self.journal.check(self.arguments, self.out)
        self.id_key = run["id_key"]
        entries = self.journal.entries()
        intact = dict(zip(entries, self._pool.map(lambda e: verify(self.set_dir, e), entries.values()), strict=True))
        for index, ok in intact.items():
            if not ok:
                self.journal.forget(index)
        self.finished = {i: e for i, e in entries.items() if intact[i]}
        keep = {rel for e in self.finished.values() for rel in e["files"].values()}
        for path in sorted(self.set_dir.rglob("*"), reverse=True):  # files before their folders
            rel = path.relative_to(self.set_dir).as_posix()
            if path.is_dir():
                if rel not in ("imagesTr", "labelsTr") and not any(path.iterdir()):
                    path.rmdir()
            elif rel not in keep:
                path.unlink()

    def __exit__(self, exc_type, exc, tb) -> None:
        stopped = exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, RunStopped))
        self._pool.shutdown(wait=True, cancel_futures=not stopped)
        self._files.shutdown(wait=True)
        if exc_type is None or stopped or not self.tmp.exists():
            return
        if issubclass(exc_type, OSError) and self.journal.entries():
            return  # e.g. a full disk: the finished cases stay for a resume once there is room
        shutil.rmtree(self.tmp, ignore_errors=True)

    def add(self, case: SynthCase, seed: int, index: int, extra: dict[str, Any] | None = None) -> str:
        """Queue case ``index`` for writing; returns its id. Raises the first write error seen.

        ``extra`` (e.g. a cohort case's stratum and realised attributes) is journalled and lands in the case's
        manifest entry."""
        self._raise_failed()
        while len(self._pending) >= self.bound:
            self._pending.pop(0).result()
        case_id_ = case_id(str(self.id_key), index)
        files = case_files(self.layout, case_id_, self.channels)
        entry = {**(extra or {}), "index": int(index), "id": case_id_, "seed": int(seed), "files": files, "params": case.params}
        self._pending.append(self._pool.submit(self._write_case, entry, case))
        return case_id_

    def _write_case(self, entry: dict[str, Any], case: SynthCase) -> None:
        if self.layout == "brats":
            (self.set_dir / entry["id"]).mkdir(exist_ok=True)
        files = {rel: self._files.submit(self._write_file, rel, channel, case) for channel, rel in entry["files"].items()}
        wait(files.values(), return_when=FIRST_EXCEPTION)
        for future in files.values():  # after a failure, the files not started are not written at all
            future.cancel()
        wait(files.values())  # none is still being written once this case ends, whatever happened
        failed = [f.exception() for f in files.values() if not f.cancelled() and f.exception() is not None]
        if failed:
            raise failed[0]
        sums = {rel: future.result() for rel, future in files.items()}
        killpoint("set.case-files")
        self.journal.record({**entry, "sha256": sums})
        killpoint("set.case-recorded")

    def _write_file(self, rel: str, channel: str, case: SynthCase) -> str:
        array = case.arrays[channel]
        if array.ndim == 2:  # a 2D model's slice: one NIfTI slice, its affine's third axis the slice thickness
            array = array[:, :, None]
        if channel == LABEL_CHANNEL and self.layout == "nnunet":
            array = _to_nnunet_labels(array)
        return write_nifti(self.set_dir / rel, array, case.affine)

    def drain(self) -> None:
        """Wait until every queued case is written and journalled; raises the first write error."""
        while self._pending:
            self._pending.pop(0).result()

    def _raise_failed(self) -> None:
        for future in [f for f in self._pending if f.done()]:
            self._pending.remove(future)
            future.result()

    def commit(self, manifest: dict[str, Any], publish: Callable[[Path, Path], Path] | None = None) -> Path:
        """Wait for every file, write the manifest (and dataset.json) from the journal, and publish the set.

        ``publish(staging, out)`` makes the complete set in ``staging`` appear as ``out`` (default: a rename;
        the audit gate audits first). The temporary folder is removed once the set is published.
        """
        self.drain()
        entries = self.journal.entries()
        if self.cases and len(entries) != self.cases:
            raise MedSynthError(f"Only {len(entries)} of {self.cases} cases of {self.out} were written; nothing was published.")
        cases = sorted(
            ({k: v for k, v in e.items() if k not in ("index", "sha256")} for e in entries.values()), key=lambda c: c["id"]
        )
        manifest = {**manifest, "layout": self.layout, "cases": cases}
        _write_json(self.set_dir / "manifest.json", manifest)
        if self.layout == "nnunet":
            _write_json(self.set_dir / "dataset.json", _nnunet_dataset_json(self.channels, cases))
        killpoint("set.manifest")
        published = (publish or _rename_into_place)(self.set_dir, self.out)
        killpoint("set.published")
        shutil.rmtree(self.tmp, ignore_errors=True)
        return published


def _rename_into_place(staging: Path, out: Path) -> Path:
    if out.exists():
        out.rmdir()  # checked empty at the start
    os.replace(staging, out)
    return out


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

