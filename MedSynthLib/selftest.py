"""The bodies of MedSynth's self-test (``MedSynthTest`` in MedSynth.py, run by Slicer's Reload and Test and by
``slicer_add_python_unittest``): each takes the running ``unittest.TestCase`` and the module's Logic class."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from .controller import first_case_dir

__all__ = ["generate_through_engine", "loss_plot", "round_trip"]


def round_trip(test: Any, logic_class: Any) -> None:
    """A volume written as a case folder and loaded back keeps its voxels, spacing and origin."""
    import numpy as np
    import slicer

    volume = slicer.util.addVolumeFromArray(np.arange(6 * 7 * 8, dtype=np.int16).reshape(8, 7, 6), name="rt t1")
    volume.SetSpacing(1.5, 2.0, 2.5)
    volume.SetOrigin(-10.0, 20.0, 5.0)
    with tempfile.TemporaryDirectory() as folder:
        written = logic_class.saveNodes([volume], Path(folder) / "rt")
        again = logic_class().loadCase(written["t1"].parent, show=False).volumes["t1"]
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(again), slicer.util.arrayFromVolume(volume))
        np.testing.assert_allclose(again.GetSpacing(), volume.GetSpacing(), atol=1e-5)
        np.testing.assert_allclose(again.GetOrigin(), volume.GetOrigin(), atol=1e-4)


def loss_plot(test: Any, logic_class: Any) -> None:
    """The loss chart has a series per loss and lives in its own scene (the user's is not modified)."""
    import slicer

    modified = slicer.mrmlScene.GetModifiedSinceRead()
    logic = logic_class()  # owns the chart's scene: kept while the chart is read
    view = logic.updateLossPlot([(1, {"g": 2.0, "d": 1.0}), (2, {"g": 1.5, "d": 0.9})])
    chart = view.GetScene().GetNodeByID(view.GetPlotChartNodeID())
    test.assertEqual(chart.GetNumberOfPlotSeriesNodes(), 2)
    test.assertEqual(slicer.mrmlScene.GetModifiedSinceRead(), modified)


def generate_through_engine(test: Any, logic_class: Any, python: str) -> None:
    """Start the engine with ``python``, generate one phantom case and load it with its three BraTS segments."""
    import slicer

    logic = logic_class()
    logic.startEngine(python)
    try:
        parameters = logic.getParameterNode()
        parameters.voxelSize = 8.0
        logic.generate(parameters, "phantom")
        finished = None
        while finished is None:
            slicer.app.processEvents()
            time.sleep(0.1)
            finished = logic.poll()
        test.assertEqual(finished["state"], "succeeded")
        loaded = logic.loadCase(first_case_dir(finished["output_dir"]))
        test.assertIn("t1", loaded.volumes)
        test.assertEqual(loaded.segmentation.GetSegmentation().GetNumberOfSegments(), 3)
    finally:
        logic.controller.stop_engine(force=True)
