"""What a written case realised: its tumour measured on the label map, its anatomy read from its parameters.

These are the numbers a cohort's constraints are checked against and the manifest records per case; they are
measured on the label map that is written, not taken from the drawn parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..phantom.atlas import Atlas
from ..phantom.params import SubjectParams
from .draw import label_volume_ml
from .regions import hemisphere_of, lobe_of, subject_to_atlas
from .spec import Stratum

__all__ = ["realised_attributes", "violations"]


def realised_attributes(seg: np.ndarray, affine: np.ndarray, params: SubjectParams, atlas: Atlas) -> dict[str, Any]:
    """Tumour volume (ml), centroid (RAS and MNI), hemisphere, lobe, enhancing, compartment shares, focus count; anatomy traits."""
    spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    attributes: dict[str, Any] = {
        "brain_size": float(np.mean(params.scale)),
        "ventricle_enlargement": params.ventricle_enlargement,
        "noise": params.noise_fraction,
        "bias": params.bias_amplitude,
        "slice_thickness_mm": float(max(params.acquisition_fwhm_mm)),
    }
    whole = seg > 0
    if not whole.any():
        return {**attributes, "tumour": False, "volume_ml": 0.0}
    centroid_ras = affine[:3, :3] @ np.argwhere(whole).mean(axis=0) + affine[:3, 3]
    mni = subject_to_atlas(params, atlas, centroid_ras)
    core = int(np.count_nonzero((seg == 1) | (seg == 4)))
    return {
        **attributes,
        "tumour": True,
        "volume_ml": round(label_volume_ml(seg, spacing), 3),
        "enhancing": bool((seg == 4).any()),
        "centroid_ras_mm": [round(float(v), 2) for v in centroid_ras],
        "centroid_mni_mm": [round(float(v), 2) for v in mni],
        "hemisphere": hemisphere_of(mni),
        "lobe": str(lobe_of(mni)),
        "necrosis_share": round(float(np.count_nonzero(seg == 1)) / core, 4) if core else 0.0,
        "oedema_share": round(float(np.count_nonzero(seg == 2)) / float(np.count_nonzero(whole)), 4),
        "foci": int(ndimage.label(whole, structure=np.ones((3, 3, 3)))[1]),  # 26-connected: touching corners are one focus
    }


def violations(attributes: dict[str, Any], stratum: Stratum) -> list[str]:
    """The constraints of ``stratum`` the realised case misses (empty when it meets them all)."""
    missed = []
    c = stratum.tumour
    if c is None:
        if attributes["tumour"]:
            missed.append("a healthy case has tumour labels")
    elif not attributes["tumour"]:
        missed.append("the label map has no tumour")
    else:
        if c.volume_ml is not None and not c.volume_ml[0] <= attributes["volume_ml"] <= c.volume_ml[1]:
            missed.append(f"volume {attributes['volume_ml']:.1f} ml")
        if c.hemisphere is not None and attributes["hemisphere"] != c.hemisphere:
            missed.append(f"centroid in the {attributes['hemisphere']} hemisphere")
        if c.lobe is not None and attributes["lobe"] != c.lobe:
            missed.append(f"centroid in the {attributes['lobe']} lobe")
        if c.enhancing is not None and attributes["enhancing"] != c.enhancing:
            missed.append("enhancing" if attributes["enhancing"] else "not enhancing")
        if c.multifocal is not None and not c.multifocal[0] <= attributes["foci"] <= c.multifocal[1]:
            missed.append(f"{attributes['foci']} separate foci")
        if c.centre_mm is not None and np.linalg.norm(np.asarray(attributes["centroid_mni_mm"]) - c.centre_mm) > c.radius_mm:
            missed.append("centroid outside the asked sphere")
    return missed
