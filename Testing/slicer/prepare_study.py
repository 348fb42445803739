"""A small synthetic PACS study for the Prepare section's tests: a two-sequence 'head' at 4 mm, written as real DICOM.

The head is an ellipsoid with a brighter brain inside (cheap to make and to prepare: a few seconds); the files carry
the made-up identifiers of ``medsynth_engine.phantom.dicom_study``, so a test can check none reaches the output.
"""

from __future__ import annotations

from pathlib import Path


def write_small_study(folder: Path) -> Path:
    """A T1ce and a FLAIR series of one study under ``folder`` (returned)."""
    import numpy as np
    import SimpleITK as sitk
    from medsynth_engine.phantom.dicom_study import SeriesSpec, write_study

    grid = np.indices((40, 48, 40)).astype(np.float32) - np.array([19.5, 23.5, 19.5])[:, None, None, None]
    head = ((grid / np.array([17, 21, 17])[:, None, None, None]) ** 2).sum(0) < 1
    brain = ((grid / np.array([14, 18, 14])[:, None, None, None]) ** 2).sum(0) < 1
    images = {}
    for name, value in (("t1ce", 800), ("flair", 600), ("brain", None)):
        voxels = brain.astype(np.float32) if value is None else (head * 300 + brain * value).astype(np.float32)
        image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(voxels, (2, 1, 0))))
        image.SetSpacing((4.0, 4.0, 4.0))
        image.SetOrigin((-78.0, -94.0, -78.0))
        images[name] = image
    fov = (160.0, 192.0, 160.0)
    specs = (
        SeriesSpec("t1ce", "AX T1 POST GD", 8.5, 3.2, agent="Gd", spacing=(4.0, 4.0, 4.0), fov_mm=fov),
        SeriesSpec("flair", "AX FLAIR", 9000.0, 120.0, ti=2500.0, spacing=(4.0, 4.0, 4.0), fov_mm=fov),
    )
    write_study(Path(folder), images, specs)
    return Path(folder)
