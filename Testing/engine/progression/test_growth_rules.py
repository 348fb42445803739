"""The grown tumour's compartments follow the published thresholds and never regress; the mass effect pushes tissue
outward from the new core and moves nothing beyond the margin."""

from __future__ import annotations

import numpy as np
from medsynth_engine.progression.appearance import push_tissue
from medsynth_engine.progression.case import GM, WM
from medsynth_engine.progression.growth import ENHANCING_THRESHOLD, OEDEMA_THRESHOLD, labels_at


def test_labels_follow_the_density_thresholds_and_never_regress():
    c = np.array([0.1, OEDEMA_THRESHOLD, 0.5, ENHANCING_THRESHOLD, 0.95, 0.95, 0.2, 0.9], np.float32).reshape(8, 1, 1)
    above = np.array([0, 0, 0, 0, 10, 130, 0, 200], np.float32).reshape(8, 1, 1)
    classes = np.array([WM, WM, GM, WM, WM, WM, WM, 0], np.uint8).reshape(8, 1, 1)
    previous = np.array([0, 0, 0, 0, 0, 0, 4, 0], np.uint8).reshape(8, 1, 1)
    labels = labels_at(previous, c, above, classes, necrosis_days=120.0)
    # below oedema; oedema at 0.16 and 0.5; enhancing at 0.8; necrotic after 120 days above 0.8; an enhancing voxel
    # whose density fell stays enhancing; nothing outside the brain
    assert labels.ravel().tolist() == [0, 2, 2, 4, 4, 1, 4, 0]


def test_the_mass_effect_pushes_tissue_out_of_the_new_core_and_nothing_beyond_the_margin():
    shape, spacing = (33, 33, 33), np.array([1.0, 1.0, 1.0])
    offsets = np.stack(np.meshgrid(*[np.arange(n) - 16 for n in shape], indexing="ij"))
    radius = np.sqrt((offsets**2).sum(0))
    image = (radius * 10.0).astype(np.float32)  # brightness = 10 x distance from the centre
    before, after = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    after[radius <= 4] = 4  # a new enhancing core of about 270 mm^3
    pushed = push_tissue({"t1": image}, spacing, before, after, mass_effect=1.0, margin_mm=8.0)["t1"]
    tumour_distance = radius - 4.0
    near = (tumour_distance > 0.5) & (tumour_distance < 3.0)  # the push tapers to nothing at the margin
    # Tissue moved outward: what now lies at radius r came from nearer the centre, so it reads darker.
    assert np.all(pushed[near] <= image[near] + 1e-4) and np.mean(pushed[near] < image[near] - 1.0) > 0.9
    far = tumour_distance > 8.0 + 1.0
    np.testing.assert_array_equal(pushed[far], image[far])
