"""Channels and drawn tumours on Slicer's real MRML (slicer-core): inputs saved for the engine, results loaded back."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is a pinned test dependency")
import vtk  # noqa: E402

from MedSynthLib.conventions import BRATS_LABEL_COLOURS, BRATS_LABEL_NAMES, BRATS_LABELS  # noqa: E402
from MedSynthLib.scene import (  # noqa: E402
    CT_PRESETS,
    LABEL_TAG,
    SceneError,
    load_case,
    load_channel,
    save_channel_inputs,
    write_tumour_mask,
)


def ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    return scene


@pytest.fixture
def case_dir(make_phantom_set, tmp_path) -> Path:
    set_dir = make_phantom_set(n=1, shape=(20, 18, 16), spacing=6.0, channels="t1,t1ce,t2,flair,seg,ct")
    source = next(p for p in set_dir.iterdir() if p.is_dir())
    return Path(shutil.copytree(source, tmp_path / source.name))


def plain_volume(scene, name: str = "MRHead"):
    """A scalar volume that did not come from MedSynth: oblique-free but with odd spacing and origin."""
    array = np.random.default_rng(0).normal(100, 20, (12, 14, 10)).astype(np.float32)
    node = slicer.util.addVolumeFromArray(array, name=name)
    node.SetSpacing(1.5, 2.0, 2.5)
    node.SetOrigin(-10.0, 20.0, 5.0)
    return node


def test_a_medsynth_case_volume_brings_its_mr_sequences_and_a_plain_volume_is_saved_as_t1(scene, case_dir, tmp_path):
    loaded = load_case(case_dir, scene)
    written = save_channel_inputs(loaded.volumes["t2"], tmp_path / "in" / "mine", scene)
    assert sorted(written) == ["flair", "t1", "t1ce", "t2"]  # not ct or seg: those are what add-channel makes
    for channel, path in written.items():
        assert path.name == f"mine_{channel}.nii.gz"
        original = nib.load(str(case_dir / f"{case_dir.name}_{channel}.nii.gz"))
        saved = nib.load(str(path))
        np.testing.assert_array_equal(np.asarray(saved.dataobj), np.asarray(original.dataobj))
        np.testing.assert_allclose(saved.affine, original.affine, atol=1e-4)

    node = plain_volume(scene)
    written = save_channel_inputs(node, tmp_path / "in" / "mrhead", scene)
    assert list(written) == ["t1"]
    saved = nib.load(str(written["t1"]))
    np.testing.assert_array_equal(np.asarray(saved.dataobj).transpose(2, 1, 0), slicer.util.arrayFromVolume(node))
    np.testing.assert_allclose(saved.affine, ijk_to_ras(node), atol=1e-4)
    with pytest.raises(SceneError, match="already exists"):
        save_channel_inputs(node, tmp_path / "in" / "mrhead", scene)
    with pytest.raises(SceneError, match="No volume"):
        save_channel_inputs(None, tmp_path / "in" / "none", scene)


def test_a_ct_result_loads_with_slicers_ct_brain_window_level(scene, case_dir):
    node = load_channel(case_dir / f"{case_dir.name}_ct.nii.gz", scene)
    assert node.IsA("vtkMRMLScalarVolumeNode") and node.GetName() == f"{case_dir.name} ct"
    display = node.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel()) == CT_PRESETS["CT-Brain"] == (100.0, 50.0)
    assert not display.GetAutoWindowLevel() and display.GetColorNodeID() == "vtkMRMLColorTableNodeGrey"
    presets = {(display.GetWindowPreset(i), display.GetLevelPreset(i)) for i in range(display.GetNumberOfWindowLevelPresets())}
    assert presets == set(CT_PRESETS.values())
    original = nib.load(str(case_dir / f"{case_dir.name}_ct.nii.gz"))
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node).transpose(2, 1, 0), np.asarray(original.dataobj))
    np.testing.assert_allclose(ijk_to_ras(node), original.affine, atol=1e-4)


def test_a_seg_result_loads_as_a_segmentation_with_brats_names_and_colours(scene, case_dir):
    node = load_channel(case_dir / f"{case_dir.name}_seg.nii.gz", scene)
    assert node.IsA("vtkMRMLSegmentationNode") and node.GetName() == f"{case_dir.name} segmentation"
    seg = node.GetSegmentation()
    found = {}
    for i in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(i)
        tag = vtk.reference("")
        assert segment.GetTag(LABEL_TAG, tag)
        found[int(str(tag))] = (segment.GetName(), tuple(round(c, 3) for c in segment.GetColor()))
    assert found == {code: (f"{BRATS_LABELS[code]} ({BRATS_LABEL_NAMES[code]})", BRATS_LABEL_COLOURS[code]) for code in BRATS_LABELS}
    with pytest.raises(SceneError, match="not a <case>_<channel>"):
        load_channel(case_dir / "notes.nii.gz", scene)
    count = scene.GetNumberOfNodes()
    broken = case_dir / f"{case_dir.name}_ct.nii.gz"
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(SceneError, match="could not be read"):
        load_channel(broken, scene)
    assert scene.GetNumberOfNodes() == count  # nothing left behind


def drawn_segmentation(scene, reference, blob: np.ndarray, name: str = "Tumour drawing"):
    """A segmentation holding ``blob`` (Slicer k, j, i order) as one segment, as the Segment Editor leaves it."""
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    labelmap.CopyOrientation(reference)
    slicer.util.updateVolumeFromArray(labelmap, blob.astype(np.uint8))
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    scene.RemoveNode(labelmap)
    return segmentation


def test_one_drawn_segment_becomes_an_outline_mask_on_the_reference_grid(scene, tmp_path):
    volume = plain_volume(scene)
    blob = np.zeros((12, 14, 10), np.uint8)
    blob[4:8, 5:9, 3:7] = 1
    segmentation = drawn_segmentation(scene, volume, blob)
    segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
    outline = write_tumour_mask(segmentation, tmp_path / "mask.nii.gz", segment_id, reference=volume)
    assert outline is True
    mask = nib.load(str(tmp_path / "mask.nii.gz"))
    np.testing.assert_array_equal(np.asarray(mask.dataobj).transpose(2, 1, 0), blob)
    np.testing.assert_allclose(mask.affine, ijk_to_ras(volume), atol=1e-4)

    empty = slicer.vtkSegment()
    empty.SetName("nothing yet")
    seg = segmentation.GetSegmentation()
    empty.AddRepresentation(seg.GetSourceRepresentationName(), slicer.vtkOrientedImageData())
    seg.AddSegment(empty, "empty")
    with pytest.raises(SceneError, match="is empty; draw the tumour"):
        write_tumour_mask(segmentation, tmp_path / "empty.nii.gz", "empty", reference=volume)
    assert not (tmp_path / "empty.nii.gz").exists()
    with pytest.raises(SceneError, match="has no segment"):
        write_tumour_mask(segmentation, tmp_path / "x.nii.gz", "no-such-id", reference=volume)


def test_brats_segments_are_written_with_their_codes(scene, case_dir, tmp_path):
    loaded = load_case(case_dir, scene)
    outline = write_tumour_mask(loaded.segmentation, tmp_path / "labels.nii.gz", None, reference=loaded.volumes["t1"])
    assert outline is False
    written = np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj)
    original = np.asarray(nib.load(str(case_dir / f"{case_dir.name}_seg.nii.gz")).dataobj)
    np.testing.assert_array_equal(written, original)
