"""PythonQt's conventions (how Python sees Qt inside 3D Slicer) over PyQt5, strict enough that widget code runs in tests.

In Slicer, ``qt.QLineEdit().text`` is the text (Qt properties are attributes, assigning one calls its setter),
``button.connect("clicked(bool)", slot)`` connects by C++ signature (a slot taking fewer arguments gets the first
ones), ``obj.name`` is the object name and ``slicer.util.loadUI`` loads a .ui with ``qt.QUiLoader``. PyQt5 has
methods instead. The ``qt`` and ``ctk`` modules made here hand out, for each PyQt5 class, a subclass that behaves
the PythonQt way, and every object loaded from a .ui is given that class. What Slicer refuses is refused: a
property that the class does not have cannot be assigned, a signature the class does not emit cannot be connected,
a name not in Qt cannot be imported from ``qt``, and ``ctk`` has only the classes stood in here.
"""

from __future__ import annotations

import inspect
import os
import re
import types

from PyQt5 import QtCore, QtGui, QtWidgets, sip, uic

__all__ = ["QT_MODULES", "adopt", "application", "ctk_module", "pythonqt_class", "qt_module"]

QT_MODULES = (QtCore, QtGui, QtWidgets)
_CLASSES: dict[type, type] = {}
#: C++ argument types of the signatures used here, as PyQt5 overload keys
_ARG_TYPES = {"bool": bool, "int": int, "double": float, "QString": str}


def application() -> QtWidgets.QApplication:
    """The one QApplication (offscreen unless a display is configured)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["Slicer (test harness)"])


def _signature(signal: str) -> tuple[str, list[str]]:
    """Qt's normalised form of a C++ signal signature, and its argument types."""
    normalized = bytes(QtCore.QMetaObject.normalizedSignature(signal)).decode()
    match = re.fullmatch(r"(\w+)\((.*)\)", normalized)
    if match is None:
        raise ValueError(f"{signal!r} is not a signal signature such as 'clicked(bool)'")
    return normalized, [arg for arg in match.group(2).split(",") if arg]


def _slot_arity(slot) -> int | None:
    """How many positional arguments ``slot`` accepts (None: any), as PythonQt counts them before a call."""
    try:
        parameters = inspect.signature(slot).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


class PythonQtObject:
    """Mixed into each PyQt5 class handed out: PythonQt's attribute, connect and navigation conventions."""

    #: signals of stand-ins that PyQt5 cannot declare with their C++ types: C++ signature -> (attribute, overload key)
    PYTHONQT_SIGNALS: dict[str, tuple[str, object]] = {}

    #: the Qt properties of the class (attributes here), plus ``name`` for ``objectName``
    PYTHONQT_PROPERTIES: frozenset[str] = frozenset()

    def __getattribute__(self, name: str):
        # Looked up here, not as class attributes: a class attribute named like a virtual getter (sizeHint) would be
        # taken by sip for a Python reimplementation of it.
        if name in type(self).PYTHONQT_PROPERTIES:
            return QtCore.QObject.property(self, "objectName" if name == "name" else name)
        return super().__getattribute__(name)

    def __setattr__(self, name: str, value) -> None:
        if name in type(self).PYTHONQT_PROPERTIES:
            if not QtCore.QObject.setProperty(self, "objectName" if name == "name" else name, value):
                raise TypeError(f"{type(self).__name__}.{name} cannot be set to {value!r} (read-only, or not that type)")
            return None
        if name.startswith("_") or hasattr(type(self), name):
            return super().__setattr__(name, value)
        raise AttributeError(f"{type(self).__name__} has no Qt property '{name}' (PythonQt would not set it)")

    def __bool__(self) -> bool:
        """Truth is "not deleted" in PythonQt (PyQt5 makes an empty QComboBox or layout false through __len__)."""
        return not sip.isdeleted(self)

    def connect(self, signal: str, slot) -> bool:  # noqa: D401 - PythonQt's QObject.connect(signature, callable)
        """Connect by C++ signature, as ``obj.connect("clicked(bool)", slot)`` in Slicer."""
        bound, arity = self._pythonqt_signal(signal), _slot_arity(slot)
        given = _signature(signal)[1]
        count = len(given) if arity is None else min(len(given), arity)

        def call(*args):
            return slot(*args[:count])

        self.__dict__.setdefault("_pythonqt_slots", {})[(signal, slot)] = call
        bound.connect(call)
        return True

    def disconnect(self, signal, slot=None):
        if not isinstance(signal, str):
            return super().disconnect(signal) if slot is None else super().disconnect(signal, slot)
        call = self.__dict__.get("_pythonqt_slots", {}).pop((signal, slot), None)
        if call is None:
            raise RuntimeError(f"{type(self).__name__}: {signal} was not connected to {slot}")
        self._pythonqt_signal(signal).disconnect(call)
        return True

    def _pythonqt_signal(self, signal: str):
        normalized, args = _signature(signal)
        if normalized in self.PYTHONQT_SIGNALS:
            attribute, key = self.PYTHONQT_SIGNALS[normalized]
            bound = getattr(self, attribute)
            return bound if key is None else bound[key]
        if self.metaObject().indexOfSignal(normalized) < 0:
            raise AttributeError(f"{type(self).__name__} has no signal {signal} (Slicer's PythonQt would refuse it)")
        bound = getattr(self, normalized.split("(")[0])
        keys = tuple(_ARG_TYPES.get(arg) for arg in args)
        if keys and None not in keys:
            try:
                return bound[keys if len(keys) > 1 else keys[0]]
            except KeyError:
                return bound  # not overloaded in PyQt5: the default is this signature
        return bound  # no arguments, or types PyQt5 names differently: the slot gets what it accepts

    # navigation returns objects with PythonQt's conventions too
    def children(self):
        return [adopt(child) for child in super().children()]

    def findChildren(self, *args):  # noqa: N802 - Qt's name
        """As ``findChildren(qt.QWidget)`` in PythonQt: the class given is Qt's, whatever Python class wraps it."""
        args = tuple(_pyqt_base(arg) for arg in args)
        return [adopt(child) for child in super().findChildren(*args)]

    def parentWidget(self):  # noqa: N802
        return adopt(super().parentWidget())

    def layout(self):
        return adopt(super().layout())


def pythonqt_class(cls: type) -> type:
    """``cls`` with PythonQt's conventions (Qt properties as attributes, ``name``, ``connect(signature, slot)``)."""
    if not (isinstance(cls, type) and issubclass(cls, QtCore.QObject)) or issubclass(cls, PythonQtObject):
        return cls
    if cls not in _CLASSES:
        meta = cls.staticMetaObject
        names = {meta.property(i).name() for i in range(meta.propertyCount())}
        module = "qt" if cls.__module__.startswith("PyQt5.") else cls.__module__
        namespace = {"PYTHONQT_PROPERTIES": frozenset(names | {"name"}), "__module__": module}
        namespace["PYTHONQT_SIGNALS"] = getattr(cls, "PYTHONQT_SIGNALS", {})
        _CLASSES[cls] = type(cls.__name__, (PythonQtObject, cls), namespace)
    return _CLASSES[cls]


def _pyqt_base(cls):
    """The PyQt5 class behind a class handed out here (PyQt5 matches children by its own classes)."""
    if isinstance(cls, type) and issubclass(cls, PythonQtObject):
        return next(base for base in cls.__mro__ if base.__module__.startswith("PyQt5."))
    return cls


def adopt(obj):
    """Give a PyQt5 object the PythonQt class of its type (the same object: Qt and sip see no difference)."""
    if isinstance(obj, QtCore.QObject) and not isinstance(obj, PythonQtObject):
        obj.__class__ = pythonqt_class(type(obj))
    return obj


class QUiLoader:
    """``qt.QUiLoader`` (PythonQt has Qt's UI tools; PyQt5 loads with ``uic``): every object it makes is adopted."""

    def load(self, device, parent=None):
        widget = uic.loadUi(device.fileName())
        for child in [widget, *QtCore.QObject.findChildren(widget, QtCore.QObject)]:
            adopt(child)
        if parent is not None:
            widget.setParent(parent)
        return widget


class QFileDialog(QtWidgets.QFileDialog):
    """PythonQt returns the chosen file name alone (PyQt5: a (name, filter) pair)."""

    @staticmethod
    def getOpenFileName(*args, **kwargs) -> str:  # noqa: N802
        return QtWidgets.QFileDialog.getOpenFileName(*args, **kwargs)[0]

    @staticmethod
    def getSaveFileName(*args, **kwargs) -> str:  # noqa: N802
        return QtWidgets.QFileDialog.getSaveFileName(*args, **kwargs)[0]


def qt_module(settings: type) -> types.ModuleType:
    """PythonQt's ``qt``: Qt's classes and namespaces by name (a name Qt lacks is an AttributeError), ``QSettings``
    being ``settings`` (the harness keeps settings in memory)."""
    module = types.ModuleType("qt", "PythonQt's qt, over PyQt5 (Testing/slicer/pythonqt_shim.py).")
    module.QUiLoader, module.QSettings, module.QFileDialog = QUiLoader, settings, pythonqt_class(QFileDialog)

    def lookup(name: str):
        for binding in QT_MODULES:
            if hasattr(binding, name) and name.startswith("Q"):
                value = pythonqt_class(getattr(binding, name))
                setattr(module, name, value)
                return value
        raise AttributeError(f"module 'qt' has no attribute '{name}'")

    module.__getattr__ = lookup
    return module


class ctkCollapsibleButton(QtWidgets.QAbstractButton):  # noqa: N801 - CTK's name
    """CTK's collapsible section header (Libs/Widgets/ctkCollapsibleButton.h): a checkable button whose
    ``collapsed`` property hides its contents."""

    contentsCollapsed = QtCore.pyqtSignal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._collapsed = False
        self.setCheckable(True)
        self.setChecked(True)

    def _get_collapsed(self) -> bool:
        return self._collapsed

    def setCollapsed(self, collapsed: bool) -> None:  # noqa: N802
        self._collapsed = bool(collapsed)
        self.setChecked(not collapsed)
        for child in QtCore.QObject.findChildren(self, QtWidgets.QWidget, options=QtCore.Qt.FindDirectChildrenOnly):
            child.setVisible(not collapsed)
        self.contentsCollapsed.emit(self._collapsed)

    collapsed = QtCore.pyqtProperty(bool, _get_collapsed, setCollapsed)

    def paintEvent(self, event) -> None:  # noqa: N802 - nothing is drawn offscreen
        return None


def ctk_module() -> types.ModuleType:
    """``ctk`` with only what is stood in; any other CTK class is an AttributeError."""
    module = types.ModuleType("ctk", "CTK's Python module, the classes the MedSynth module uses (pythonqt_shim).")
    module.ctkCollapsibleButton = pythonqt_class(ctkCollapsibleButton)
    return module
