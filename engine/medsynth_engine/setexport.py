"""Re-write an existing synthetic set in another layout or with a subset of its channels.

Every volume is read and written again through ``nifti_io.write_nifti`` (so the result is anonymised however
the source files were made), into a temporary folder renamed into place only when complete. The new
manifest keeps the source's model and each case's seed and parameters, so any case can still be replayed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from MedSynthLib.conventions import LABEL_CHANNEL, NNUNET_FROM_BRATS, parse_channels

from .errors import MedSynthError
from .inputcheck import check_same_grid
from .journal import file_sha256, is_temporary, resume_hint
from .nifti_io import read_nifti
from .registry import SynthCase
from .setwriter import LAYOUTS, SetWriter, space_error

__all__ = ["read_set_manifest", "export_set"]

_KEEP = ("format", "format_version", "software", "model", "parameters", "labels", "label_names", "synthetic")


def read_set_manifest(source: Path) -> dict[str, Any]:
    """The manifest of a MedSynth set, checked enough that a re-layout can rely on it."""
    source = Path(source)
    path = source / "manifest.json"
    if not source.is_dir():
        raise MedSynthError(f"The source {source} is not a folder; give the folder of a MedSynth set.")
    if is_temporary(source):
        raise MedSynthError(f"{source} is the temporary folder of an unfinished run, not a set; resume that run to finish it.")
    if not path.is_file():
        raise MedSynthError(f"{source} is not a MedSynth set: it has no manifest.json.")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MedSynthError(f"The manifest {path} is not valid JSON.") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != "medsynth-synthetic-set"
        or manifest.get("layout") not in LAYOUTS
        or not isinstance(manifest.get("cases"), list)
        or not isinstance(manifest.get("channels"), list)
    ):
        raise MedSynthError(f"The manifest {path} does not describe a MedSynth set (format, layout, channels or cases missing).")
    for case in manifest["cases"]:
        if not isinstance(case, dict) or not isinstance(case.get("files"), dict):
            raise MedSynthError(f"The manifest {path} has a case without its file list.")
    return manifest


def export_set(
    source: Path,
    out: Path,
    *,
    layout: str = "brats",
    channels: str | list[str] | tuple[str, ...] | None = None,
    progress: Callable[[int, int], None] | None = None,
    audit_against: Path | None = None,
    audit_threshold: float = 0.5,
    resume: bool = False,
    discard: bool = False,
    resumed: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the set at ``source`` again into the new folder ``out``; returns ``out``.

    Args:
        source: a set written by ``medsynth generate`` (or by an earlier export).
        out: new or empty folder.
        layout: ``brats`` or ``nnunet``.
        channels: subset of the source's channels (default: all of them).
        progress: called with (cases done, cases in all).
        audit_against: a training set: the export is audited against it before it appears, probable copies of
            training cases are left out and the audit is recorded in the manifest (the export gate).
        audit_threshold: the audit's score at or above which a case counts as a probable copy.
        resume: continue the interrupted export into ``out`` from its journal (the same arguments).
        discard: remove what an interrupted export into ``out`` left, then start afresh.
        resumed: called once with (cases kept from the interrupted export, cases in all) when there were any.
    """
    source = Path(source).resolve()
    manifest = read_set_manifest(source)
    available = tuple(manifest["channels"])
    try:
        wanted = parse_channels(channels) if channels is not None else parse_channels(available)
    except ValueError as exc:
        raise MedSynthError(str(exc)) from None
    missing = [c for c in wanted if c not in available]
    if missing:
        raise MedSynthError(f"The source set has no {', '.join(missing)} channel; it holds {', '.join(available)}.")
    if layout not in LAYOUTS:
        raise MedSynthError(f"Unknown layout '{layout}'; use brats or nnunet.")
    cases = manifest["cases"]
    for case in cases:
        for channel in wanted:
            rel = case["files"].get(channel)
            if not isinstance(rel, str) or not os.path.lexists(source / rel):  # the reader names odd files
                raise MedSynthError(f"Case {case.get('id')} of {source} lacks its {channel} file; the set is incomplete.")
            if not _inside(source, rel):
                raise MedSynthError(f"{source / rel} leads outside the set {source} (a link); a set holds its own files.")
    kept = {k: manifest[k] for k in _KEEP if k in manifest}
    kept["channels"] = list(wanted)
    kept["export"] = {"source_layout": manifest["layout"], "source_channels": list(available)}
    from_nnunet = manifest["layout"] == "nnunet"
    publish = None
    if audit_against is not None:  # the export gate: the complete set is audited before it is published
        from .evaluate.gate import audit_channels, publish_audited

        train = Path(audit_against)
        audit_with = audit_channels(wanted, train)

        def publish(staging: Path, target: Path) -> Path:
            return publish_audited(staging, target, train, threshold=audit_threshold, channels=audit_with, what="exported")

    arguments = {
        "kind": "export", "source": str(source), "source_manifest_sha256": file_sha256(source / "manifest.json"),
        "layout": layout, "channels": list(wanted),
        "audit_against": str(Path(audit_against).absolute()) if audit_against is not None else None,
        "audit_threshold": audit_threshold if audit_against is not None else None,
    }
    size = sum(os.stat(source / case["files"][c]).st_size for case in cases for c in wanted if os.path.isfile(source / case["files"][c]))
    writer = SetWriter(out, layout, wanted, arguments=arguments, resume=resume, discard=discard,
                       cases=len(cases), case_bytes=-(-size // max(len(cases), 1)))
    try:
        with writer:
            done = len(writer.finished)
            if done and resumed:
                resumed(done, len(cases))
            for index, case in enumerate(cases):
                if index in writer.finished:
                    continue
                arrays: dict[str, np.ndarray] = {}
                affine = first = None
                for channel in wanted:
                    path = source / case["files"][channel]
                    array, affine_here = read_nifti(path)
                    if affine is None:
                        affine, first = affine_here, path
                    else:
                        check_same_grid(path, array.shape, affine_here, first, next(iter(arrays.values())).shape, affine)
                    if channel == LABEL_CHANNEL and from_nnunet:
                        array = _to_brats_labels(array)
                    arrays[channel] = array
                writer.add(SynthCase(arrays=arrays, affine=affine, params=case.get("params", {})), int(case.get("seed", 0)), index)
                done += 1
                if progress:
                    progress(done, len(cases))
            return writer.commit(kept, publish)
    except OSError as exc:
        if writer.tmp.exists():
            raise MedSynthError(f"Could not write {out} ({exc.strerror or exc}); {resume_hint(writer.out)}") from None
        error = space_error(exc, Path(out))
        if error is not None:
            raise error from None
        raise MedSynthError(f"Could not write {out}: {exc.strerror or exc}.") from None


def _inside(root: Path, rel: str) -> bool:
    return Path(os.path.realpath(root / rel)).is_relative_to(root)  # a loop of links is refused by the reader, not here


def _to_brats_labels(seg: np.ndarray) -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)
    for brats, nnunet in NNUNET_FROM_BRATS.items():
        lut[nnunet] = brats
    return lut[np.clip(seg, 0, 255).astype(np.uint8)]
