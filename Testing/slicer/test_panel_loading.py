"""The panel's Logic loads job results in steps: read on its worker thread, then one node per timer tick."""

from __future__ import annotations

import shutil
import time


def _tick_until(logic, done, limit_s: float = 60.0) -> list[int]:
    """Run the panel's timer ticks until ``done()``; the scene's node count after each tick."""
    import slicer

    counts, deadline = [], time.monotonic() + limit_s
    while not done():
        assert time.monotonic() < deadline, logic.controller.error
        logic.tick()
        counts.append(slicer.mrmlScene.GetNumberOfNodes())
        time.sleep(0.01)
    return counts


def test_results_arriving_together_are_built_in_turn_one_node_per_tick(medsynth, make_phantom_set):
    import slicer

    set_dir = make_phantom_set(n=2, shape=(16, 16, 16), spacing=8.0)
    logic = medsynth.MedSynthLogic()
    before = slicer.mrmlScene.GetNumberOfNodes()
    for _ in range(2):
        logic.loadResultInSteps({"kind": "generate", "state": "succeeded", "output_dir": str(set_dir)})
    counts = _tick_until(logic, lambda: len(logic.loadedCases) == 2)
    steps = [b - a for a, b in zip([before, *counts], counts, strict=False)]
    assert max(steps) <= 2  # a node and its display node
    assert all(set(case.volumes) == {"t1", "t1ce", "t2", "flair"} for case in logic.loadedCases)
    assert logic.loadedCases[0].segmentation is not logic.loadedCases[1].segmentation


def test_a_broken_result_is_reported_and_a_closing_scene_drops_a_half_built_case(medsynth, make_phantom_set, tmp_path):
    import slicer

    case = next(p for p in make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0).iterdir() if p.is_dir())
    broken = tmp_path / "set" / case.name
    shutil.copytree(case, broken)
    (broken / f"{case.name}_t2.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    logic = medsynth.MedSynthLogic()
    before = slicer.mrmlScene.GetNumberOfNodes()
    logic.loadResultInSteps({"kind": "add-tumour", "state": "succeeded", "result": {"case": str(broken)}})
    _tick_until(logic, lambda: logic.controller.error)
    assert f"{case.name}_t2.nii.gz could not be read" in logic.controller.error
    assert slicer.mrmlScene.GetNumberOfNodes() == before and not logic.loadedCases

    logic.loadResultInSteps({"kind": "add-tumour", "state": "succeeded", "result": {"case": str(case)}})
    _tick_until(logic, lambda: slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") >= 2)
    logic.stopLoading()  # what the widget does when the scene starts closing
    logic.tick()
    assert slicer.mrmlScene.GetNumberOfNodes() == before and not logic.loadedCases
