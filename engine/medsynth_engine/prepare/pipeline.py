"""``prepare``: hospital DICOM studies or NIfTI folders in, BraTS-ready cases out (the steps, in order).

Per study: load the chosen volume of each sequence, optionally correct bias (N4), co-register every sequence
rigidly to the T1ce (else T1, T2, FLAIR), fit the reference affinely to MNI152 2009, resample everything once
onto a 1 mm grid, skull-strip, write the case with its transforms and QC. Broken input (an unreadable file, a
series with a missing slice, a study with no usable MR...) stops the run with one sentence naming it, before
anything appears in the output; with ``skip_bad`` it is listed (stderr and the run's summary) and the batch goes
on. The set appears only when the run ends.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..biasfield import n4_image
from ..errors import MedSynthError
from ..journal import case_id as keyed_case_id
from ..journal import new_id_key
from . import qc
from .classify import load_sequence_map
from .dicom import Skipped
from .register import Template, affine_register, load_template, output_grid, resample, rigid_register
from .skullstrip import atlas_mask, deepbet_available, deepbet_mask
from .sources import Study, find_studies
from .writer import PreparedSetWriter, check_key_path, sitk_to_ras, write_key

__all__ = ["PrepareRequest", "prepare", "BadInput", "REFERENCE_ORDER"]

REFERENCE_ORDER = ("t1ce", "t1", "t2", "flair")
ATLASES = ("mni152", "none")
SKULL_STRIP = ("auto", "model", "atlas", "none")


@dataclass
class PrepareRequest:
    """What ``medsynth prepare`` takes; ``spacing_mm`` is the output grid (BraTS: 1 mm)."""

    input: Path
    out: Path
    atlas: str = "mni152"
    skull_strip: str = "auto"
    n4: bool = False
    sequences: Path | None = None
    keep_key: Path | None = None
    device: str | None = None
    spacing_mm: float = 1.0
    skip_bad: bool = False
    log: Callable[[str], None] = field(default=lambda message: print(message, file=sys.stderr))

    def validate(self) -> None:
        self.input = Path(self.input)
        if not self.input.is_dir():
            raise MedSynthError(f"The input folder {self.input} does not exist or is not a folder.")
        if self.atlas not in ATLASES:
            raise MedSynthError(f"Unknown atlas '{self.atlas}'; use mni152 or none.")
        if self.skull_strip not in SKULL_STRIP:
            raise MedSynthError(f"Unknown skull stripping '{self.skull_strip}'; use auto, model, atlas or none.")
        if self.skull_strip == "model" and not deepbet_available():
            raise MedSynthError("--skull-strip model needs deepbet (pip install --no-deps deepbet==1.0.2); or use atlas.")
        if not 0.5 <= float(self.spacing_mm) <= 4.0:
            raise MedSynthError(f"The output spacing {self.spacing_mm} mm is outside 0.5-4 mm.")
        out = Path(self.out).absolute()
        if out == self.input.absolute() or out.is_relative_to(self.input.absolute()):
            raise MedSynthError(f"The output folder {out} is inside the input folder; choose a folder elsewhere.")


class BadInput(MedSynthError):
    """Broken input that stops a run without ``skip_bad``: one sentence naming it and how to go on."""


def _bad(reason: str, more: int = 0) -> BadInput:
    reason = re.sub(r"[;,]? ?(series |study )?skipped\.?$", "", reason.strip()).rstrip(". ")
    extra = f" ({more} more problem(s) in the input)" if more else ""
    return BadInput(f"{reason}{extra}; fix the input or use --skip-bad to prepare the rest (nothing was written).")


def _anonymous(text: str, names: list[str], label: str) -> str:
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, label)
    return re.sub(r"(/[^\s;,]+)+", "a file", text)


def _scales(transform: sitk.AffineTransform) -> list[float]:
    return [float(s) for s in np.linalg.svd(np.array(transform.GetMatrix()).reshape(3, 3), compute_uv=False)]


def _prepare_study(study: Study, request: PrepareRequest, template: Template | None, writer: PreparedSetWriter) -> dict:
    started = time.monotonic()
    log = request.log
    names = [v.name for v in study.volumes.values()] + [s.what for s in study.skipped]
    images: dict[str, sitk.Image] = {}
    steps: dict[str, float] = {}
    t = time.monotonic()
    for sequence, volume in list(study.volumes.items()):
        try:
            images[sequence] = sitk.Cast(volume.load(), sitk.sitkFloat32)
        except ValueError as exc:
            if not request.skip_bad:
                raise _bad(str(exc)) from None
            del study.volumes[sequence]
            study.skipped.append(Skipped(volume.name, str(exc), bad=True))
            log(f"medsynth prepare: {exc}")
    if not images:
        raise MedSynthError(f"{study.key} has no usable MR series (t1, t1ce, t2 or flair).")
    steps["read"] = time.monotonic() - t
    if request.n4:
        t = time.monotonic()
        images = {k: n4_image(v) for k, v in images.items()}
        steps["n4"] = time.monotonic() - t
    reference = next(s for s in REFERENCE_ORDER if s in images)
    t = time.monotonic()
    rigid: dict[str, sitk.Transform] = {reference: sitk.Euler3DTransform()}
    coregistration: dict[str, dict] = {}
    for sequence, image in images.items():
        if sequence == reference:
            continue
        transform, before, after = rigid_register(images[reference], image)
        rigid[sequence] = transform
        coregistration[sequence] = {"mi_before": round(before, 4), "mi_after": round(after, 4)}
    steps["coregister"] = time.monotonic() - t
    t = time.monotonic()
    atlas_info = None
    to_reference: sitk.Transform = sitk.Euler3DTransform()
    to_template: sitk.Transform | None = None
    if template is not None:
        affine, before, after = affine_register(template, images[reference])
        atlas_info = {"name": "MNI152 2009 (nilearn)", "mi_before": round(before, 4), "mi_after": round(after, 4), "scales": [round(s, 3) for s in _scales(affine)]}
        if request.atlas == "mni152":
            to_reference, to_template = affine, sitk.Euler3DTransform()
        else:
            to_template = affine.GetInverse()
    steps["atlas"] = time.monotonic() - t
    t = time.monotonic()
    grid = output_grid(images[reference], request.spacing_mm, template if request.atlas == "mni152" else None)
    out_images = {s: resample(images[s], grid, sitk.CompositeTransform([rigid[s], to_reference])) for s in images}
    if study.label is not None:
        try:
            label = study.label.load()
            source = next((s for s in images if _same_grid(images[s], label)), reference)
            out_images["seg"] = resample(sitk.Cast(label, sitk.sitkUInt8), grid, sitk.CompositeTransform([rigid[source], to_reference]), label=True)
        except ValueError as exc:
            if not request.skip_bad:
                raise _bad(str(exc)) from None
            study.skipped.append(Skipped(study.label.name, str(exc), bad=True))
            log(f"medsynth prepare: {exc} (the label map was left out)")
    steps["resample"] = time.monotonic() - t
    t = time.monotonic()
    method = "none"
    mask_array = None
    t1_like = next((s for s in ("t1", "t1ce") if s in out_images), None)
    if request.skull_strip in ("model", "auto") and deepbet_available() and t1_like:
        mask_array, method = deepbet_mask(*sitk_to_ras(out_images[t1_like]), request.device or "cpu"), "deepbet network"
    elif request.skull_strip != "none" and to_template is not None:
        prior = sitk.Resample(sitk.Cast(template.mask, sitk.sitkFloat32), grid, to_template, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        prior_array, _ = sitk_to_ras(prior)
        refine = sitk_to_ras(out_images[t1_like])[0] if t1_like else None
        mask_array = atlas_mask(prior_array, refine, request.spacing_mm)
        method = "atlas prior refined on " + t1_like if t1_like else "atlas prior only (no T1-weighted sequence)"
    steps["skull_strip"] = time.monotonic() - t
    arrays = {s: sitk_to_ras(img)[0] for s, img in out_images.items() if s != "seg"}
    if mask_array is not None:
        mask_image = _like(mask_array.astype(np.uint8), grid)
        out_images = {s: (img * sitk.Cast(mask_image, img.GetPixelID()) if s != "seg" else img) for s, img in out_images.items()}
        out_images["mask"] = mask_image
    mask_for_qc = mask_array if mask_array is not None else np.zeros(grid.GetSize(), dtype=bool)
    # In the patient's own space: a mask in atlas space is scaled by the atlas fit's determinant.
    native = abs(float(np.linalg.det(np.array(to_reference.GetMatrix()).reshape(3, 3)))) if request.atlas == "mni152" else 1.0
    mask_ml = float(mask_for_qc.sum()) * request.spacing_mm**3 * native / 1000.0
    flags = qc.plausibility_flags(mask_ml, coregistration, atlas_info["scales"] if atlas_info and request.atlas == "mni152" else None)
    if mask_array is None:
        flags = [f for f in flags if not f.startswith("brain mask")]
    case_id = keyed_case_id(new_id_key(), 0)  # random and meaningless, like a generated case id
    number = {v.name: i + 1 for i, v in enumerate(study.volumes.values())}
    skipped = [_anonymous(s.reason, names, f"series {len(number) + i + 1}") for i, s in enumerate(study.skipped)]
    info = {
        "id": case_id,
        "sequences": {s: {"confidence": study.volumes[s].classification.confidence, "basis": study.volumes[s].classification.basis} for s in images},
        "reference": reference,
        "missing": [s for s in REFERENCE_ORDER if s not in images],
        "coregistration": coregistration,
        "atlas": atlas_info if request.atlas == "mni152" else None,
        "space": "MNI152 2009" if request.atlas == "mni152" else "native (reference sequence)",
        "spacing_mm": request.spacing_mm,
        "skull_strip": method,
        "n4": request.n4,
        "mask_ml": round(mask_ml, 1),
        "flags": flags,
        "found": study.found,
        "skipped": skipped,
        "transforms": {
            "output_to_reference": "transforms/output_to_reference.tfm",
            **{f"reference_to_{s}": f"transforms/reference_to_{s}.tfm" for s in images if s != reference},
        },
        "seconds": round(time.monotonic() - started, 2),
        "step_seconds": {k: round(v, 2) for k, v in steps.items()},
    }
    transforms = {"output_to_reference": to_reference, **{f"reference_to_{s}": rigid[s] for s in images if s != reference}}
    writer.write_case(case_id, out_images, transforms, qc.mosaic_png(arrays, mask_for_qc.astype(bool)), info)
    return info


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return a.GetSize() == b.GetSize() and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-3) and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4)


def _like(array: np.ndarray, grid: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    image.CopyInformation(grid)
    return image


def prepare(request: PrepareRequest, progress: Callable[[float, str], None] | None = None) -> dict:
    """Prepare every study under ``request.input``; the result lists the cases and the studies not prepared."""
    request.validate()
    key = check_key_path(request.keep_key, request.out)
    mapping = load_sequence_map(request.sequences)
    started = time.monotonic()
    studies, unreadable = find_studies(request.input, mapping)
    bad = [*(u for u in unreadable if u.bad), *(s for study in studies for s in study.skipped if s.bad)]
    if bad and not request.skip_bad:
        raise _bad(bad[0].reason, len(bad) - 1)
    for item in unreadable:
        request.log(f"medsynth prepare: {item.reason}")
    if not studies:
        raise MedSynthError(f"{request.input} holds no DICOM series or NIfTI files to prepare.")
    # The atlas prior is needed for the atlas skull strip only; deepbet with --atlas none needs no template at all.
    need_prior = request.skull_strip == "atlas" or (request.skull_strip == "auto" and not deepbet_available())
    template = load_template() if request.atlas == "mni152" or need_prior else None
    cases, failed, key_entries = [], [], []
    with PreparedSetWriter(request.out) as writer:
        for index, study in enumerate(studies):
            if progress:
                progress(index / len(studies), f"study {index + 1}/{len(studies)}")
            for item in study.skipped:
                request.log(f"medsynth prepare: {item.reason}")
            try:
                info = _prepare_study(study, request, template, writer)
            except MedSynthError as exc:
                if not request.skip_bad:
                    raise exc if isinstance(exc, BadInput) else _bad(str(exc)) from None
                request.log(f"medsynth prepare: {exc} Study skipped; the batch goes on.")
                names = [v.name for v in study.volumes.values()] + [s.what for s in study.skipped] + [study.key]
                failed.append({"number": index + 1, "reason": _anonymous(str(exc), names, f"study {index + 1}"),
                               "bad": [_anonymous(s.reason, names, "a series") for s in study.skipped if s.bad]})
                continue
            for flag in info["flags"]:
                request.log(f"medsynth prepare: case {info['id']} FLAGGED: {flag}")
            cases.append(info)
            key_entries.append({"case": info["id"], "source": study.key, "sequences": {s: study.volumes[s].source_key for s in info["sequences"]}})
        if not cases:
            raise MedSynthError(f"No study under {request.input} could be prepared; see the messages above.")
        seconds = time.monotonic() - started
        # Files no study could use, by kind only: a path may hold a patient's name (stderr named each one).
        files = [_anonymous(u.reason, [u.what], "a file") for u in unreadable]
        summary = {"software": f"medsynth {__version__}", "atlas": request.atlas, "skull_strip": request.skull_strip, "n4": request.n4,
                   "spacing_mm": request.spacing_mm, "skip_bad": request.skip_bad, "cases": cases, "not_prepared": failed,
                   "unusable_files": files, "seconds": round(seconds, 1)}
        writer.write_file("prepare.json", json.dumps(summary, indent=2).encode())
        writer.write_file("prepare.html", qc.summary_html(cases, failed, seconds, files).encode())
        if key is not None:
            write_key(key, key_entries)
        out = writer.commit()
    if progress:
        progress(1.0, "done")
    return {"output_dir": str(out), "cases": [c["id"] for c in cases], "flagged": [c["id"] for c in cases if c["flags"]],
            "not_prepared": len(failed), "bad_skipped": len(bad) + len(failed), "seconds": round(seconds, 1), "summary": str(out / "prepare.html")}
