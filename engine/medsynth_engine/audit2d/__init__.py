"""The memorisation audit for 2D sets (single-slice cases): synthetic slices against every training slice."""

from .run import SliceAuditResult, is_slice_set, run_slice_audit

__all__ = ["SliceAuditResult", "is_slice_set", "run_slice_audit"]
