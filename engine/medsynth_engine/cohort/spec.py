"""A cohort file: strata with counts and constraints on what the phantom draws, read from YAML or JSON.

The minimal form (issue 18)::

    strata:
      - {name: small-left,  count: 40, tumour: {volume_ml: [5, 20],   hemisphere: left,  enhancing: false}}
      - {name: large-right, count: 40, tumour: {volume_ml: [60, 120], hemisphere: right, enhancing: true}}
      - {name: healthy,     count: 20, tumour: none}

Every mistake is refused with one sentence that names the file, before anything is drawn or written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MedSynthError

__all__ = ["Stratum", "TumourConstraints", "CohortSpec", "read_cohort", "parse_cohort", "LOBES", "RANGES", "MAX_FOCI"]

LOBES = ("frontal", "parietal", "temporal", "occipital")
#: Keys of ranges and the interval the phantom can draw for each (wider than its random prior where marked).
RANGES: dict[str, tuple[float, float]] = {
    "volume_ml": (0.1, 800.0),
    "necrosis_fraction": (0.0, 0.8),  # radius of the necrotic core relative to the core radius
    "oedema_extent": (1.1, 3.0),  # oedema reach as a multiple of the core radius (prior 1.4-2.6)
    "brain_size": (0.85, 1.15),  # mean per-axis scale of the brain
    "ventricle_enlargement": (1.0, 2.0),  # age proxy (prior 1 + Gamma(2, 0.08))
    "noise": (0.0, 0.1),  # Rician sigma relative to white matter (prior 0.01-0.04)
    "bias": (0.0, 0.4),  # amplitude of the smooth bias field (prior 0.03-0.2)
    "slice_thickness_mm": (1.0, 6.0),  # FWHM of the thick axis (prior 1-3)
}
_TUMOUR_KEYS = {"volume_ml", "hemisphere", "lobe", "centre_mm", "radius_mm", "enhancing", "necrosis_fraction", "oedema_extent", "multifocal"}
_ANATOMY_KEYS = {"brain_size", "ventricle_enlargement", "noise", "bias", "slice_thickness_mm"}
MAX_CASES_PER_COHORT = 100_000
#: Most separate foci a multifocal stratum may ask for.
MAX_FOCI = 5


@dataclass(frozen=True)
class TumourConstraints:
    """Constraints on one stratum's tumour; ``None`` leaves that attribute to the phantom's prior."""

    volume_ml: tuple[float, float] | None = None
    hemisphere: str | None = None
    lobe: str | None = None
    centre_mm: tuple[float, float, float] | None = None  # MNI mm; sites within radius_mm of it
    radius_mm: float | None = None
    enhancing: bool | None = None
    necrosis_fraction: tuple[float, float] | None = None
    oedema_extent: tuple[float, float] | None = None
    multifocal: tuple[int, int] | None = None  # separate foci (connected components of the label map); volume_ml is their total

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Stratum:
    """``count`` cases; ``tumour`` None means healthy; ``anatomy`` holds ranges of the anatomy/acquisition traits."""

    name: str
    count: int
    tumour: TumourConstraints | None
    anatomy: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "tumour": self.tumour.to_dict() if self.tumour is not None else "none",
            "anatomy": {k: list(v) for k, v in self.anatomy.items()},
        }


@dataclass(frozen=True)
class CohortSpec:
    strata: tuple[Stratum, ...]

    @property
    def total(self) -> int:
        return sum(s.count for s in self.strata)

    def to_dict(self) -> dict[str, Any]:
        return {"strata": [s.to_dict() for s in self.strata]}


def read_cohort(path: Path) -> CohortSpec:
    """Parse a cohort file (``.yaml``/``.yml`` or ``.json``); MedSynthError naming the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MedSynthError(f"The cohort file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MedSynthError(f"Cannot read the cohort file {path}: {getattr(exc, 'strerror', None) or exc}.") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MedSynthError(f"The cohort file {path} is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise MedSynthError(f"The cohort file {path} is not valid YAML{where}; check its indentation and brackets.") from None
    return parse_cohort(data, str(path))


def parse_cohort(data: Any, source: str = "the cohort") -> CohortSpec:
    """Check the structure of a loaded cohort document and turn it into a ``CohortSpec``."""
    if not isinstance(data, dict) or not isinstance(data.get("strata"), list) or not data["strata"]:
        raise MedSynthError(f"{source} needs a non-empty 'strata' list at its top level.")
    extra = set(data) - {"strata"}
    if extra:
        raise MedSynthError(f"{source} has unknown top-level key(s) {', '.join(sorted(extra))}; only 'strata' is read.")
    strata = []
    for i, raw in enumerate(data["strata"]):
        strata.append(_stratum(raw, f"{source}, stratum {i + 1}"))
    names = [s.name for s in strata]
    if len(set(names)) != len(names):
        raise MedSynthError(f"{source} names two strata alike; give every stratum its own name.")
    spec = CohortSpec(tuple(strata))
    if spec.total > MAX_CASES_PER_COHORT:
        raise MedSynthError(f"{source} asks for {spec.total:,} cases; one run makes at most {MAX_CASES_PER_COHORT:,}.")
    return spec


def _stratum(raw: Any, where: str) -> Stratum:
    if not isinstance(raw, dict):
        raise MedSynthError(f"{where} is not a mapping with name, count and tumour.")
    unknown = set(raw) - {"name", "count", "tumour", "anatomy"}
    if unknown:
        raise MedSynthError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}; use name, count, tumour, anatomy.")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise MedSynthError(f"{where} needs a 'name' of 1-64 characters.")
    where = f"{where} ('{name}')"
    count = raw.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise MedSynthError(f"{where} needs a whole 'count' of at least 1, not {count!r}.")
    tumour = raw.get("tumour", {})
    if tumour in ("none", None, False):
        constraints = None
    elif isinstance(tumour, dict):
        constraints = _tumour(tumour, where)
    else:
        raise MedSynthError(f"{where}: 'tumour' must be a mapping of constraints or 'none', not {tumour!r}.")
    anatomy_raw = raw.get("anatomy", {}) or {}
    if not isinstance(anatomy_raw, dict):
        raise MedSynthError(f"{where}: 'anatomy' must be a mapping of ranges.")
    unknown = set(anatomy_raw) - _ANATOMY_KEYS
    if unknown:
        raise MedSynthError(f"{where}: unknown anatomy key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(_ANATOMY_KEYS))}.")
    anatomy = {key: _range(value, key, where) for key, value in anatomy_raw.items()}
    return Stratum(name=name, count=count, tumour=constraints, anatomy=anatomy)


def _tumour(raw: dict, where: str) -> TumourConstraints:
    unknown = set(raw) - _TUMOUR_KEYS
    if unknown:
        raise MedSynthError(f"{where}: unknown tumour key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(_TUMOUR_KEYS))}.")
    hemisphere = raw.get("hemisphere")
    if hemisphere is not None and hemisphere not in ("left", "right"):
        raise MedSynthError(f"{where}: hemisphere must be left or right, not {hemisphere!r}.")
    lobe = raw.get("lobe")
    if lobe is not None and lobe not in LOBES:
        raise MedSynthError(f"{where}: lobe must be one of {', '.join(LOBES)}, not {lobe!r}.")
    enhancing = raw.get("enhancing")
    if enhancing is not None and not isinstance(enhancing, bool):
        raise MedSynthError(f"{where}: enhancing must be true or false, not {enhancing!r}.")
    centre = raw.get("centre_mm")
    if centre is not None:
        if not isinstance(centre, list) or len(centre) != 3 or not all(_number(v) for v in centre):
            raise MedSynthError(f"{where}: centre_mm must be three numbers (MNI x, y, z in mm).")
        centre = tuple(float(v) for v in centre)
    radius = raw.get("radius_mm")
    if radius is not None and (not _number(radius) or not 1.0 <= radius <= 100.0):
        raise MedSynthError(f"{where}: radius_mm must be a number from 1 to 100.")
    if (centre is None) != (radius is None):
        raise MedSynthError(f"{where}: centre_mm and radius_mm go together; give both or neither.")
    ranges = {k: _range(raw[k], k, where) for k in ("volume_ml", "necrosis_fraction", "oedema_extent") if k in raw}
    return TumourConstraints(
        hemisphere=hemisphere, lobe=lobe, centre_mm=centre, radius_mm=None if radius is None else float(radius), enhancing=enhancing,
        multifocal=_foci(raw["multifocal"], where) if "multifocal" in raw else None, **ranges
    )


def _foci(value: Any, where: str) -> tuple[int, int]:
    """``multifocal: N`` or ``[low, high]``: whole numbers of foci from 1 to MAX_FOCI."""
    value = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise MedSynthError(f"{where}: multifocal must be a whole number of foci or a range [low, high].")
    if not 1 <= value[0] <= value[1] <= MAX_FOCI:
        raise MedSynthError(f"{where}: multifocal [{value[0]}, {value[1]}] must lie within 1 to {MAX_FOCI} foci, low end first.")
    return value[0], value[1]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range(value: Any, key: str, where: str) -> tuple[float, float]:
    if _number(value):
        value = [value, value]
    if not isinstance(value, list) or len(value) != 2 or not all(_number(v) for v in value):
        raise MedSynthError(f"{where}: {key} must be a number or a range [low, high].")
    low, high = float(value[0]), float(value[1])
    lo_ok, hi_ok = RANGES[key]
    if low > high:
        raise MedSynthError(f"{where}: {key} range [{low:g}, {high:g}] has its low end above its high end.")
    if low < lo_ok or high > hi_ok:
        raise MedSynthError(f"{where}: {key} [{low:g}, {high:g}] lies outside what the phantom models ({lo_ok:g} to {hi_ok:g}).")
    return low, high
