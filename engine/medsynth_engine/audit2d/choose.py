"""Which memorisation audit a synthetic set gets: slice against training slice for a 2D set, case against case for 3D.

One choice for every caller (``medsynth audit``, the export gate, ``medsynth evaluate``), so a 2D set is never
fingerprinted as a flat volume by one of them and slice by slice by another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..evaluate.audit import DEFAULT_THRESHOLD, AuditResult, run_audit
from ..evaluate.sets import open_set
from .run import is_slice_set, run_slice_audit

__all__ = ["audit_set"]


def audit_set(
    synthetic: Path | str,
    train: Path | str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    channels: tuple[str, ...] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """The audit that fits ``synthetic``: ``run_slice_audit`` when every case is a single slice, else ``run_audit``;
    the result's ``dimensions`` says which ran."""
    flat = is_slice_set(open_set(synthetic, "synthetic", channels))
    audit = run_slice_audit if flat else run_audit
    return audit(synthetic, train, threshold=threshold, channels=channels, progress=progress)
