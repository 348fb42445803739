"""``medsynth evaluate``: quality, diversity, memorisation and usefulness of a synthetic set against a real one.

Both sets are streamed case by case onto one evaluation grid (the synthetic set's, capped at ``grid`` voxels
a side) with the training preprocessing (RAS, resampled, head-centred crop, [-1, 1] per channel); only
features, histograms, a sample for MS-SSIM and the mosaics, and (with TSTR) a small copy for training stay
in memory. The report folder is written under a temporary name and renamed into place when complete.

Sets of 2D slices (single-slice NIfTI, as the 2D families write them) are evaluated the same way on 2D grids
(``planar``): the same metrics and keys, per slice, with ``spatial_dims`` saying which it was. A 3D real set
against 2D slices is cut into slices as the 2D training cuts it (``sliced``), and ``real_slicing`` says how.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from MedSynthLib.conventions import BRATS_LABELS, LABEL_CHANNEL

from ..audit2d import audit_set
from ..data.preprocess import PreprocessSpec, preprocess_case
from ..errors import MedSynthError
from ..modelfile import write_atomic
from ..models.channelnet.inputs import SEQUENCES as MR_SEQUENCES
from ..setwriter import check_target
from .audit import DEFAULT_THRESHOLD
from .distances import frechet_distance, mmd, standardise
from .diversity import mean_pairwise_ms_ssim, ms_ssim_setting
from .encoder import ENCODER_ID, SLAB, SegEncoder
from .features import case_features, feature_names, head_mask
from .figures import HIST_BINS, histograms_png, mosaic_png, tumour_volumes_png
from .output import write_json
from .planar import pair_dims, plane, plane_spec, preprocess_plane, recorded_subjects
from .prdc import prdc
from .report import render_report
from .sets import CaseSet, LoadedCase, common_channels, iter_cases, open_set, read_case
from .sliced import DEFAULT_SLICES_PER_CASE, Slicing, check_slices_per_case, slice_planes, slicing_for
from .tstr import TstrSettings, run_tstr
from .tumour_stats import SIZE_KEYS, case_tumour, compare, set_statistics

__all__ = ["EvaluateRequest", "run_evaluation", "evaluation_spec"]

_MOSAIC_CASES = 4


@dataclass
class EvaluateRequest:
    synthetic: Path
    real: Path
    out: Path
    channels: tuple[str, ...] | None = None
    grid: int = 64
    diversity_cases: int = 16
    audit_threshold: float = DEFAULT_THRESHOLD
    tstr: bool = False
    tstr_grid: int = 64
    tstr_spacing: float = 3.0
    tstr_settings: TstrSettings = field(default_factory=TstrSettings)
    slices_per_case: int = DEFAULT_SLICES_PER_CASE  # a 3D real set against 2D slices: slices kept of each volume

    def validate(self) -> None:
        check_slices_per_case(self.slices_per_case)
        if not 16 <= self.grid <= 256:
            raise MedSynthError(f"The evaluation grid must be 16-256 voxels a side, not {self.grid}.")
        if self.diversity_cases < 2:
            raise MedSynthError(f"MS-SSIM needs at least 2 cases per set, not {self.diversity_cases}.")
        if self.tstr_grid < 16 or self.tstr_grid % 8:
            raise MedSynthError(f"The TSTR grid must be a multiple of 8 of at least 16, not {self.tstr_grid}.")
        if not 0.5 <= self.tstr_spacing <= 12.0:
            raise MedSynthError(f"The TSTR voxel size must be 0.5-12 mm, not {self.tstr_spacing}.")
        self.tstr_settings.validate(self.tstr_grid)

    def tstr_spec(self, dims: int = 3) -> PreprocessSpec:
        """TSTR's own grid (a cube, or a square for 2D slices), the same for every set whatever its resolution, so the
        real-trained Dice never depends on it."""
        return PreprocessSpec(shape=(self.tstr_grid,) * dims, spacing=(self.tstr_spacing,) * dims)  # type: ignore[arg-type]


@dataclass
class _Grids:
    """Where an evaluation puts its cases: the evaluation grid and the TSTR grid, of volumes (3D) or slices (2D)."""

    dims: int
    spec: PreprocessSpec
    tstr: PreprocessSpec

    def place(self, case: LoadedCase, case_set: CaseSet, index: int, slicing: Slicing | None) -> list[tuple[dict, dict, dict, tuple[float, ...]]]:
        """Each volume or slice the case gives (one, or a sliced volume's slices) on the evaluation grid, on the TSTR
        grid, and as read (arrays and voxel or pixel size)."""
        if self.dims == 2:
            planes = [plane(case, case_set, index)] if slicing is None else slice_planes(case, slicing)
            return [(preprocess_plane(a, s, self.spec), preprocess_plane(a, s, self.tstr), a, s) for a, s in planes]
        out, _ = preprocess_case(case.arrays, case.affine, self.spec)
        fixed, _ = preprocess_case(case.arrays, case.affine, self.tstr)
        return [(out, fixed, case.arrays, case.spacing)]


@dataclass
class _SetSummary:
    features: list[np.ndarray] = field(default_factory=list)
    volumes: list[dict[str, float]] = field(default_factory=list)
    histogram: np.ndarray | None = None
    diversity: list[np.ndarray] = field(default_factory=list)
    mosaic: list[tuple[np.ndarray, np.ndarray | None]] = field(default_factory=list)
    encoded: list[np.ndarray] = field(default_factory=list)
    tumours: list[dict] = field(default_factory=list)
    tstr_images: list[np.ndarray] = field(default_factory=list)
    tstr_labels: list[np.ndarray] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)  # whose each case is (TSTR keeps a subject on one side)


def evaluation_spec(case_set: CaseSet, channels: tuple[str, ...], grid: int) -> PreprocessSpec:
    """The synthetic set's own grid, coarsened so no side exceeds ``grid`` voxels (same field of view)."""
    first = read_case(case_set.cases[0], channels)
    shape = next(iter(first.arrays.values())).shape
    factor = max(1.0, max(shape) / grid)
    return PreprocessSpec(
        shape=tuple(max(16, math.ceil(n / factor)) for n in shape),  # type: ignore[arg-type]
        spacing=tuple(s * factor for s in first.spacing),  # type: ignore[arg-type]
    )


def _sample(n: int, k: int) -> set[int]:
    return set(np.random.default_rng(0).choice(n, size=min(n, k), replace=False).tolist())


def _summarise(
    case_set: CaseSet,
    channels: tuple[str, ...],
    labels: bool,
    grids: _Grids,
    request: EvaluateRequest,
    encoder: SegEncoder | None,
    tick: Callable[[], None],
    slicing: Slicing | None = None,
    recorded: dict[str, str] | None = None,
) -> _SetSummary:
    """Stream the set onto the grids, keeping what the metrics need; ``slicing`` cuts its volumes into slices,
    ``recorded`` maps a case to its subject (else a case is its own subject)."""
    summary = _SetSummary()
    keep = _sample(len(case_set) * (slicing.per_volume if slicing else 1), request.diversity_cases)
    read = (*channels, LABEL_CHANNEL) if labels else channels
    recorded = recorded or {}
    for case_index, case in iter_cases(case_set, read):
        for out, fixed, native_arrays, native_spacing in grids.place(case, case_set, case_index, slicing):
            sampled = len(summary.features) in keep
            images = np.stack([out[c] for c in channels]).astype(np.float32)
            seg = out[LABEL_CHANNEL] if labels else None
            summary.features.append(case_features(images, seg))
            summary.subjects.append(recorded.get(case.id, case.id))
            mask = head_mask(images)
            counts = np.stack([np.histogram(v[mask], bins=HIST_BINS)[0] for v in images])
            summary.histogram = counts if summary.histogram is None else summary.histogram + counts
            if labels:
                voxel_ml = float(np.prod(native_spacing)) / (1000.0 if grids.dims == 3 else 1.0)  # a pixel in mm^2 for a slice
                native = native_arrays[LABEL_CHANNEL]
                volume = {name: float((native == code).sum()) * voxel_ml for code, name in BRATS_LABELS.items()}
                volume["whole"] = float((native > 0).sum()) * voxel_ml
                summary.volumes.append(volume)
            if sampled:
                summary.diversity.append(images)
                if len(summary.mosaic) < _MOSAIC_CASES:
                    summary.mosaic.append((images, seg) if grids.dims == 3 else (images[..., None], None if seg is None else seg[..., None]))
            fixed_images = np.stack([fixed[c] for c in channels]).astype(np.float32)
            if encoder is not None:
                summary.encoded.append(encoder.features(fixed_images, channels))
            if labels:
                summary.tumours.append(case_tumour(fixed[LABEL_CHANNEL], grids.tstr.spacing, head_mask(fixed_images)))
            if request.tstr:
                summary.tstr_images.append(fixed_images)
                summary.tstr_labels.append(fixed[LABEL_CHANNEL].astype(np.uint8))
        tick()
    return summary


def _largest_differences(names: list[str], real: np.ndarray, synthetic: np.ndarray, k: int = 5) -> dict[str, float]:
    gap = synthetic.mean(0) - real.mean(0)
    order = np.argsort(-np.abs(gap))[:k]
    return {names[i]: round(float(gap[i]), 4) for i in order}


def _fidelity_and_diversity(real: _SetSummary, synthetic: _SetSummary, dims: int) -> dict[str, Any]:
    """Top-level precision/recall/density/coverage on the encoder's features, and the real-vs-real control."""
    if not real.encoded:
        return {"precision": None, "recall": None, "density": None, "coverage": None}
    real_f, syn_f = standardise(np.stack(real.encoded), np.stack(synthetic.encoded))
    first, second, halves = _control_halves(real.subjects, len(real_f))
    scores = prdc(real_f, syn_f)
    control = prdc(real_f[first], real_f[second]) if min(len(first), len(second)) >= 2 else None
    return {
        **{k: scores[k] for k in ("precision", "recall", "density", "coverage")},
        "prdc": {
            "features": f"{ENCODER_ID} segmenter bottleneck, mean and spread per channel ({real_f.shape[1]} values), standardised by the real set"
            + (f"; each slice read as a slab of {SLAB} copies of itself" if dims == 2 else ""),
            "k": int(scores["k"]),
            "control": None if control is None else {k: control[k] for k in ("precision", "recall", "density", "coverage")},
            "control_note": f"one random half of the real set ({len(second)} cases) against the other half ({len(first)}){halves}",
        },
    }


def _control_halves(subjects: list[str], n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The real-vs-real control's two halves, whole subjects apiece where a subject has several cases (slices of one
    volume are near-copies: halves sharing subjects would make the control read near 1), and a note saying so."""
    order = np.random.default_rng(0).permutation(n)
    if len(subjects) != n or len(set(subjects)) == n:  # one case a subject: a random half of the cases
        return order[: n // 2], order[n // 2 :], ""
    names, of = np.unique(np.asarray(subjects), return_inverse=True)
    members = [np.flatnonzero(of == k) for k in np.random.default_rng(0).permutation(len(names))]
    sizes = np.cumsum([len(m) for m in members])
    cut = int(np.searchsorted(sizes, n // 2)) + 1  # the first subjects until half the cases
    first, second = np.concatenate(members[:cut]), np.concatenate(members[cut:] or [np.array([], dtype=int)])
    return first, second, f", whole subjects apiece ({cut} and {len(names) - cut} subjects)"


def run_evaluation(request: EvaluateRequest, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``metrics.json``, ``report.html`` and ``figures/*.png`` into the new folder ``request.out``."""
    request.validate()
    out = check_target(request.out)
    syn_set = open_set(request.synthetic, "synthetic", request.channels)
    real_set = open_set(request.real, "real", request.channels)
    channels = common_channels([syn_set, real_set], request.channels)
    labels = syn_set.has_labels() and real_set.has_labels()
    if request.tstr and not labels:
        raise MedSynthError("--tstr needs tumour labels (seg) in every case of both sets.")
    if len(real_set) < 2:
        raise MedSynthError("The real set needs at least 2 cases to compare distributions.")
    dims, slice_real = pair_dims(syn_set, real_set)
    slicing = slicing_for(syn_set, channels, request.slices_per_case) if slice_real else None
    spec = evaluation_spec(syn_set, channels, request.grid) if dims == 3 else plane_spec(syn_set, channels, request.grid)
    grids = _Grids(dims, spec, request.tstr_spec(dims))
    total = len(syn_set) + len(real_set) + 1 + (4 * request.tstr_settings.seeds * request.tstr_settings.steps if request.tstr else 0)
    done = [0]

    def tick(step: int = 1) -> None:
        done[0] += step
        if progress:
            progress(min(done[0], total), total)

    encoder = SegEncoder() if any(c in MR_SEQUENCES for c in channels) else None
    synthetic = _summarise(syn_set, channels, labels, grids, request, encoder, tick)
    recorded = recorded_subjects(real_set) if dims == 2 and slicing is None else {}
    real = _summarise(real_set, channels, labels, grids, request, encoder, tick, slicing, recorded)
    audit = audit_set(request.synthetic, request.real, threshold=request.audit_threshold, channels=channels)
    tick()
    names = feature_names(channels, labels)
    real_z, syn_z = standardise(np.stack(real.features), np.stack(synthetic.features))
    mmd_value, width = mmd(syn_z, real_z)
    metrics: dict[str, Any] = {
        "n_synthetic": len(syn_set),
        "n_real": len(real.features),
        "spatial_dims": dims,
        "channels": list(channels),
        "grid": {"shape": list(spec.shape), "spacing": [round(s, 4) for s in spec.spacing]},
        "ms_ssim_synthetic": mean_pairwise_ms_ssim(synthetic.diversity),
        "ms_ssim_real": mean_pairwise_ms_ssim(real.diversity),
        "ms_ssim_setting": ms_ssim_setting(spec.shape),
        "diversity_cases": request.diversity_cases,
        "mmd": mmd_value,
        "frechet_distance": frechet_distance(syn_z, real_z),
        "features": {
            "kind": "radiomics-style intensity, texture and shape features (see report.html)",
            "names": names,
            "standardised_by": "real set mean and standard deviation per feature",
            "mmd_kernel_width": width,
            "largest_differences": _largest_differences(names, real_z, syn_z),
        },
        **_fidelity_and_diversity(real, synthetic, dims),
        "memorised_fraction": audit.memorised_fraction,
        "audit": audit.shareable(),  # no real case names: the report may travel with the synthetic set
    }
    size_key = SIZE_KEYS[dims]
    if labels:
        metrics[f"tumour_{size_key}"] = {
            name: {"synthetic_mean": float(np.mean([v[name] for v in synthetic.volumes])), "real_mean": float(np.mean([v[name] for v in real.volumes]))}
            for name in [*BRATS_LABELS.values(), "whole"]
        }
        real_stats, syn_stats = set_statistics(real.tumours, size_key), set_statistics(synthetic.tumours, size_key)
        metrics["tumour_statistics"] = {"synthetic": syn_stats, "real": real_stats, "synthetic_vs_real": compare(syn_stats, real_stats, size_key)}
    if slicing is not None:
        metrics["real_slicing"] = slicing.describe(len(real_set))
    cohort = _cohort(request.synthetic)
    if cohort is not None:
        metrics["cohort"] = cohort
    if request.tstr:
        metrics.update(
            run_tstr(
                (np.stack(real.tstr_images), np.stack(real.tstr_labels)),
                (np.stack(synthetic.tstr_images), np.stack(synthetic.tstr_labels)),
                request.tstr_settings,
                progress=lambda d, t: tick(),
                subjects=real.subjects,
            )
        )
        if dims == 2:
            metrics["tstr"]["subject_of_a_slice"] = _grouping(slicing, bool(recorded))
    figures = {
        "mosaic": mosaic_png({"synthetic": synthetic.mosaic, "real": real.mosaic}, channels),
        "histograms": histograms_png({"synthetic": synthetic.histogram, "real": real.histogram}, channels),  # type: ignore[dict-item]
    }
    if labels:
        figures["tumour_volumes"] = tumour_volumes_png({"synthetic": synthetic.volumes, "real": real.volumes}, "mL" if dims == 3 else "mm²")
    return _write(out, metrics, figures)


def _grouping(slicing: Slicing | None, recorded: bool) -> str:
    """Where the TSTR split learnt whose each real slice is (a 3D case is its own subject)."""
    if slicing is not None:
        return "the 3D real case it was cut from"
    if recorded:
        return "the subject the real set's manifest.json records for it"
    return "not recorded (no subject in the real set's manifest.json): each slice counts as its own subject"


def _cohort(folder: Path) -> dict[str, Any] | None:
    """Asked against achieved per stratum, when the synthetic set is a cohort (its manifest says so)."""
    import json

    from ..cohort.summary import cohort_summary

    manifest = Path(folder) / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        return cohort_summary(json.loads(manifest.read_text()))
    except (ValueError, MedSynthError):
        return None


def _write(out: Path, metrics: dict[str, Any], figures: dict[str, bytes]) -> Path:
    tmp = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    try:
        (tmp / "figures").mkdir(parents=True)
        for name, png in figures.items():
            write_atomic(tmp / "figures" / f"{name}.png", png)
        write_json(tmp / "metrics.json", metrics)
        write_atomic(tmp / "report.html", render_report(metrics, figures).encode())
        if out.exists():
            out.rmdir()  # checked empty at the start
        os.replace(tmp, out)
    except OSError as exc:
        raise MedSynthError(f"Could not write the report into {out}: {exc.strerror or exc}.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
