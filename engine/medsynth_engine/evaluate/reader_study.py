"""A blinded reader study: real and synthetic cases, shuffled, on one grid, with the answer key kept apart.

The published work had a radiologist tell real from synthetic. For that to test the images and not the
files, every case is brought onto the same grid and intensity scale (the training preprocessing: RAS,
the synthetic set's voxel size, head-centred crop, per-channel percentiles) and written with the same
neutral header and affine under a meaningless id (``case-001``...), in shuffled order. The study folder
holds only ``study.json`` (ids and files) and the cases; the key (id -> real/synthetic and source case)
is written outside it, for the study's organiser.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from isal import igzip

from MedSynthLib.reader_study import STUDY_FILE, STUDY_FORMAT

from ..data.preprocess import preprocess_case
from ..errors import MedSynthError
from ..modelfile import write_atomic
from ..nifti_io import anonymous_image
from ..setwriter import check_target
from .output import write_json
from .run import evaluation_spec
from .sets import common_channels, open_set, read_case

__all__ = ["ReaderStudyRequest", "make_reader_study", "default_key_path", "STUDY_FILE", "STUDY_FORMAT"]

_INSTRUCTIONS = "For each case, say whether it is a real scan or a synthetic one, and how confident you are (1 guess - 5 certain)."


def default_key_path(out: Path) -> Path:
    """The key beside (never inside) the study folder."""
    out = Path(out).absolute()
    return out.parent / f"{out.name}-answer-key.json"


@dataclass
class ReaderStudyRequest:
    real: Path
    synthetic: Path
    n: int
    out: Path
    key: Path | None = None
    seed: int | None = None
    channels: tuple[str, ...] | None = None
    grid: int = 128


def _write_volume(path: Path, volume: np.ndarray, affine: np.ndarray) -> None:
    image = anonymous_image(volume, affine)
    image.header["descrip"] = b""  # the shared writer marks files as synthetic: that would give the answer away
    write_atomic(path, igzip.compress(image.to_bytes(), compresslevel=1, mtime=0))


def make_reader_study(request: ReaderStudyRequest) -> tuple[Path, Path]:
    """Write the blinded study folder and the key; returns (study folder, key file)."""
    if request.n < 2:
        raise MedSynthError(f"A reader study needs at least 2 cases, not {request.n}.")
    out = check_target(request.out)
    key = Path(request.key).absolute() if request.key else default_key_path(out)
    if key.exists():
        raise MedSynthError(f"The answer key {key} exists already; choose another --key (nothing is overwritten).")
    if out == key.parent or out in key.parents:
        raise MedSynthError("The answer key must not be inside the study folder; readers would see it.")
    if not key.parent.is_dir():
        raise MedSynthError(f"The folder {key.parent} for the answer key does not exist.")
    real_set = open_set(request.real, "real", request.channels)
    syn_set = open_set(request.synthetic, "synthetic", request.channels)
    channels = common_channels([syn_set, real_set], request.channels)
    rng = np.random.default_rng(request.seed if request.seed is not None else secrets.randbits(63))
    n_real = request.n // 2 + (int(rng.integers(2)) if request.n % 2 else 0)
    n_syn = request.n - n_real
    for case_set, wanted in ((real_set, n_real), (syn_set, n_syn)):
        if len(case_set) < wanted:
            raise MedSynthError(f"The {case_set.name} set has {len(case_set)} case(s); {request.n} study cases need {wanted} of them.")
    picks = [("real", real_set, int(i)) for i in rng.choice(len(real_set), n_real, replace=False)]
    picks += [("synthetic", syn_set, int(i)) for i in rng.choice(len(syn_set), n_syn, replace=False)]
    picks = [picks[i] for i in rng.permutation(len(picks))]
    spec = evaluation_spec(syn_set, channels, request.grid)
    affine = np.diag([*spec.spacing, 1.0])
    affine[:3, 3] = -np.array(spec.spacing) * (np.array(spec.shape) - 1) / 2  # centred, the same for every case
    tmp = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    width = max(3, len(str(len(picks))))
    cases, answers = [], {}
    try:
        tmp.mkdir()
        for number, (truth, case_set, index) in enumerate(picks, start=1):
            case_id = f"case-{number:0{width}d}"
            source = read_case(case_set.cases[index], channels)
            prepared, _ = preprocess_case(source.arrays, source.affine, spec)
            (tmp / case_id).mkdir()
            files = {}
            for channel in channels:
                volume = np.round((prepared[channel] + 1.0) * 500.0).astype(np.int16)  # 0-1000, like the phantom's scale
                files[channel] = f"{case_id}/{case_id}_{channel}.nii.gz"
                _write_volume(tmp / files[channel], volume, affine)
            cases.append({"id": case_id, "files": files})
            answers[case_id] = {"truth": truth, "source_case": case_set.cases[index].id}
        write_json(tmp / STUDY_FILE, {"format": STUDY_FORMAT, "format_version": 1, "channels": list(channels), "instructions": _INSTRUCTIONS, "cases": cases})
        write_json(key, {"format": f"{STUDY_FORMAT}-key", "format_version": 1, "study": out.name, "n_real": n_real, "n_synthetic": n_syn, "cases": answers})
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        if key.exists() and not out.exists():
            key.unlink()
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out, key
