"""The NIfTI <-> MRML bridge against Slicer's real MRML (PyPI slicer-core): geometry, voxels, labels, round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is a pinned test dependency")  # noqa: F841
import vtk  # noqa: E402

from MedSynthLib.conventions import BRATS_LABEL_COLOURS, BRATS_LABELS  # noqa: E402
from MedSynthLib.scene import SceneError, case_channel_files, load_case, save_nodes, segment_codes  # noqa: E402


def ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def voxels_xyz(node) -> np.ndarray:
    """Slicer arrays are indexed k, j, i; NIfTI arrays i, j, k."""
    return slicer.util.arrayFromVolume(node).transpose(2, 1, 0)


def segmentation_codes_xyz(node, scene) -> np.ndarray:
    """The BraTS label map a segmentation node holds, on its reference geometry (via Slicer's own export)."""
    from MedSynthLib.scene import _segmentation_to_labelmap

    labelmap = _segmentation_to_labelmap(scene, node)
    try:
        return voxels_xyz(labelmap).copy(), ijk_to_ras(labelmap)
    finally:
        scene.RemoveNode(labelmap)


@pytest.fixture
def case_dir(make_phantom_set) -> Path:
    set_dir = make_phantom_set(n=2, shape=(24, 20, 16), spacing=6.0)
    return sorted(p for p in set_dir.iterdir() if p.is_dir())[0]


@pytest.fixture
def scene():
    return slicer.vtkMRMLScene()


def test_load_case_creates_named_volumes_with_exact_geometry_and_voxels(case_dir, scene):
    loaded = load_case(case_dir, scene)
    case = case_dir.name
    assert loaded.case_id == case
    assert list(loaded.volumes) == ["t1", "t1ce", "t2", "flair"]
    for channel, node in loaded.volumes.items():
        assert node.IsA("vtkMRMLScalarVolumeNode") and not node.IsA("vtkMRMLLabelMapVolumeNode")
        assert node.GetName() == f"{case} {channel}"
        image = nib.load(str(case_dir / f"{case}_{channel}.nii.gz"))
        np.testing.assert_allclose(ijk_to_ras(node), image.affine, atol=1e-5)
        data = np.asanyarray(image.dataobj)
        assert voxels_xyz(node).dtype == data.dtype
        np.testing.assert_array_equal(voxels_xyz(node), data)
    # Nothing temporary is left behind: volumes, their storage/display nodes, one segmentation.
    assert scene.GetNumberOfNodesByClass("vtkMRMLLabelMapVolumeNode") == 0
    assert scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode") == 0


def test_segmentation_segments_carry_brats_names_codes_colours_and_voxels(case_dir, scene):
    loaded = load_case(case_dir, scene)
    node = loaded.segmentation
    assert node.GetName() == f"{case_dir.name} segmentation"
    seg = node.GetSegmentation()
    assert seg.GetNumberOfSegments() == 3
    codes = segment_codes(node)
    assert sorted(codes.values()) == [1, 2, 4]
    for segment_id, code in codes.items():
        segment = seg.GetSegment(segment_id)
        assert segment.GetName().startswith(BRATS_LABELS[code] + " (")
        np.testing.assert_allclose(segment.GetColor(), BRATS_LABEL_COLOURS[code])
    image = nib.load(str(case_dir / f"{case_dir.name}_seg.nii.gz"))
    labels, affine = segmentation_codes_xyz(node, scene)
    np.testing.assert_allclose(affine, image.affine, atol=1e-5)
    np.testing.assert_array_equal(labels, np.asanyarray(image.dataobj))
    assert set(np.unique(labels).tolist()) - {0}, "the phantom case should hold a tumour"
    assert labels.dtype == np.uint8


def test_round_trip_writes_the_same_voxels_and_affines(case_dir, scene, tmp_path):
    loaded = load_case(case_dir, scene)
    out = tmp_path / "copy-case"
    scene.GetSubjectHierarchyNode()  # the singleton every Slicer scene has
    before = scene.GetNumberOfNodes()
    written = save_nodes(loaded.nodes, out, scene)
    assert scene.GetNumberOfNodes() == before, "temporary nodes were left in the scene"
    assert list(written) == ["t1", "t1ce", "t2", "flair", "seg"]
    for channel, path in written.items():
        assert path == out / f"copy-case_{channel}.nii.gz"
        original = nib.load(str(case_dir / f"{case_dir.name}_{channel}.nii.gz"))
        again = nib.load(str(path))
        np.testing.assert_allclose(again.affine, original.affine, atol=1e-4)
        assert again.get_data_dtype() == original.get_data_dtype()
        np.testing.assert_array_equal(np.asanyarray(again.dataobj), np.asanyarray(original.dataobj))
    assert not [p for p in out.iterdir() if "partial" in p.name]


def test_oblique_lps_style_affine_survives_load_and_save(scene, tmp_path):
    """A rotated, axis-flipped affine (as a scanner in LPS order would give) keeps every number through Slicer."""
    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    flip = np.diag([-1.0, -1.0, 1.0])  # i runs right-to-left, j anterior-to-posterior
    affine = np.eye(4)
    affine[:3, :3] = flip @ rotation @ np.diag([1.5, 2.0, 3.0])
    affine[:3, 3] = [40.0, -12.5, 7.25]
    rng = np.random.default_rng(3)
    data = rng.integers(-200, 1500, size=(9, 7, 5)).astype(np.int16)
    labels = np.zeros((9, 7, 5), np.uint8)
    labels[2:5, 1:4, 1:3] = 2
    labels[3, 2, 2] = 4
    case = tmp_path / "oblique"
    case.mkdir()
    nib.save(nib.Nifti1Image(data, affine), str(case / "oblique_t2.nii.gz"))
    nib.save(nib.Nifti1Image(labels, affine), str(case / "oblique_seg.nii.gz"))

    loaded = load_case(case, scene)
    node = loaded.volumes["t2"]
    np.testing.assert_allclose(ijk_to_ras(node), affine, atol=1e-4)
    spacing = np.array(node.GetSpacing())
    np.testing.assert_allclose(spacing, [1.5, 2.0, 3.0], atol=1e-5)
    np.testing.assert_array_equal(voxels_xyz(node), data)
    got_labels, got_affine = segmentation_codes_xyz(loaded.segmentation, scene)
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(got_affine, affine, atol=1e-4)

    written = save_nodes(loaded.nodes, tmp_path / "back", scene)
    for channel, expected in (("t2", data), ("seg", labels)):
        image = nib.load(str(written[channel]))
        np.testing.assert_allclose(image.affine, affine, atol=1e-4)
        np.testing.assert_array_equal(np.asanyarray(image.dataobj), expected)


def test_drawn_segment_edits_are_saved(case_dir, scene, tmp_path):
    loaded = load_case(case_dir, scene)
    node = loaded.segmentation
    et_id = next(sid for sid, code in segment_codes(node).items() if code == 4)
    reference = loaded.volumes["t1"]
    mask = np.zeros(slicer.util.arrayFromVolume(reference).shape, np.uint8)
    mask[4:6, 5:9, 5:9] = 1  # k, j, i
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    matrix = vtk.vtkMatrix4x4()
    reference.GetIJKToRASMatrix(matrix)
    labelmap.SetIJKToRASMatrix(matrix)
    slicer.util.updateVolumeFromArray(labelmap, mask)
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(et_id)  # what slicer.util.updateSegmentBinaryLabelmapFromArray does: replace the segment
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, node, ids)
    scene.RemoveNode(labelmap)
    written = save_nodes([node], tmp_path / "edited", scene)
    saved = np.asanyarray(nib.load(str(written["seg"])).dataobj)
    assert (saved[5:9, 5:9, 4:6] == 4).all()
    assert (saved == 4).sum() == mask.sum()
    assert set(np.unique(saved).tolist()) <= {0, 1, 2, 4}


def test_case_without_tumour_still_gets_three_empty_segments(make_phantom_set, scene):
    set_dir = make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0, channels="t1,seg", tumour=False)
    case = next(p for p in set_dir.iterdir() if p.is_dir())
    loaded = load_case(case, scene)
    assert list(loaded.volumes) == ["t1"]
    assert sorted(segment_codes(loaded.segmentation).values()) == [1, 2, 4]


def test_bad_inputs_say_what_to_do_and_leave_the_scene_clean(case_dir, scene, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SceneError, match="holds no"):
        load_case(empty, scene)
    with pytest.raises(SceneError, match="not a folder"):
        load_case(tmp_path / "missing", scene)
    broken = tmp_path / "broken"
    shutil.copytree(case_dir, broken)
    (broken / f"{case_dir.name}_t2.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    before = scene.GetNumberOfNodes()
    with pytest.raises(SceneError, match="could not be read"):
        load_case(broken, scene)
    assert scene.GetNumberOfNodes() == before
    with pytest.raises(SceneError, match="no file for channel"):
        load_case(case_dir, scene, channels=("t1", "ct"))
    assert set(case_channel_files(case_dir)) == {"t1", "t1ce", "t2", "flair", "seg"}


def test_save_refuses_overwrite_unknown_nodes_and_read_only_folders(case_dir, scene, tmp_path, read_only_folder):
    loaded = load_case(case_dir, scene)
    with pytest.raises(SceneError, match="No node"):
        save_nodes([], tmp_path / "x", scene)
    save_nodes([loaded.volumes["t1"]], tmp_path / "once", scene)
    with pytest.raises(SceneError, match="already exists"):
        save_nodes([loaded.volumes["t1"]], tmp_path / "once", scene)
    stranger = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "my favourite scan")
    with pytest.raises(SceneError, match="Cannot tell which channel"):
        save_nodes([stranger], tmp_path / "y", scene)
    with pytest.raises(SceneError, match="Two selected nodes"):
        save_nodes([loaded.volumes["t1"], loaded.volumes["t1"]], tmp_path / "z", scene)
    with read_only_folder(tmp_path / "locked") as locked:
        with pytest.raises(SceneError, match="Cannot write"):
            save_nodes([loaded.volumes["t1"]], locked / "case", scene)
        assert not (locked / "case").exists()
