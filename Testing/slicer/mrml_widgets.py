"""Stand-ins for Slicer's MRML widgets (``slicer.qMRML*``) over PyQt5 and real MRML (slicer-core).

Each declares the properties, invokable methods and signals of its Slicer v5.8.1 header that the module uses
(``Libs/MRML/Widgets/qMRMLNodeComboBox.h``, ``qMRMLSegmentSelectorWidget.h``, ``qMRMLPlotWidget.h``,
``qMRMLWidget.h``, ``Base/QTGUI/qSlicerAbstractModuleWidget.h``, ``Base/QTCore/qSlicerModuleManager.h``), under the same names; anything else is refused
by :mod:`pythonqt_shim`. The node combo box lists the scene's nodes as Slicer's does (class filter with or without
child classes, hidden child types, nodes hidden from editors left out), so what the user could pick is testable.
"""

from __future__ import annotations

from PyQt5 import QtCore, QtWidgets
from pythonqt_shim import pythonqt_class

__all__ = ["install_mrml_widgets"]

_NODE = "vtkMRMLNode*"


class qMRMLWidget(QtWidgets.QWidget):  # noqa: N801 - Slicer's names
    PYTHONQT_SIGNALS = {"mrmlSceneChanged(vtkMRMLScene*)": ("mrmlSceneChanged", None)}
    mrmlSceneChanged = QtCore.pyqtSignal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._scene = None

    def setMRMLScene(self, scene) -> None:  # noqa: N802
        self._scene = scene
        self.mrmlSceneChanged.emit(scene)

    def mrmlScene(self):  # noqa: N802
        return self._scene


class qSlicerScriptedLoadableModuleWidget(qMRMLWidget):  # noqa: N801
    """The panel Slicer gives a scripted module's Widget as ``parent`` (isEntered between enter() and exit())."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._entered = False
        self.setLayout(QtWidgets.QVBoxLayout())

    def _is_entered(self) -> bool:
        return self._entered

    isEntered = QtCore.pyqtProperty(bool, _is_entered)


def _flag(name: str, default: bool = False):
    def get(self) -> bool:
        return self._flags.get(name, default)

    def set_(self, value: bool) -> None:
        self._flags[name] = bool(value)

    return QtCore.pyqtProperty(bool, get, set_)


class qMRMLNodeComboBox(qMRMLWidget):  # noqa: N801
    PYTHONQT_SIGNALS = {
        f"currentNodeChanged({_NODE})": ("currentNodeChanged", object),
        "currentNodeChanged(bool)": ("currentNodeChanged", bool),
        "currentNodeIDChanged(QString)": ("currentNodeIDChanged", None),
        **qMRMLWidget.PYTHONQT_SIGNALS,
    }
    currentNodeChanged = QtCore.pyqtSignal([object], [bool])
    currentNodeIDChanged = QtCore.pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._flags, self._types, self._hidden_types, self._current = {}, [], [], None

    noneEnabled, addEnabled, removeEnabled = _flag("noneEnabled"), _flag("addEnabled", True), _flag("removeEnabled", True)
    editEnabled, renameEnabled, showHidden = _flag("editEnabled"), _flag("renameEnabled"), _flag("showHidden")
    showChildNodeTypes, selectNodeUponCreation = _flag("showChildNodeTypes", True), _flag("selectNodeUponCreation", True)

    def _get_types(self) -> list[str]:
        return list(self._types)

    def setNodeTypes(self, types: list[str]) -> None:  # noqa: N802
        self._types = list(types)

    nodeTypes = QtCore.pyqtProperty("QStringList", _get_types, setNodeTypes)

    def _get_hidden(self) -> list[str]:
        return list(self._hidden_types)

    def setHideChildNodeTypes(self, types: list[str]) -> None:  # noqa: N802
        self._hidden_types = list(types)

    hideChildNodeTypes = QtCore.pyqtProperty("QStringList", _get_hidden, setHideChildNodeTypes)

    def _listed(self, node) -> bool:
        if not self.showHidden and node.GetHideFromEditors():
            return False
        if any(node.IsA(hidden) for hidden in self._hidden_types):
            return False
        if self.showChildNodeTypes:
            return any(node.IsA(t) for t in self._types)
        return node.GetClassName() in self._types

    def _nodes(self) -> list:
        scene = self.mrmlScene()
        if scene is None:
            return []
        nodes = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
        return [node for node in nodes if self._listed(node)]

    def nodeCount(self) -> int:  # noqa: N802
        return len(self._nodes())

    def nodeFromIndex(self, index: int):  # noqa: N802
        return self._nodes()[index]

    def currentNode(self):  # noqa: N802
        node = self._current
        scene = self.mrmlScene()
        return node if node is not None and scene is not None and scene.IsNodePresent(node) else None

    def currentNodeID(self) -> str:  # noqa: N802
        node = self.currentNode()
        return node.GetID() if node else ""

    def setCurrentNode(self, node) -> None:  # noqa: N802
        if isinstance(node, str):
            node = self.mrmlScene().GetNodeByID(node) if node else None
        if node is not None and node not in self._nodes():
            return  # as in Slicer: a node the combo box does not list cannot become current
        if node is None and not self.noneEnabled and self._nodes():
            return
        self._current = node
        self.currentNodeChanged[object].emit(node)
        self.currentNodeChanged[bool].emit(node is not None)
        self.currentNodeIDChanged.emit(node.GetID() if node else "")

    setCurrentNodeID = setCurrentNode


class qMRMLSegmentSelectorWidget(qMRMLNodeComboBox):  # noqa: N801
    """A segmentation node combo box and a segment list; the segmentation choice behaves as in qMRMLNodeComboBox."""

    PYTHONQT_SIGNALS = {**qMRMLNodeComboBox.PYTHONQT_SIGNALS,
                        "currentSegmentChanged(QString)": ("currentSegmentChanged", None),
                        "segmentSelectionChanged(QStringList)": ("segmentSelectionChanged", None)}
    currentSegmentChanged = QtCore.pyqtSignal(str)
    segmentSelectionChanged = QtCore.pyqtSignal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._types, self._segment = ["vtkMRMLSegmentationNode"], ""

    def segmentIDs(self) -> list[str]:  # noqa: N802
        node = self.currentNode()
        return list(node.GetSegmentation().GetSegmentIDs()) if node else []

    def currentSegmentID(self) -> str:  # noqa: N802
        return self._segment if self._segment in self.segmentIDs() else ""

    def setCurrentSegmentID(self, segmentId: str) -> None:  # noqa: N802
        self._segment = segmentId if segmentId in self.segmentIDs() else ""
        self.currentSegmentChanged.emit(self._segment)


class qMRMLPlotWidget(qMRMLWidget):  # noqa: N801
    """Shows the plot view node it is given (a node of the scene it was given)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._view = None

    def setMRMLPlotViewNode(self, view) -> None:  # noqa: N802
        self._view = view

    def mrmlPlotViewNode(self):  # noqa: N802
        return self._view


class qSlicerModuleManager(QtCore.QObject):  # noqa: N801 - Base/QTCore/qSlicerModuleManager.h
    moduleAboutToBeUnloaded = QtCore.pyqtSignal(str)


def install_mrml_widgets(slicer) -> None:
    """Put the stand-ins on the ``slicer`` package under Slicer's names, with PythonQt's conventions."""
    for cls in (qMRMLWidget, qSlicerScriptedLoadableModuleWidget, qMRMLNodeComboBox, qMRMLSegmentSelectorWidget,
                qMRMLPlotWidget, qSlicerModuleManager):
        setattr(slicer, cls.__name__, pythonqt_class(cls))
