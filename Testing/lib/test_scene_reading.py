"""A case read off the GUI thread and built in steps matches what Slicer's own volume reading gives."""

from __future__ import annotations

import threading

import nibabel as nib
import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is a pinned test dependency")
import vtk  # noqa: E402

from MedSynthLib.scene import CaseBuilder, SceneError, _segmentation_to_labelmap, load_case  # noqa: E402
from MedSynthLib.scene.reading import read_case_arrays  # noqa: E402


def read_as_slicer_does(scene, class_name: str, path):
    """A volume node read by Slicer's own storage node (what slicer.util.loadVolume and File > Add Data run)."""
    node = scene.AddNewNodeByClass(class_name, "reference")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    storage.SetSingleFile(True)
    assert storage.ReadData(node)
    return node


def ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


@pytest.fixture
def oblique_case(tmp_path):
    """A case on an oblique, anisotropic grid with its origin off centre (int16 MR, float32 T2, BraTS labels)."""
    angle = np.deg2rad(17.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ tilt @ np.diag([0.9, 1.3, 2.1])
    affine[:3, 3] = (-71.5, 12.25, -40.0)
    rng = np.random.default_rng(4)
    shape = (13, 11, 7)
    case = tmp_path / "case-007"
    case.mkdir()
    nib.save(nib.Nifti1Image(rng.integers(-200, 3000, shape).astype(np.int16), affine), case / "case-007_t1.nii.gz")
    nib.save(nib.Nifti1Image(rng.normal(100, 30, shape).astype(np.float32), affine), case / "case-007_t2.nii.gz")
    labels = np.zeros(shape, np.uint8)
    labels[3:9, 2:8, 1:5] = 2
    labels[4:6, 3:5, 2:4] = 1
    labels[7, 6, 3] = 4
    nib.save(nib.Nifti1Image(labels, affine), case / "case-007_seg.nii.gz")
    return case, labels


def test_volumes_match_slicers_own_reader_in_geometry_voxels_and_window(oblique_case):
    case, _labels = oblique_case
    scene = slicer.vtkMRMLScene()
    loaded = load_case(case, scene)
    for channel in ("t1", "t2"):
        reference = read_as_slicer_does(scene, "vtkMRMLScalarVolumeNode", case / f"case-007_{channel}.nii.gz")
        reference.CreateDefaultDisplayNodes()  # Slicer's automatic window/level
        node = loaded.volumes[channel]
        assert np.allclose(ijk_to_ras(node), ijk_to_ras(reference), atol=1e-6)
        assert not np.allclose(ijk_to_ras(node)[:3, :3], np.diag(np.diag(ijk_to_ras(node)[:3, :3])))  # oblique
        ours, theirs = slicer.util.arrayFromVolume(node), slicer.util.arrayFromVolume(reference)
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
        display, expected = node.GetDisplayNode(), reference.GetDisplayNode()
        assert (display.GetWindow(), display.GetLevel()) == pytest.approx((expected.GetWindow(), expected.GetLevel()))


def test_segments_lie_on_the_label_files_oblique_grid(oblique_case):
    case, labels = oblique_case
    scene = slicer.vtkMRMLScene()
    loaded = load_case(case, scene)
    labelmap = _segmentation_to_labelmap(scene, loaded.segmentation)
    reference = read_as_slicer_does(scene, "vtkMRMLLabelMapVolumeNode", case / "case-007_seg.nii.gz")
    assert np.allclose(ijk_to_ras(labelmap), ijk_to_ras(reference), atol=1e-6)
    assert np.array_equal(slicer.util.arrayFromVolume(labelmap).transpose(2, 1, 0), labels)


def test_reading_runs_off_the_gui_thread_and_building_takes_one_node_per_step(oblique_case):
    case, _labels = oblique_case
    result = {}
    worker = threading.Thread(target=lambda: result.update(arrays=read_case_arrays(case)))
    worker.start()
    worker.join()
    scene = slicer.vtkMRMLScene()
    builder = CaseBuilder(result["arrays"], scene)
    counts = []
    while not builder.done:
        finished = builder.step()
        counts.append(len(builder.loaded.nodes))
    assert counts == [1, 2, 3] and finished is builder.loaded
    assert list(finished.volumes) == ["t1", "t2"] and finished.segmentation.GetName() == "case-007 segmentation"
    builder.abort()  # e.g. the scene was closed meanwhile: nothing of the case is left
    for class_name in ("vtkMRMLScalarVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLScalarVolumeDisplayNode"):
        assert scene.GetNumberOfNodesByClass(class_name) == 0, class_name


def test_unknown_labels_and_broken_files_are_refused_while_reading(oblique_case):
    case, labels = oblique_case
    bad = labels.copy()
    bad[0, 0, 0] = 3
    nib.save(nib.Nifti1Image(bad, np.eye(4)), case / "case-007_seg.nii.gz")
    with pytest.raises(SceneError, match=r"case-007_seg.nii.gz holds label value\(s\) 3"):
        read_case_arrays(case)
    (case / "case-007_t2.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(SceneError, match="case-007_t2.nii.gz could not be read"):
        read_case_arrays(case, channels=("t2",))
