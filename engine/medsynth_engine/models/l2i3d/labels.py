"""The label maps l2i3d renders from: tissue classes from a T1, the BraTS tumour labels on top, and the sampler.

Classes (``CLASSES``): 0 outside the brain, 1 CSF, 2 grey matter, 3 white matter, 4 necrosis (BraTS 1), 5 oedema
(BraTS 2), 6 enhancing tumour (BraTS 4). The tissue classes come from the T1 alone, by a three-class k-means
on the lightly smoothed T1 inside the brain and outside the tumour, ordered by brightness (on T1, CSF < grey <
white matter). The same labeller runs on training cases and on the sampled anatomy, so the renderer meets at
generation time the kind of label map it learned from, whether the anatomy came from a hospital's scans or
from the phantom.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

__all__ = ["CLASSES", "N_CLASSES", "tissue_labels", "label_map", "one_hot", "sample_label_map", "BACKGROUND", "TUMOUR_CLASS"]

CLASSES = ("outside", "csf", "grey_matter", "white_matter", "necrosis", "oedema", "enhancing_tumour")
N_CLASSES = len(CLASSES)
#: BraTS code -> class index.
TUMOUR_CLASS = {1: 4, 2: 5, 4: 6}
#: The value of a preprocessed image (in [-1, 1]) outside the skull-stripped brain.
BACKGROUND = -1.0
_SMOOTH_SIGMA = 0.7  # voxels
_ITERATIONS = 20


def tissue_labels(t1: np.ndarray, brain: np.ndarray, tumour: np.ndarray | None = None) -> np.ndarray:
    """Class 1-3 (CSF, grey, white matter) inside ``brain`` by k-means on the smoothed ``t1``; 0 elsewhere.

    ``tumour`` voxels (True) are left out of the clustering and labelled 0 here (the caller puts the tumour
    classes there). A brain with fewer than 3 distinct intensities gets class 3 throughout.
    """
    out = np.zeros(t1.shape, dtype=np.uint8)
    inside = brain.astype(bool) & (~tumour.astype(bool) if tumour is not None else True)
    if not inside.any():
        return out
    smooth = ndimage.gaussian_filter(t1.astype(np.float32), _SMOOTH_SIGMA)
    # Smoothing pulls the background into the brain's edge; take edge voxels' own values there.
    edge = inside & ~ndimage.binary_erosion(brain.astype(bool))
    smooth[edge] = t1[edge]
    values = smooth[inside].astype(np.float64)
    centres = np.percentile(values, [10.0, 50.0, 90.0])
    if centres[2] - centres[0] <= 1e-6:
        out[inside] = 3
        return out
    for _ in range(_ITERATIONS):
        assign = np.argmin(np.abs(values[:, None] - centres[None, :]), axis=1)
        new = np.array([values[assign == k].mean() if (assign == k).any() else centres[k] for k in range(3)])
        if np.allclose(new, centres):
            break
        centres = new
    order = np.argsort(centres)  # darkest = CSF
    rank = np.empty(3, dtype=np.uint8)
    rank[order] = np.arange(1, 4, dtype=np.uint8)
    out[inside] = rank[np.argmin(np.abs(values[:, None] - centres[None, :]), axis=1)]
    return out


def label_map(t1: np.ndarray, brain: np.ndarray, seg: np.ndarray | None) -> np.ndarray:
    """The full class map of a case: tissues from ``t1`` inside ``brain``, tumour classes from the BraTS ``seg``."""
    tumour = seg > 0 if seg is not None else None
    classes = tissue_labels(t1, brain, tumour)
    if seg is not None:
        for code, k in TUMOUR_CLASS.items():
            classes[seg == code] = k
    return classes


def one_hot(classes: np.ndarray) -> np.ndarray:
    """(N_CLASSES, X, Y, Z) float32 one-hot of a class map."""
    return np.stack([classes == k for k in range(N_CLASSES)]).astype(np.float32)


def tumour_codes(classes: np.ndarray) -> np.ndarray:
    """The BraTS label map (0, 1, 2, 4) of a class map."""
    codes = np.zeros(classes.shape, dtype=np.uint8)
    for code, k in TUMOUR_CLASS.items():
        codes[classes == k] = code
    return codes


@functools.cache
def _atlas():
    """One atlas per process (the phantom's MNI maps)."""
    from ...phantom import AtlasLoader

    return AtlasLoader().get()


def sample_label_map(seed: int, shape: tuple[int, int, int], spacing: tuple[float, float, float], spec, *, tumour: bool) -> np.ndarray:
    """A class map drawn from the phantom's anatomy and tumour model, labelled as training cases are.

    The phantom subject ``seed`` is rendered (T1 and tumour labels only) on a grid of ``shape`` at ``spacing``,
    brought onto the model grid by the same preprocessing as training cases (``spec``), and labelled.
    """
    from ...data.preprocess import preprocess_case
    from ...phantom import Grid, draw_subject, render

    atlas = _atlas()
    params = draw_subject(seed, atlas, tumour=tumour)
    grid = Grid.centred(shape, spacing, atlas.brain_centre_mm + np.asarray(params.translation_mm))
    rendered = render(params, atlas, grid, ("t1", "seg"))
    arrays, _ = preprocess_case(rendered, grid.affine, spec)
    t1 = arrays["t1"]
    return label_map(t1, t1 > BACKGROUND + 1e-3, arrays["seg"])
