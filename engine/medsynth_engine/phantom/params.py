"""Per-subject parameters of the phantom, drawn from a seed and replayed by the renderer.

Following TorchIO's habit, randomness lives only here: ``draw_subject`` turns a seed into a plain,
JSON-serialisable ``SubjectParams``; ``render`` is deterministic given those parameters. Every generated
case records its parameters, so it can be replayed or inspected (tumour size, location, noise level).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .atlas import Atlas

__all__ = ["SubjectParams", "TumourParams", "Focus", "draw_subject", "neutral_subject", "subject_matrix", "atlas_to_subject"]


@dataclass
class Focus:
    """A further focus of a multifocal tumour: its own site, size and shape; the rest as the main focus."""

    centre_mm: list[float]
    radius_mm: float
    shape_seed: int


@dataclass
class TumourParams:
    """A glioma-like lesion: necrotic core, enhancing rim, surrounding oedema, and its mass effect."""

    centre_mm: list[float]
    radius_mm: float  # outer radius of the tumour core (necrosis + enhancing rim)
    necrosis_fraction: float  # radius of the necrotic core relative to radius_mm (0: none)
    enhancing: bool  # False: non-enhancing core (labelled NCR/NET = 1, as in BraTS)
    oedema_extent: float  # oedema reaches this multiple of radius_mm (shaped by white matter)
    irregularity: float  # amplitude of the smooth shape noise, relative to radius
    mass_effect: float  # fraction of the core volume that displaces rather than infiltrates tissue
    gadolinium_mM: float  # contrast agent concentration in enhancing tissue
    shape_seed: int
    satellites: list[Focus] = field(default_factory=list)  # further foci (multifocal); none in the prior

    def __post_init__(self) -> None:
        self.satellites = [f if isinstance(f, Focus) else Focus(**f) for f in self.satellites]


@dataclass
class SubjectParams:
    """Everything that makes one synthetic subject; JSON-serialisable via ``asdict``."""

    seed: int
    scale: list[float]  # brain size per axis
    rotation_deg: list[float]
    translation_mm: list[float]
    deformation_mm: float
    deformation_seed: int
    ventricle_enlargement: float  # 1 = atlas ventricles
    relaxation_jitter: dict[str, list[float]]  # tissue -> [T1 factor, T2 factor]
    gain: float
    bias_amplitude: float
    bias_seed: int
    noise_fraction: float  # Rician noise sigma relative to white-matter signal
    acquisition_fwhm_mm: list[float]  # effective resolution per axis
    skull_mm: float
    scalp_mm: float
    csf_rim_mm: float
    shell_seed: int
    ct_noise_hu: float
    tumour: TumourParams | None = field(default=None)

    def to_dict(self) -> dict:
        data = asdict(self)
        if data["tumour"] is not None and not data["tumour"]["satellites"]:
            del data["tumour"]["satellites"]  # a one-focus tumour records what it always recorded
        return data

    @staticmethod
    def from_dict(data: dict) -> SubjectParams:
        data = dict(data)
        tumour = data.pop("tumour", None)
        return SubjectParams(**data, tumour=TumourParams(**tumour) if tumour else None)


def subject_matrix(params: SubjectParams) -> np.ndarray:
    """3x3 matrix taking atlas offsets (from the brain centre) to subject offsets: rotation times scale."""
    rx, ry, rz = (math.radians(a) for a in params.rotation_deg)
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x @ np.diag(params.scale)


def atlas_to_subject(params: SubjectParams, atlas: Atlas, x_mm: np.ndarray) -> np.ndarray:
    """Map an atlas point to subject space (ignoring the small smooth deformation)."""
    bc = atlas.brain_centre_mm
    return subject_matrix(params) @ (np.asarray(x_mm) - bc) + bc + np.asarray(params.translation_mm)


def draw_subject(seed: int, atlas: Atlas, *, tumour: bool = True) -> SubjectParams:
    """Draw one subject's parameters from ``seed`` (numpy's PCG64; identical on every platform)."""
    rng = np.random.default_rng(seed)
    size = rng.normal(1.0, 0.05)
    scale = (size * rng.normal(1.0, 0.02, size=3)).clip(0.85, 1.15)
    jitter = {
        name: [float(rng.normal(1.0, 0.04)), float(rng.normal(1.0, 0.05))]
        for name in ("white_matter", "grey_matter", "csf", "oedema", "enhancing_tumour", "necrosis")
    }
    fwhm = [1.0, 1.0, 1.0]
    thick_axis = int(rng.integers(0, 3))
    fwhm[thick_axis] = float(rng.uniform(1.0, 3.0))
    params = SubjectParams(
        seed=int(seed),
        scale=[float(v) for v in scale],
        rotation_deg=[float(v) for v in rng.normal(0.0, 3.0, size=3).clip(-8, 8)],
        translation_mm=[float(v) for v in rng.normal(0.0, 2.0, size=3).clip(-5, 5)],
        deformation_mm=float(rng.uniform(1.0, 3.5)),
        deformation_seed=int(rng.integers(2**31)),
        ventricle_enlargement=float(1.0 + rng.gamma(2.0, 0.08)),
        relaxation_jitter=jitter,
        gain=float(rng.uniform(0.85, 1.15)),
        bias_amplitude=float(rng.uniform(0.03, 0.2)),
        bias_seed=int(rng.integers(2**31)),
        noise_fraction=float(rng.uniform(0.01, 0.04)),
        acquisition_fwhm_mm=fwhm,
        skull_mm=float(rng.uniform(5.0, 8.0)),
        scalp_mm=float(rng.uniform(4.0, 7.0)),
        csf_rim_mm=float(rng.uniform(1.0, 2.5)),
        shell_seed=int(rng.integers(2**31)),
        ct_noise_hu=float(rng.uniform(3.0, 8.0)),
    )
    if tumour:
        site = atlas.tumour_sites_mm[int(rng.integers(len(atlas.tumour_sites_mm)))]
        enhancing = bool(rng.random() < 0.85)
        params.tumour = TumourParams(
            centre_mm=[float(v) for v in atlas_to_subject(params, atlas, site)],
            radius_mm=float(rng.uniform(7.0, 22.0)),
            necrosis_fraction=float(rng.uniform(0.3, 0.75)) if (rng.random() < 0.8 and enhancing) else 0.0,
            enhancing=enhancing,
            oedema_extent=float(rng.uniform(1.4, 2.6)),
            irregularity=float(rng.uniform(0.05, 0.25)),
            mass_effect=float(rng.uniform(0.3, 0.9)),
            gadolinium_mM=float(rng.uniform(0.15, 0.5)),
            shape_seed=int(rng.integers(2**31)),
        )
    return params


def neutral_subject() -> SubjectParams:
    """The atlas itself: no deformation, bias, noise or jitter, no tumour (for validation against real templates)."""
    return SubjectParams(
        seed=0,
        scale=[1.0, 1.0, 1.0],
        rotation_deg=[0.0, 0.0, 0.0],
        translation_mm=[0.0, 0.0, 0.0],
        deformation_mm=0.0,
        deformation_seed=0,
        ventricle_enlargement=1.0,
        relaxation_jitter={name: [1.0, 1.0] for name in ("white_matter", "grey_matter", "csf", "oedema", "enhancing_tumour", "necrosis")},
        gain=1.0,
        bias_amplitude=0.0,
        bias_seed=0,
        noise_fraction=0.0,
        acquisition_fwhm_mm=[1.0, 1.0, 1.0],
        skull_mm=6.5,
        scalp_mm=5.5,
        csf_rim_mm=1.75,
        shell_seed=0,
        ct_noise_hu=0.0,
    )
