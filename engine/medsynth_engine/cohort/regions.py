"""Where a tumour sits: hemisphere and lobe of an MNI point, and the phantom's seed sites that satisfy a stratum.

No lobe atlas installs offline with the phantom (nilearn downloads Harvard-Oxford at run time), so lobes come
from a coordinate partition of MNI space after the Talairach landmarks: occipital behind y = -72 (parieto-
occipital sulcus), temporal below z = 5 and lateral of |x| = 28 (under the Sylvian fissure), frontal in front
of a central sulcus line y = -0.5 z - 5 (about y = -25 at z = 40, -35 at z = 60), parietal behind it; points
near the midline between z = -10 and 20 are "deep" (basal ganglia, thalamus, internal capsule). It is
approximate near the boundaries; the manifest records the point it was judged on.
"""

from __future__ import annotations

import numpy as np

from ..errors import MedSynthError
from ..phantom.atlas import Atlas
from ..phantom.params import SubjectParams, subject_matrix
from .spec import TumourConstraints

__all__ = ["lobe_of", "hemisphere_of", "allowed_sites", "subject_to_atlas", "HEMISPHERE_MARGIN_MM"]

#: Seed sites closer than this to the midline are not used for a hemisphere constraint (an irregular
#: tumour seeded on the midline could have its centroid on either side).
HEMISPHERE_MARGIN_MM = 12.0


def lobe_of(point_mm: np.ndarray) -> np.ndarray:
    """Lobe name(s) of MNI point(s) (..., 3) by the coordinate partition in the module docstring."""
    p = np.asarray(point_mm, dtype=float)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return np.select(
        [y < -72.0, (z < 5.0) & (np.abs(x) >= 28.0) & (y < 15.0), (np.abs(x) < 20.0) & (z > -10.0) & (z < 20.0) & (y < 15.0) & (y > -35.0), y > -0.5 * z - 5.0],
        ["occipital", "temporal", "deep", "frontal"],
        default="parietal",
    )


def hemisphere_of(point_mm: np.ndarray) -> str:
    """'left' or 'right' of an MNI point (RAS: x < 0 is the left hemisphere; the ICBM 2009 template is symmetric about x = 0)."""
    return "left" if float(np.asarray(point_mm)[0]) < 0.0 else "right"


def subject_to_atlas(params: SubjectParams, atlas: Atlas, y_mm: np.ndarray) -> np.ndarray:
    """Inverse of ``atlas_to_subject``: a subject-space point back to MNI (ignoring the small smooth deformation)."""
    bc = atlas.brain_centre_mm
    return np.linalg.solve(subject_matrix(params), np.asarray(y_mm, dtype=float) - bc - np.asarray(params.translation_mm)) + bc


def allowed_sites(atlas: Atlas, constraints: TumourConstraints, where: str) -> np.ndarray:
    """The atlas seed sites (MNI mm) a stratum may use; MedSynthError in one sentence when there are none."""
    sites = np.asarray(atlas.tumour_sites_mm, dtype=float)
    keep = np.ones(len(sites), dtype=bool)
    asked = []
    if constraints.hemisphere is not None:
        side = sites[:, 0] < -HEMISPHERE_MARGIN_MM if constraints.hemisphere == "left" else sites[:, 0] > HEMISPHERE_MARGIN_MM
        keep &= side
        asked.append(f"the {constraints.hemisphere} hemisphere")
    if constraints.lobe is not None:
        keep &= lobe_of(sites) == constraints.lobe
        asked.append(f"the {constraints.lobe} lobe")
    if constraints.centre_mm is not None:
        keep &= np.linalg.norm(sites - np.asarray(constraints.centre_mm), axis=1) <= constraints.radius_mm
        asked.append(f"{constraints.radius_mm:g} mm of MNI {tuple(constraints.centre_mm)}")
    if not keep.any():
        raise MedSynthError(
            f"{where} cannot be met: no deep supratentorial white matter (where the phantom seeds tumours) lies in {' and '.join(asked)}."
        )
    return sites[keep]
