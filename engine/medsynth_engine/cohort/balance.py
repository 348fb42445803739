"""``--balance``: the common balanced cohorts without a file, as strata with equal counts.

Factors (comma-separated, crossed): ``size`` (small 5-30 ml, medium 30-100 ml, large 100-300 ml whole tumour),
``enhancing`` (yes/no), ``hemisphere`` (left/right), ``tumour`` (tumour/healthy; crossed with the others only
on its tumour side). ``n`` cases are split as evenly as the strata allow; the first strata take the remainder.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from ..errors import MedSynthError
from .spec import CohortSpec, Stratum, TumourConstraints

__all__ = ["FACTORS", "balanced_cohort"]

FACTORS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "size": [("small", {"volume_ml": (5.0, 30.0)}), ("medium", {"volume_ml": (30.0, 100.0)}), ("large", {"volume_ml": (100.0, 300.0)})],
    "enhancing": [("enhancing", {"enhancing": True}), ("non-enhancing", {"enhancing": False})],
    "hemisphere": [("left", {"hemisphere": "left"}), ("right", {"hemisphere": "right"})],
    "tumour": [],  # one healthy stratum beside the tumour strata
}


def balanced_cohort(balance: str, n: int) -> CohortSpec:
    """Strata crossing the named factors, ``n`` cases in all; MedSynthError for an unknown factor or too few cases."""
    names = [f.strip() for f in balance.split(",") if f.strip()]
    unknown = [f for f in names if f not in FACTORS]
    if not names or unknown:
        raise MedSynthError(f"Unknown --balance factor(s) {', '.join(unknown) or '(none)'}; use any of {', '.join(FACTORS)}, comma-separated.")
    if len(set(names)) != len(names):
        raise MedSynthError("--balance names a factor twice; name each once.")
    cells: list[tuple[str, TumourConstraints | None]] = [("", TumourConstraints())]
    for factor in (f for f in names if f != "tumour"):
        cells = [
            (f"{label}-{level}" if label else level, replace(constraints, **extra))
            for (label, constraints), (level, extra) in itertools.product(cells, FACTORS[factor])
        ]
    if "tumour" in names:
        cells = [(label or "tumour", constraints) for label, constraints in cells] + [("healthy", None)]
    if n < len(cells):
        raise MedSynthError(f"--balance {balance} makes {len(cells)} strata; ask for at least {len(cells)} cases with -n.")
    base, extra_cases = divmod(n, len(cells))
    strata = [Stratum(name=name, count=base + (1 if i < extra_cases else 0), tumour=t) for i, (name, t) in enumerate(cells)]
    return CohortSpec(tuple(strata))
