"""MedSynthWidget made with its real .ui through the PythonQt shim, and the shim's own strictness.

No engine here (test_module_widget_engine.py drives one): the panel's set-up, its sections, the parameter binding
both ways, the MRML selectors over a real scene, and what the shim refuses because Slicer would.
"""

from __future__ import annotations

import numpy as np
import pytest

from MedSynthLib.sections import EXPANDED, SECTION_GROUPS


@pytest.fixture
def panel(medsynth):
    import slicer

    parent = slicer.qSlicerScriptedLoadableModuleWidget()
    widget = medsynth.MedSynthWidget(parent)
    widget.setup()
    parent._entered = True
    widget.enter()
    yield widget
    widget.cleanup()


def test_pythonqt_conventions_and_what_they_refuse(medsynth):
    import ctk
    import qt
    import slicer

    edit, seen = qt.QLineEdit(), []
    edit.connect("textChanged(QString)", seen.append)
    edit.text = "abc"  # a Qt property is an attribute
    assert edit.text == "abc" and seen == ["abc"]
    button = qt.QPushButton()
    button.connect("clicked()", lambda *args: seen.append(args))  # "clicked()" passes nothing
    button.click()
    assert seen[-1] == ()
    with pytest.raises(AttributeError, match="no signal"):
        edit.connect("textChanged(int)", seen.append)
    with pytest.raises(AttributeError, match="no Qt property"):
        edit.txt = "typo"
    with pytest.raises(TypeError, match="read-only"):
        slicer.qSlicerScriptedLoadableModuleWidget().isEntered = True
    with pytest.raises(AttributeError):
        qt.QNoSuchWidget  # noqa: B018
    with pytest.raises(AttributeError):
        ctk.ctkSliderWidget  # noqa: B018 - not stood in: the module must not use it unchecked
    with pytest.raises(AttributeError, match="no signal"):
        slicer.qMRMLNodeComboBox().connect("nodeChanged(vtkMRMLNode*)", seen.append)


def _bound(medsynth, widget_class: str, hint):
    """A one-parameter wrapper bound to a widget of ``widget_class`` named for it (as in a .ui)."""
    import qt
    import slicer

    wrapper_class = medsynth.parameterNodeWrapper(type("Params", (), {"__annotations__": {"value": hint}}))
    container = qt.QWidget()
    widget = getattr(qt, widget_class)(container)
    widget.setProperty("SlicerParameterName", "value")
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    return wrapper_class(node).connectGui(container), widget


@pytest.mark.parametrize("widget_class, hint, message", [
    ("QLineEdit", int, "Unable to create GUI connector"),
    ("QSpinBox", float, "Unable to create GUI connector"),
    ("QComboBox", str, "requires the Choice annotation"),
    ("QDoubleSpinBox", bool, "Unable to create GUI connector"),
])
def test_a_widget_that_cannot_show_its_parameter_is_refused(medsynth, widget_class, hint, message):
    with pytest.raises(RuntimeError, match=message):
        _bound(medsynth, widget_class, hint)


def test_a_widget_bound_to_a_parameter_the_node_lacks_is_refused(medsynth):
    import qt

    container = qt.QWidget()
    qt.QLineEdit(container).setProperty("SlicerParameterName", "noSuchParameter")
    with pytest.raises(ValueError, match="noSuchParameter"):
        medsynth.MedSynthLogic().getParameterNode().connectGui(container)


def test_the_panel_sets_up_its_sections_with_the_job_status_first(panel):
    layout = panel.sections["jobGroup"].parentWidget().layout()
    order = [layout.itemAt(i).widget().name for i in range(layout.count()) if layout.itemAt(i).widget()]
    assert order == [name.replace("Group", "CollapsibleButton") for name in SECTION_GROUPS]
    assert {name for name, section in panel.sections.items() if not section.collapsed} == set(EXPANDED)
    assert not panel.ui.generateButton.enabled and panel.ui.generateButton.toolTip  # no engine: says why


@pytest.mark.parametrize("name", ["count", "seed", "voxelSize", "channels", "tumour", "steps", "layout",
                                  "tumourMargin", "dataFolder", "tumourLabels"])
def test_each_parameter_follows_its_widget_and_back(panel, name):
    parameters = panel._parameterNode
    widget = next(w for w in vars(panel.ui).values() if w.property("SlicerParameterName") == name)
    value = {"count": 3, "seed": 11, "voxelSize": 4.0, "channels": "t1,seg", "tumour": False, "steps": 7,
             "layout": "nnunet", "tumourMargin": 12.5, "dataFolder": "/data/brats", "tumourLabels": True}[name]
    shows = "currentText" if name == "layout" else {bool: "checked", str: "text"}.get(type(value), "value")
    if name == "layout":
        widget.currentIndex = widget.findText(value)
    else:
        setattr(widget, shows, value)
    assert getattr(parameters, name) == value
    setattr(parameters, name, type(parameters).allParameters[name].default)
    assert getattr(widget, shows) == getattr(parameters, name) != value


def test_every_parameter_is_bound_to_a_widget(panel):
    bound = {name for connectors in panel._parameterNode.guis.values() for name in connectors}
    assert bound == set(panel._parameterNode.allParameters)


def test_volume_selectors_list_scalar_volumes_only(panel):
    import slicer

    shown = slicer.util.addVolumeFromArray(np.zeros((4, 4, 4), np.int16), name="case t1")
    slicer.util.addVolumeFromArray(np.zeros((4, 4, 4), np.int16), name="labels", nodeClassName="vtkMRMLLabelMapVolumeNode")
    hidden = slicer.util.addVolumeFromArray(np.zeros((4, 4, 4), np.int16), name="temporary")
    hidden.SetHideFromEditors(True)
    for selector in (panel.volumeSelector, panel.tumourVolumeSelector):
        assert [selector.nodeFromIndex(i) for i in range(selector.nodeCount())] == [shown]
    panel.volumeSelector.setCurrentNode(shown)
    panel.volumeSelector.setCurrentNode(slicer.util.getNode("labels"))  # not listed: cannot be chosen
    assert panel.volumeSelector.currentNode() is shown


#: slicer.util functions defined in Base/Python/slicer/util.py of both Slicer v5.8.1 and v5.10.0 (read there; the
#: tests run PyPI slicer-core's newer copy, which has more). A new call must be checked there and added here.
SLICER_UTIL_5_8_AND_5_10 = {
    "VTKObservationMixin", "addVolumeFromArray", "arrayFromVolume", "childWidgetVariables", "getModuleLogic",
    "loadUI", "setSliceViewerLayers", "settingsValue", "startupEnvironment", "tryWithErrorDisplay",
    "updateVolumeFromArray",
}


def test_the_slicer_side_calls_only_slicer_util_functions_that_slicer_5_8_and_5_10_have():
    import ast
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    used = set()
    for path in [*(repo / "MedSynth").glob("*.py"), *(repo / "MedSynthLib").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "util" \
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "slicer":
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module == "slicer.util":
                used |= {alias.name for alias in node.names}
    assert used and used <= SLICER_UTIL_5_8_AND_5_10, sorted(used - SLICER_UTIL_5_8_AND_5_10)
