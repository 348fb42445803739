"""MedSynth.py's Channels and Tumour logic on real MRML (slicer-core) with a real engine and the shipped models."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
import slicer

from MedSynthLib.controller import TUMOUR_MODEL, InputError, PanelController
from MedSynthLib.conventions import BRATS_LABELS

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    controller = PanelController()
    controller.start_engine(sys.executable, str(tmp_path_factory.mktemp("module-engine")), device="cpu")
    yield controller
    controller.stop_engine(force=True)


@pytest.fixture
def logic(medsynth, engine):
    logic = medsynth.MedSynthLogic()
    logic.controller = engine
    return logic


def finish(logic, limit: float = 120.0) -> dict:
    """Poll as the Widget's QTimer does until the job ends (the limit only stops a hung test)."""
    deadline = time.monotonic() + limit
    finished = None
    while finished is None:
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.2)
        finished = logic.poll()
    assert finished["state"] == "succeeded", finished.get("error")
    return finished


def test_tumour_parameters_are_typed_with_their_defaults(medsynth):
    parameters = medsynth.MedSynthLogic().getParameterNode()
    assert (parameters.tumourLabels, parameters.tumourSeed, parameters.tumourMargin, parameters.tumourSteps) == (
        False, 0, 8.0, 0)
    with pytest.raises(ValueError):
        parameters.tumourMargin = 80.0  # the engine takes at most 50 mm
    with pytest.raises(ValueError):
        parameters.tumourSeed = -1


def test_a_seg_result_is_overlaid_with_brats_names(logic, make_phantom_set):
    """loadResult on an add-channel job record (the job itself runs in the CT test below and the service tests)."""
    set_dir = make_phantom_set(n=1, shape=(20, 18, 16), spacing=6.0, channels="t1,t1ce,t2,flair,seg,ct")  # as test_scene_channels
    case = next(p for p in set_dir.iterdir() if p.is_dir())
    written = [str(case / f"{case.name}_seg.nii.gz"), str(case / f"{case.name}_seg.seg.nrrd")]
    nodes = logic.loadResult({"kind": "add-channel", "state": "succeeded", "result": {"written": written}})
    assert len(nodes) == 1 and nodes[0].IsA("vtkMRMLSegmentationNode")
    segmentation = nodes[0]
    assert segmentation.GetName() == f"{case.name} segmentation" and segmentation.GetDisplayNode().GetVisibility2DFill()
    names = {segmentation.GetSegmentation().GetNthSegment(i).GetName() for i in range(3)}
    assert names == {"NCR (Necrotic tumour core)", "ED (Peritumoural oedema)", "ET (Enhancing tumour)"}
    assert logic.loadResult({"kind": "add-channel", "state": "failed", "result": {}}) is None
    with pytest.raises(InputError, match="needs a loaded volume"):
        logic.addChannel("ct", None)


def test_add_a_ct_to_any_volume_opens_with_the_ct_window(logic):
    rng = np.random.default_rng(1)
    array = np.zeros((16, 16, 16), np.float32)
    array[3:13, 3:13, 3:13] = rng.normal(400, 40, (10, 10, 10))  # a head-sized bright block in air
    volume = slicer.util.addVolumeFromArray(array, name="MR scan from elsewhere")
    volume.SetSpacing(8.0, 8.0, 8.0)
    logic.addChannel("ct", volume)
    composite = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    (ct,) = logic.loadResult(finish(logic))
    assert ct.GetName() == "MR-scan-from-elsewhere ct"
    display = ct.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel(), display.GetAutoWindowLevel()) == (100.0, 50.0, 0)
    assert composite.GetBackgroundVolumeID() == ct.GetID()
    assert slicer.util.arrayFromVolume(ct).shape == array.shape


def test_a_seg_job_says_on_the_panels_job_line_whether_it_found_a_tumour(logic, make_phantom_set):
    set_dir = make_phantom_set(n=1, shape=(24, 24, 24), spacing=6.0, channels="t1", tumour=False)
    loaded = logic.loadCase(next(p for p in set_dir.iterdir() if p.is_dir()), show=False)
    logic.addChannel("seg", loaded.volumes["t1"])
    job = finish(logic)
    result = job["result"]
    assert result["n4"] is True  # the engine's default for seg: the panel asks nothing else
    expected = f"No tumour found ({result['tumour_ml']:g} ml labelled" if not result["tumour_found"] else f"Tumour found: {result['tumour_ml']:g} ml"
    line = logic.controller.view({}).job_status
    assert line.startswith(f"Add-channel job succeeded: {expected}"), line


def test_a_drawn_segment_is_added_to_the_case_as_a_tumour(logic, make_phantom_set):
    set_dir = make_phantom_set(n=1, shape=(32, 32, 32), spacing=6.0, channels="t1,t1ce,t2,flair", tumour=False)
    case = next(p for p in set_dir.iterdir() if p.is_dir())
    loaded = logic.loadCase(case, show=False)
    reference = loaded.volumes["t1"]
    blob = np.zeros((32, 32, 32), np.uint8)
    blob[14:19, 15:20, 17:22] = 1  # Slicer's k, j, i order; inside the brain
    labelmap = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    labelmap.CopyOrientation(reference)
    slicer.util.updateVolumeFromArray(labelmap, blob)
    drawing = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "My tumour")
    drawing.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, drawing)
    segment_id = drawing.GetSegmentation().GetNthSegmentID(0)
    parameters = logic.getParameterNode()
    parameters.tumourSeed = 2
    parameters.tumourSteps = 2  # few diffusion steps: the flow is tested here, the model's quality elsewhere
    with pytest.raises(InputError, match="Select the case"):
        logic.addTumour(parameters, TUMOUR_MODEL, drawing, segment_id, None)
    job = logic.addTumour(parameters, TUMOUR_MODEL, drawing, segment_id, reference)
    assert job["kind"] == "add-tumour" and job["params"]["outline"] is True and job["params"]["seed"] == 2
    assert job["params"]["steps"] == 2 and job["params"]["margin_mm"] == 8.0
    result = logic.loadResult(finish(logic, limit=300))
    labels = slicer.util.arrayFromVolume(_labelmap_of(result.segmentation))
    assert set(np.unique(labels).tolist()) - {0} <= set(BRATS_LABELS) and (labels > 0).sum() > blob.sum()
    assert sorted(result.volumes) == ["flair", "t1", "t1ce", "t2"]


def _labelmap_of(segmentation):
    from MedSynthLib.scene import _segmentation_to_labelmap

    return _segmentation_to_labelmap(slicer.mrmlScene, segmentation)
