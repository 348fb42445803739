"""The export gate: generate a set, audit it against the training set, and leave probable copies out.

The set is generated into its hidden temporary folder beside the target (``journal.py``), audited there once
complete (a resumed run audits the whole set; a 2D set slice by slice, ``audit2d``), flagged cases are removed and
the audit is recorded in ``manifest.json`` (scores and threshold; no training case names or files), and only then is
the folder renamed into place: nobody ever sees a set that still holds a copy. ``publish_audited`` is the set writer's publish step.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from MedSynthLib.conventions import LABEL_CHANNEL

from ..audit2d import audit_set
from ..errors import MedSynthError
from .audit import AuditResult
from .sets import open_set

__all__ = ["audit_channels", "publish_audited"]


def audit_channels(generated: tuple[str, ...], train: Path) -> tuple[str, ...]:
    """The generated image channels the training set also has; refuses a training set that cannot be audited against."""
    train_set = open_set(train, "training")
    if len(train_set) < 2:
        raise MedSynthError("The training set for --audit-against needs at least 2 cases: the audit compares against their typical distance.")
    shared = tuple(c for c in generated if c != LABEL_CHANNEL and c in train_set.image_channels())
    if not shared:
        raise MedSynthError(
            f"None of the generated image channels ({', '.join(c for c in generated if c != LABEL_CHANNEL) or 'none'}) is in "
            f"every case of the training set {train}; generate a channel it has."
        )
    return shared


def _drop_cases(folder: Path, manifest: dict[str, Any], flagged: set[str]) -> None:
    for case in manifest["cases"]:
        if case["id"] not in flagged:
            continue
        for rel in case["files"].values():
            (folder / rel).unlink(missing_ok=True)
        case_dir = folder / case["id"]
        if case_dir.is_dir():
            shutil.rmtree(case_dir)
    manifest["cases"] = [c for c in manifest["cases"] if c["id"] not in flagged]
    dataset = folder / "dataset.json"
    if dataset.is_file():
        meta = json.loads(dataset.read_text())
        meta["numTraining"] = len(manifest["cases"])
        kept = {c["files"][LABEL_CHANNEL] for c in manifest["cases"] if LABEL_CHANNEL in c["files"]}
        meta["training"] = [t for t in meta.get("training", []) if t.get("label") in kept]
        dataset.write_text(json.dumps(meta, indent=2) + "\n")


def publish_audited(
    staging: Path,
    out: Path,
    train: Path,
    *,
    threshold: float,
    channels: tuple[str, ...],
    audit_progress: Callable[[int, int], None] | None = None,
    what: str = "generated",
) -> Path:
    """Audit the complete set in ``staging`` against ``train``, drop flagged cases, record the audit, rename to ``out``.

    The set writer removes ``staging`` if this raises; ``out`` is checked new or empty beforehand.
    """
    result: AuditResult = audit_set(staging, train, threshold=threshold, channels=channels, progress=audit_progress)
    flagged = {c["case"] for c in result.flagged}
    if len(flagged) == len(result.cases):
        raise MedSynthError(f"All {len(flagged)} {what} case(s) were flagged as probable copies of training cases; nothing was written.")
    manifest = json.loads((staging / "manifest.json").read_text())
    _drop_cases(staging, manifest, flagged)
    manifest["audit"] = {**result.shareable(), "left_out": sorted(flagged)}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if out.exists():
        out.rmdir()  # checked empty by the caller
    os.replace(staging, out)
    return out
