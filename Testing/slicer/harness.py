"""Stand-ins for the parts of 3D Slicer that PyPI ``slicer-core`` lacks, so the module's Logic runs against real MRML.

slicer-core brings Slicer's compiled MRML, module logics and ``slicer.util``; it has no application object, no
``slicer.ScriptedLoadableModule``, no ``slicer.parameterNodeWrapper`` (both pure Python in Slicer, importing qt)
and no ``qt``/``ctk`` (PythonQt). This file supplies minimal versions of exactly those, following Slicer's own
code (``Base/Python/slicer/ScriptedLoadableModule.py``, ``parameterNodeWrapper``): the parameter node is a real
``vtkMRMLScriptedModuleNode`` singleton in a real ``vtkMRMLScene``, and its ``connectGui`` binds widgets with
Slicer's connector checks (gui_connectors.py). Where PyQt5 is installed, ``qt``, ``ctk`` and Slicer's Qt widget
classes follow PythonQt's conventions (pythonqt_shim.py, mrml_widgets.py), so the module's Widget is made from its
.ui and driven as in Slicer. Nothing else is replaced: ``slicer.util`` is slicer-core's, Slicer's own code.

Under Python 3.9 (Slicer 5.8's) slicer-core cannot be installed (no wheels): there :func:`install` also provides a
bare ``slicer`` package (``slicer.util`` with the names the module imports, no scene), so the module's import,
its class definitions and parameter-node type hints, and Slicer's test discovery are checked on 3.9 too.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import sys
import tempfile
import types
import typing
import unittest

import gui_connectors

try:
    import slicer
except ImportError:  # Python 3.9: no slicer-core wheels
    slicer = None
if not hasattr(slicer, "vtkMRMLScene"):  # nothing, or this test folder (Testing/slicer) found as a namespace package
    slicer = None

__all__ = ["install", "HAS_MRML"]


class _App:
    """The bits of ``slicer.app`` that slicer.util and the Logic call outside the GUI."""

    applicationName = "3D Slicer (test harness)"

    def testingEnabled(self) -> bool:  # noqa: N802 - Slicer's API
        return True

    def layoutManager(self):  # noqa: N802 - no views without the GUI
        return None

    def processEvents(self) -> None:  # noqa: N802
        return None

    _qapp = None  # (harness only) the QApplication with PythonQt's conventions, where PyQt5 is installed
    _modules = None  # (harness only) the module manager stand-in, likewise

    def connect(self, signal: str, slot) -> bool:
        """QApplication's signals by C++ signature (a signature it lacks is refused); no-op without PyQt5."""
        return self._qapp.connect(signal, slot) if self._qapp is not None else True

    def moduleManager(self):  # noqa: N802
        return self._modules

    slicerUserSettingsFilePath = ""  # where Slicer keeps the user's Slicer.ini: a temporary folder (install())

    def startupEnvironment(self):  # noqa: N802 - a QProcessEnvironment; no launcher here, so os.environ
        return _Environment(dict(os.environ))

    def setOverrideCursor(self, cursor) -> None:  # noqa: N802
        return None

    def restoreOverrideCursor(self) -> None:  # noqa: N802
        return None


class _Environment:
    """The two QProcessEnvironment methods ``slicer.util.startupEnvironment`` uses."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def keys(self) -> list[str]:
        return list(self.values)

    def value(self, key: str) -> str:
        return self.values[key]


class _QSettings:
    """``qt.QSettings`` for ``slicer.util.settingsValue``: an in-memory store shared by all instances."""

    store: dict[str, object] = {}

    def contains(self, key: str) -> bool:
        return key in self.store

    def value(self, key: str, default=None):
        return self.store.get(key, default)

    def setValue(self, key: str, value) -> None:  # noqa: N802
        self.store[key] = value


# -- slicer.ScriptedLoadableModule --------------------------------------------------------------------------


class ScriptedLoadableModule:
    def __init__(self, parent) -> None:
        self.parent = parent
        self.moduleName = self.__class__.__name__


class ScriptedLoadableModuleWidget:
    """As Slicer's: without a parent a qMRMLWidget panel is made and set up; ``resourcePath`` via the module's path."""

    def __init__(self, parent=None) -> None:
        super().__init__()
        import qt

        self.moduleName = self.__class__.__name__.removesuffix("Widget")
        self.developerMode = slicer.util.settingsValue("Developer/DeveloperMode", False, converter=slicer.util.toBool)
        if not parent:
            self.parent = slicer.qMRMLWidget()
            self.parent.setLayout(qt.QVBoxLayout())
            self.parent.setMRMLScene(slicer.mrmlScene)
        else:
            self.parent = parent
        self.layout = self.parent.layout()
        if not parent:
            self.setup()
            self.parent.show()
        slicer.app.moduleManager().connect("moduleAboutToBeUnloaded(QString)", self._onModuleAboutToBeUnloaded)

    def resourcePath(self, filename: str) -> str:  # noqa: N802
        return os.path.join(os.path.dirname(slicer.util.modulePath(self.moduleName)), "Resources", filename)

    def setup(self) -> None:
        """Slicer adds its developer section here when developer mode is on (off in tests)."""

    def cleanup(self) -> None:
        return None

    def _onModuleAboutToBeUnloaded(self, moduleName: str) -> None:  # noqa: N802, N803
        if moduleName == self.moduleName:
            self.cleanup()


class ScriptedLoadableModuleLogic:
    """As in Slicer: the parameter node is a scripted-module singleton in ``slicer.mrmlScene``."""

    def __init__(self, parent=None) -> None:
        self.moduleName = self.__class__.__name__.removesuffix("Logic")

    def getParameterNode(self):  # noqa: N802
        node = slicer.mrmlScene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node:
            return node
        node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)
        node.SetSingletonTag(self.moduleName)
        node.SetModuleName(self.moduleName)
        node.SetName(slicer.mrmlScene.GenerateUniqueName(self.moduleName))
        return slicer.mrmlScene.AddNode(node)


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message: str, msec: int = 1000) -> None:  # noqa: N802
        print(message)


# -- slicer.parameterNodeWrapper (typed access to a vtkMRMLScriptedModuleNode; GUI binding in gui_connectors) ----


class Validator:
    def validate(self, value) -> None:
        raise NotImplementedError


class WithinRange(Validator):
    def __init__(self, minimum, maximum) -> None:
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value) -> None:
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"Value must be within range [{self.minimum}, {self.maximum}], is {value}")


class Minimum(Validator):
    def __init__(self, minimum) -> None:
        self.minimum = minimum

    def validate(self, value) -> None:
        if value < self.minimum:
            raise ValueError(f"Value must be greater than or equal to {self.minimum}, is {value}")


class Choice(Validator):
    def __init__(self, choices) -> None:
        self.choices = list(choices)

    def validate(self, value) -> None:
        if value not in self.choices:
            raise ValueError(f"Value must be one of {self.choices}, is {value}")


_IMPLICIT = {int: 0, float: 0.0, str: "", bool: False}
_READ = {int: int, float: float, str: str, bool: lambda text: text == "True"}


class Parameter(typing.NamedTuple):
    """One member of a wrapped class: its plain type, validators, default and full (annotated) type hint."""

    base: type
    validators: list
    default: object
    datatype: object


def parameterNodeWrapper(cls):  # noqa: N802 - Slicer's name
    """Typed properties over a vtkMRMLScriptedModuleNode, and ``connectGui``/``disconnectGui`` as Slicer binds
    widgets (gui_connectors: each widget's class must suit its parameter's type, as Slicer's connectors check)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    members = {}
    for name, hint in hints.items():
        base, validators = hint, []
        if typing.get_origin(hint) is typing.Annotated:
            base, *extras = typing.get_args(hint)
            validators = [e for e in extras if isinstance(e, Validator)]
        if base not in _READ:
            raise TypeError(f"The test harness's parameterNodeWrapper does not handle {base} ({name}).")
        members[name] = Parameter(base, validators, cls.__dict__.get(name, _IMPLICIT[base]), hint)

    def make_property(name, base, validators):
        def getter(self):
            return _READ[base](self.parameterNode.GetParameter(name))

        def setter(self, value):
            if not isinstance(value, base) or (base is int and isinstance(value, bool)):
                if not (base is float and isinstance(value, int)):
                    raise TypeError(f"{name} must be {base.__name__}, not {type(value).__name__}")
            for validator in validators:
                validator.validate(value)
            self.parameterNode.SetParameter(name, str(base(value)))

        return property(getter, setter)

    def __init__(self, parameterNode) -> None:  # noqa: N803
        self.parameterNode = parameterNode
        self.guis, self.updatingGui, self._tags = {}, False, itertools.count()
        for name, parameter in members.items():
            if not parameterNode.HasParameter(name):
                setattr(self, name, parameter.default)
        parameterNode.AddObserver("ModifiedEvent", lambda caller, event: gui_connectors.update_gui(self))

    namespace = {"__init__": __init__, "__doc__": cls.__doc__, "allParameters": dict(members),
                 "connectGui": gui_connectors.connect_gui, "disconnectGui": gui_connectors.disconnect_gui,
                 "nextGuiTag": lambda self: next(self._tags)}
    for name, parameter in members.items():
        namespace[name] = make_property(name, parameter.base, parameter.validators)
    return type(cls.__name__, (), namespace)


class _VTKObservationMixin:
    """``slicer.util.VTKObservationMixin`` for the bare package (observations need a scene, which it has not)."""

    def __init__(self) -> None:
        self.Observations = []

    def removeObservers(self, method=None) -> None:  # noqa: N802
        self.Observations = []


def _bare_slicer() -> types.ModuleType:
    """A ``slicer`` package without MRML, for interpreters slicer-core does not support."""
    package = types.ModuleType("slicer", "Bare stand-in for Slicer's package (Python 3.9: no slicer-core).")
    package.__path__ = []
    util = types.ModuleType("slicer.util")
    util.VTKObservationMixin = _VTKObservationMixin
    util.settingsValue = lambda key, default, converter=lambda v: v, settings=None: converter(_QSettings.store.get(key, default))
    package.util = util
    package.mrmlScene = None
    sys.modules["slicer"], sys.modules["slicer.util"] = package, util
    sys.modules.setdefault("vtk", types.ModuleType("vtk", "Bare stand-in: the module imports vtk."))
    return package


#: Whether real MRML (slicer-core) is here; without it only import-level checks can run.
HAS_MRML = slicer is not None


def install() -> None:
    """Put the stand-ins in place (idempotent); a fresh real ``slicer.mrmlScene`` and empty settings each time."""
    global slicer
    if HAS_MRML:
        slicer.util = importlib.import_module("slicer.util")  # always imported in Slicer itself; an earlier test may not have
        importlib.import_module("vtk")  # so is all of VTK (arrayFromVolume's first call would import it: 0.8 s)
        slicer.mrmlScene = slicer.vtkMRMLScene()
    elif slicer is None:
        slicer = _bare_slicer()
    _QSettings.store.clear()
    if isinstance(getattr(slicer, "app", None), _App):
        return
    slicer.app = _App()
    if HAS_MRML and importlib.util.find_spec("PyQt5") is not None:
        _install_pythonqt()
    else:  # Python 3.9: the module is imported and discovered, its widget is not made
        qt = types.ModuleType("qt", "Stand-in for PythonQt's qt (settings only).")
        qt.QSettings = _QSettings
        sys.modules["qt"] = qt
        sys.modules["ctk"] = types.ModuleType("ctk", "Stand-in for PythonQt's ctk (nothing used outside the widget).")
    module = types.ModuleType("slicer.ScriptedLoadableModule")
    for item in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest):
        setattr(module, item.__name__, item)
    sys.modules[module.__name__] = slicer.ScriptedLoadableModule = module
    i18n = types.ModuleType("slicer.i18n", "Slicer's translation markers; no translations loaded here.")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text
    sys.modules[i18n.__name__] = slicer.i18n = i18n
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    for item in (parameterNodeWrapper, Validator, WithinRange, Minimum, Choice):
        setattr(wrapper, item.__name__, item)
    sys.modules[wrapper.__name__] = slicer.parameterNodeWrapper = wrapper


def _install_pythonqt() -> None:
    """``qt``, ``ctk`` and Slicer's Qt classes with PythonQt's conventions over PyQt5 (pythonqt_shim, mrml_widgets),
    so the module's Widget is made and driven as in Slicer."""
    import mrml_widgets
    import pythonqt_shim

    slicer.app.slicerUserSettingsFilePath = os.path.join(tempfile.mkdtemp(prefix="slicer-settings-"), "Slicer.ini")
    slicer.app._qapp = pythonqt_shim.adopt(pythonqt_shim.application())
    sys.modules["qt"] = pythonqt_shim.qt_module(_QSettings)
    sys.modules["ctk"] = pythonqt_shim.ctk_module()
    mrml_widgets.install_mrml_widgets(slicer)
    slicer.app._modules = slicer.qSlicerModuleManager()
    module_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "MedSynth")
    slicer.modules = types.SimpleNamespace(**{name.lower(): types.SimpleNamespace(path=os.path.join(module_dir, f"{name}.py"))
                                              for name in ("MedSynth", "MedSynthReaderStudy")})
