"""Quality control: a mosaic per case (each sequence, three planes, the mask's outline), plausibility flags, and
an HTML summary of the run. Nothing here names a source file, series description or any DICOM value: cases
and series are called by their random ids and numbers, so the QC can travel with the output.
"""

from __future__ import annotations

import html
import io

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["mosaic_png", "plausibility_flags", "summary_html", "BRAIN_ML_RANGE"]

#: Brain masks (as generous as the MNI152 template's, ~1.9 l for the average head) outside this range mean a failed mask.
BRAIN_ML_RANGE = (800.0, 2800.0)
#: Scale factors of the atlas fit outside this range mean the affine registration found the wrong thing.
ATLAS_SCALE_RANGE = (0.75, 1.35)
TILE = 160


def _planes(volume: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    """Axial, coronal and sagittal slices through ``centre`` with anterior/superior up (RAS arrays)."""
    x, y, z = centre
    return [volume[:, :, z].T[::-1], volume[:, y, :].T[::-1], volume[x, :, :].T[::-1]]


def _tile(plane: np.ndarray, mask_plane: np.ndarray) -> np.ndarray:
    """One plane scaled to the tile, the mask's outline drawn at the tile's own resolution (so it stays visible)."""
    height, width = plane.shape
    scale = TILE / max(height, width)
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    grey = np.asarray(Image.fromarray(plane.astype(np.float32)).resize(size, Image.BILINEAR))
    inside = np.asarray(Image.fromarray(mask_plane.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 0
    rgb = np.repeat(np.clip(grey, 0, 255)[..., None], 3, axis=2)
    rgb[inside & ~ndimage.binary_erosion(inside)] = (255, 40, 40)
    return rgb.astype(np.uint8)


def mosaic_png(images: dict[str, np.ndarray], mask: np.ndarray) -> bytes:
    """PNG bytes: one row per sequence, three planes through the mask's centre, the mask outline in red.

    ``images`` are the unmasked sequences: the head around the outline shows whether the mask kept skull or cut
    brain, which a masked image would hide.
    """
    centre = tuple(int(round(c)) for c in ndimage.center_of_mass(mask)) if mask.any() else tuple(s // 2 for s in mask.shape)
    mask_planes = _planes(mask, centre)
    rows = []
    for volume in images.values():
        inside = volume[mask] if mask.any() else volume.ravel()
        high = float(np.percentile(inside, 99.5)) or 1.0
        grey = np.clip(volume / high * 255.0, 0, 255)
        tiles = [_tile(plane, outline) for plane, outline in zip(_planes(grey, centre), mask_planes, strict=True)]
        height = max(t.shape[0] for t in tiles)
        padded = [np.pad(t, ((0, height - t.shape[0]), (0, TILE - t.shape[1]), (0, 0))) for t in tiles]
        rows.append(np.concatenate(padded, axis=1))
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate(rows, axis=0)).save(buffer, format="PNG")
    return buffer.getvalue()


def plausibility_flags(mask_ml: float, coregistration: dict[str, dict], atlas_scales: list[float] | None) -> list[str]:
    """Why a case should be looked at before use (empty when nothing is implausible)."""
    flags = []
    if not BRAIN_ML_RANGE[0] <= mask_ml <= BRAIN_ML_RANGE[1]:
        flags.append(f"brain mask of {mask_ml:.0f} ml is outside {BRAIN_ML_RANGE[0]:.0f}-{BRAIN_ML_RANGE[1]:.0f} ml")
    for sequence, info in coregistration.items():
        before, after = info["mi_before"], info["mi_after"]
        if after > before + 0.02:
            flags.append(f"{sequence} co-registration made mutual information worse ({before:.3f} -> {after:.3f})")
        if after > -0.15:
            flags.append(f"{sequence} shares little information with the reference after registration (MI {after:.3f})")
    if atlas_scales is not None and not all(ATLAS_SCALE_RANGE[0] <= s <= ATLAS_SCALE_RANGE[1] for s in atlas_scales):
        flags.append("the atlas fit scales the head by " + ", ".join(f"{s:.2f}" for s in atlas_scales) + " (implausible)")
    return flags


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def summary_html(cases: list[dict], failed: list[dict], seconds: float, files: list[str] = ()) -> str:
    """The run's summary page: per case the series used and skipped (by number), metrics, flags and the mosaic;
    then the studies not prepared and the files no study could use, each with its reason."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>MedSynth prepare</title><style>"
        "body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:3px 8px}table{border-collapse:collapse}"
        ".flag{color:#b00;font-weight:bold}</style></head><body>",
        f"<h1>MedSynth prepare</h1><p>{len(cases)} case(s) prepared, {len(failed)} study/studies not prepared, "
        f"{seconds:.0f} s in all. Series are numbered per study in the order they were found.</p>",
    ]
    for case in cases:
        flags = case.get("flags") or []
        parts.append(f"<h2>{html.escape(case['id'])}</h2>")
        parts.append("<p class='flag'>FLAGGED: " + html.escape("; ".join(flags)) + "</p>" if flags else "<p>No plausibility flag.</p>")
        parts.append("<table><tr><th>sequence</th><th>confidence</th><th>basis</th><th>MI before</th><th>MI after</th></tr>")
        for sequence, info in case["sequences"].items():
            reg = case["coregistration"].get(sequence, {})
            parts.append(_row([
                sequence, f"{info['confidence']:.2f}", html.escape(info["basis"]),
                f"{reg['mi_before']:.3f}" if reg else "reference", f"{reg['mi_after']:.3f}" if reg else "",
            ]))
        parts.append("</table>")
        missing = case.get("missing") or []
        if missing:
            parts.append(f"<p>Missing sequences: {', '.join(missing)}; the case has the others.</p>")
        parts.append(
            f"<p>Series found {case['found']}, used {len(case['sequences'])}, skipped {len(case['skipped'])}"
            + (": " + "; ".join(html.escape(s) for s in case["skipped"]) if case["skipped"] else "") + ".</p>"
        )
        atlas = case.get("atlas")
        if atlas:
            parts.append(f"<p>Atlas ({atlas['name']}): MI {atlas['mi_before']:.3f} -> {atlas['mi_after']:.3f}, scales "
                         + ", ".join(f"{s:.2f}" for s in atlas["scales"]) + ".</p>")
        parts.append(
            f"<p>Brain mask {case['mask_ml']:.0f} ml ({html.escape(case['skull_strip'])}); {case['seconds']:.1f} s.</p>"
            f"<img src='{html.escape(case['id'])}/{html.escape(case['id'])}_qc.png' alt='QC mosaic'>"
        )
    if failed:
        parts.append("<h2>Not prepared</h2><ul>" + "".join(
            f"<li class='flag'>study {f['number']}: " + html.escape(" ".join([f["reason"], *f.get("bad", [])])) + "</li>" for f in failed) + "</ul>")
    if files:
        parts.append("<h2>Files not used</h2><p>The console named each file.</p><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in files) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
