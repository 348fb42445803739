"""The memorisation audit for 2D sets (single-slice cases): synthetic slices against every training slice."""

from .choose import audit_set
from .run import SliceAuditResult, is_slice_set, run_slice_audit

__all__ = ["SliceAuditResult", "audit_set", "is_slice_set", "run_slice_audit"]
