"""MedSynth.py's module, parameter node and Logic against Slicer's real MRML, with a real engine process."""

from __future__ import annotations

import math
import stat
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import slicer

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

HERE = Path(__file__).resolve().parent


def test_module_metadata_and_privacy_help(medsynth):
    parent = type("Parent", (), {})()
    medsynth.MedSynth(parent)
    assert parent.title == "MedSynth" and parent.categories == ["Segmentation"] and parent.contributors
    assert "Privacy" in parent.helpText and "127.0.0.1" in parent.helpText and "anonymised" in parent.helpText


def test_parameter_node_is_a_typed_singleton_in_the_scene(medsynth):
    logic = medsynth.MedSynthLogic()
    parameters = logic.getParameterNode()
    assert (parameters.count, parameters.layout, parameters.tumour, parameters.voxelSize) == (1, "brats", True, 1.0)
    parameters.count = 12
    node = slicer.mrmlScene.GetSingletonNode("MedSynth", "vtkMRMLScriptedModuleNode")
    assert node.GetParameter("count") == "12"
    assert medsynth.MedSynthLogic().getParameterNode().count == 12  # same node, read back typed
    with pytest.raises(ValueError):
        parameters.count = 0
    with pytest.raises(ValueError):
        parameters.layout = "nifti"


def test_load_case_shows_it_in_the_slice_views(medsynth, make_phantom_set):
    set_dir = make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0)
    case = next(p for p in set_dir.iterdir() if p.is_dir())
    composite = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    loaded = medsynth.MedSynthLogic().loadCase(case)
    assert slicer.util.getNode(f"{case.name} flair") is loaded.volumes["flair"]
    assert composite.GetBackgroundVolumeID() == loaded.volumes["flair"].GetID()
    segmentation = slicer.util.getNode(f"{case.name} segmentation")
    assert segmentation.GetDisplayNode().GetVisibility2DFill()
    image = nib.load(str(case / f"{case.name}_t1.nii.gz"))
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(loaded.volumes["t1"]).T, np.asanyarray(image.dataobj))


def test_loss_plot_is_a_slicer_chart(medsynth):
    logic = medsynth.MedSynthLogic()
    logic.updateLossPlot([(1, {"g": 2.0, "d": 1.0}), (5, {"g": 1.5, "d": 0.75})])
    view = logic.updateLossPlot([(1, {"g": 2.0, "d": 1.0}), (5, {"g": 1.5, "d": 0.75}), (9, {"g": 1.0, "d": 0.5})])
    chart = view.GetScene().GetNodeByID(view.GetPlotChartNodeID())
    assert chart.GetNumberOfPlotSeriesNodes() == 2  # updated in place, not duplicated
    table = logic.lossPlot.table
    assert view.GetScene() is not slicer.mrmlScene and not slicer.mrmlScene.GetNodesByClass("vtkMRMLTableNode").GetNumberOfItems()
    assert [table.GetTable().GetValue(r, 0).ToDouble() for r in range(3)] == [1.0, 5.0, 9.0]
    names = [table.GetTable().GetColumnName(c) for c in range(3)]
    assert names == ["step", "g", "d"]  # in the order the losses first appear
    assert table.GetTable().GetValue(2, 1).ToDouble() == 1.0
    assert logic.lossPlot.rows == 3
    logic.updateLossPlot([(1, {"g": 2.0, "d": 1.0}), (5, {"g": 1.5, "d": 0.75}), (9, {"g": 1.0, "d": 0.5}), (13, {"c": 0.1})])
    assert table.GetTable().GetNumberOfRows() == 4 and table.GetTable().GetColumnName(3) == "c"
    assert math.isnan(table.GetTable().GetValue(0, 3).ToDouble()) and math.isnan(table.GetTable().GetValue(3, 1).ToDouble())
    logic.updateLossPlot([(1, {"g": 3.0})])  # a new job: a shorter list starts the chart over
    assert table.GetTable().GetNumberOfRows() == 1 and chart.GetNumberOfPlotSeriesNodes() == 1


def test_save_nodes_writes_an_engine_readable_case(medsynth, make_phantom_set, tmp_path):
    set_dir = make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0)
    case = next(p for p in set_dir.iterdir() if p.is_dir())
    logic = medsynth.MedSynthLogic()
    loaded = logic.loadCase(case, show=False)
    written = logic.saveNodes([loaded.volumes["t2"], loaded.segmentation], tmp_path / "mine")
    assert sorted(written) == ["seg", "t2"]
    for channel, path in written.items():
        original = nib.load(str(case / f"{case.name}_{channel}.nii.gz"))
        np.testing.assert_array_equal(np.asanyarray(nib.load(str(path)).dataobj), np.asanyarray(original.dataobj))


def test_generate_through_a_real_engine_loads_the_first_case(medsynth, tmp_path, monkeypatch):
    # Another interpreter than Slicer's own (a wrapper script here) starts with Slicer's startup environment.
    python = tmp_path / "engine-python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    logic = medsynth.MedSynthLogic()
    logic.startEngine(str(python), stateDir=str(tmp_path / "engine"))
    assert medsynth.MedSynthLogic.defaultEnginePython() == str(python)  # remembered in the settings
    try:
        parameters = logic.getParameterNode()
        parameters.voxelSize = 8.0
        parameters.channels = "t1,flair,seg"
        logic.generate(parameters, "phantom")
        deadline = time.monotonic() + 120  # stops a hung test only
        finished = None
        while finished is None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
            finished = logic.poll()
        assert finished["state"] == "succeeded", finished
        from MedSynthLib.controller import first_case_dir

        loaded = logic.loadCase(first_case_dir(finished["output_dir"]))
        assert sorted(loaded.volumes) == ["flair", "t1"]
        assert loaded.volumes["t1"].GetImageData().GetDimensions() == (22, 26, 22)
        _connect_by_url_keeps_the_token_out_of_the_scene(medsynth, logic, tmp_path, monkeypatch)
    finally:
        assert logic.shutdown() == "The MedSynth engine was stopped."


def _connect_by_url_keeps_the_token_out_of_the_scene(medsynth, started, tmp_path, monkeypatch):
    """A second panel connects by URL with the token file; the token goes to the user's 0600 file, not the scene."""
    credentials = tmp_path / "home" / ".medsynth" / "credentials.json"
    monkeypatch.setenv("MEDSYNTH_CREDENTIALS", str(credentials))
    process = started.controller.session.process
    token = process.token_file.read_text().strip()
    other = medsynth.MedSynthLogic()
    with pytest.raises(medsynth.InputError, match="No token is saved"):
        other.connect(process.url, "")
    parameters = other.getParameterNode()
    parameters.engineUrl = process.url
    assert other.connect(process.url, str(process.token_file))["status"] == "ok"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600 and token in credentials.read_text()
    assert medsynth.MedSynthLogic().connect(process.url, "")["status"] == "ok"  # the saved token, nothing typed
    assert not any("token" in name.lower() for name in medsynth.MedSynthParameterNode.allParameters)
    slicer.mrmlScene.SetSaveToXMLString(1)
    slicer.mrmlScene.Commit()
    saved = slicer.mrmlScene.GetSceneXMLString()
    assert process.url in saved  # the scene was written, with the URL
    assert token not in saved and str(process.token_file) not in saved and "engine.token" not in saved


def test_the_module_never_imports_torch_monai_or_the_engine():
    code = (
        "import sys; sys.path[:0] = [{!r}, {!r}]; import harness; harness.install(); import MedSynth; "
        "bad = [m for m in ('torch', 'monai', 'medsynth_engine') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    ).format(str(HERE), str(HERE.parents[1] / "MedSynth"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_slicer_self_test_passes_on_real_mrml(medsynth):
    """MedSynthTest (what Slicer's "Reload and Test" runs); its engine part needs the MedSynth/EnginePython setting."""
    medsynth.MedSynthTest().runTest()
