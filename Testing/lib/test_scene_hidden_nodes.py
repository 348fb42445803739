"""Temporary nodes the scene bridge makes while reading or writing files never show up in node selectors."""

from __future__ import annotations

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is a pinned test dependency")

from vtkmodules.util.misc import calldata_type  # noqa: E402
from vtkmodules.util.vtkConstants import VTK_OBJECT  # noqa: E402

from MedSynthLib.scene import load_case, load_channel, save_nodes  # noqa: E402


def test_temporary_label_maps_are_hidden_from_selectors_when_added(make_phantom_set, tmp_path):
    scene = slicer.vtkMRMLScene()
    added: list[tuple[str, bool]] = []

    @calldata_type(VTK_OBJECT)  # the added node is the call data
    def on_added(caller, event, node):
        if node.IsA("vtkMRMLLabelMapVolumeNode"):
            added.append((node.GetName(), bool(node.GetHideFromEditors())))

    scene.AddObserver(scene.NodeAddedEvent, on_added)
    case = next(p for p in make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0).iterdir() if p.is_dir())
    loaded = load_case(case, scene)
    load_channel(case / f"{case.name}_seg.nii.gz", scene)
    assert not added  # segments are made from the label file in memory, with no label map node
    save_nodes([loaded.volumes["t1"], loaded.segmentation], tmp_path / "out", scene)
    assert len(added) == 1 and all(hidden for _name, hidden in added), added
    assert not scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems()  # and gone afterwards
