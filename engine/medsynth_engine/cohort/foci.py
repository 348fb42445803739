"""Multifocal strata: further foci of one tumour at separate seed sites, sized so their label maps never touch.

A stratum's ``multifocal: N`` (or ``[low, high]``) asks for N separate foci, counted as connected components
(26-neighbourhood) of the written label map. The foci share the main focus's biology (enhancement, necrosis,
oedema extent, irregularity); each gets its own seed site among the stratum's allowed sites, its own shape, and a
radius of ``SATELLITE_SIZE`` times the main one. Sites are drawn at least ``SEPARATION_MM`` apart, and all radii
are capped (one common scale) so that every two foci's outermost possible labels, oedema included, stay a gap of
two voxels apart: the volume solver then works below that cap, and ``volume_ml`` is the foci's total.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np

from ..errors import MedSynthError
from ..phantom.atlas import Atlas
from ..phantom.params import Focus, SubjectParams, TumourParams, subject_matrix

__all__ = ["SEPARATION_MM", "SATELLITE_SIZE", "add_satellites", "radius_cap", "scaled", "check_separable", "reach_factor"]

SEPARATION_MM = 30.0
SATELLITE_SIZE = (0.5, 1.0)


def reach_factor(tumour: TumourParams) -> float:
    """The farthest a focus's labels reach, in units of its core radius (oedema extent, the white-matter bonus, shape noise)."""
    return tumour.oedema_extent + 0.6 + 3.0 * tumour.irregularity


def _to_subject(params: SubjectParams, atlas: Atlas, sites_mm: np.ndarray) -> np.ndarray:
    bc = np.asarray(atlas.brain_centre_mm, dtype=float)
    return (np.asarray(sites_mm, dtype=float) - bc) @ subject_matrix(params).T + bc + np.asarray(params.translation_mm)


def add_satellites(
    params: SubjectParams, atlas: Atlas, tumour: TumourParams, sites_mm: np.ndarray, foci: int, rng: np.random.Generator
) -> TumourParams | None:
    """``tumour`` with ``foci - 1`` satellites at allowed sites ``SEPARATION_MM`` (MNI) from every other focus, or None
    when the drawn main site leaves no room for them."""
    sites = np.asarray(sites_mm, dtype=float)
    main = np.linalg.solve(subject_matrix(params), np.asarray(tumour.centre_mm) - atlas.brain_centre_mm - np.asarray(params.translation_mm))
    chosen = [main + atlas.brain_centre_mm]
    satellites = []
    for _ in range(foci - 1):
        apart = np.all(np.linalg.norm(sites[:, None, :] - np.asarray(chosen)[None], axis=2) >= SEPARATION_MM, axis=1)
        if not apart.any():
            return None
        site = sites[apart][int(rng.integers(int(apart.sum())))]
        chosen.append(site)
        satellites.append(Focus(
            centre_mm=[float(v) for v in _to_subject(params, atlas, site[None])[0]],
            radius_mm=float(tumour.radius_mm * rng.uniform(*SATELLITE_SIZE)),
            shape_seed=int(rng.integers(2**31)),
        ))
    return replace(tumour, satellites=satellites)


def scaled(tumour: TumourParams, radius_mm: float) -> TumourParams:
    """The tumour with its main core radius ``radius_mm`` and every satellite scaled alike."""
    factor = radius_mm / tumour.radius_mm
    satellites = [replace(f, radius_mm=f.radius_mm * factor) for f in tumour.satellites]
    return replace(tumour, radius_mm=radius_mm, satellites=satellites)


def radius_cap(tumour: TumourParams, gap_mm: float) -> float:
    """The largest main radius at which every two foci's labels stay ``gap_mm`` apart (infinite for one focus)."""
    foci = [(np.asarray(tumour.centre_mm), 1.0)] + [(np.asarray(f.centre_mm), f.radius_mm / tumour.radius_mm) for f in tumour.satellites]
    k = reach_factor(tumour)
    caps = [(float(np.linalg.norm(a - b)) - gap_mm) / ((ra + rb) * k) for (a, ra), (b, rb) in combinations(foci, 2)]
    return min(caps, default=float("inf"))


def check_separable(sites_mm: np.ndarray, foci: int, where: str) -> np.ndarray:
    """``foci`` allowed sites spread as far apart as a greedy farthest-point pass finds; refuses a stratum whose sites
    cannot hold them ``SEPARATION_MM`` apart."""
    sites = np.asarray(sites_mm, dtype=float)
    chosen = [sites[int(np.argmin(sites[:, 0]))]]
    nearest = np.linalg.norm(sites - chosen[0], axis=1)
    for _ in range(foci - 1):
        index = int(np.argmax(nearest))
        if nearest[index] < SEPARATION_MM:
            raise MedSynthError(
                f"{where} cannot be met: its allowed sites do not hold {foci} tumour foci {SEPARATION_MM:g} mm apart; ask for fewer foci or a larger region."
            )
        chosen.append(sites[index])
        nearest = np.minimum(nearest, np.linalg.norm(sites - sites[index], axis=1))
    return np.asarray(chosen)
