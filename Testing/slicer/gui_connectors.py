"""``parameterNodeWrapper``'s GUI binding (``connectGui``/``disconnectGui``) as Slicer v5.8.1 does it.

Follows ``Base/Python/slicer/parameterNodeWrapper/guiConnectors.py`` and ``wrapper.py``: the widgets are those with a
``SlicerParameterName`` property (children of a widget, or the attributes of ``childWidgetVariables``); each gets the
first connector whose ``canRepresent`` accepts the widget's exact class and the parameter's type, else the same
RuntimeError as Slicer. A parameter name the node does not have is a ValueError. Values go widget -> parameter on the
widget's change signal and parameter -> widgets whenever the parameter node is modified.
"""

from __future__ import annotations

import typing

__all__ = ["PARAMETER_PROPERTY", "connect_gui", "disconnect_gui"]

PARAMETER_PROPERTY = "SlicerParameterName"


class Connector:
    """One widget bound to one parameter: ``signal`` is the PyQt5 change signal's name, ``value`` the property."""

    def __init__(self, widget, signal: str | None, value: str, choices: list | None = None) -> None:
        self.widget, self.signal, self.value, self.choices = widget, signal, value, choices
        self.callback = None

    def read(self):
        current = getattr(self.widget, self.value)
        return self.choices[current] if self.choices is not None else current

    def write(self, value) -> None:
        if self.choices is None:
            setattr(self.widget, self.value, value)
        elif value in self.choices:
            self.widget.currentIndex = self.choices.index(value)
        else:
            raise ValueError(f"Unable to find value {value} in choices {self.choices}")


def _split(datatype):
    if typing.get_origin(datatype) is typing.Annotated:
        base, *annotations = typing.get_args(datatype)
        return base, annotations
    return datatype, []


def _first(annotations, kind_name: str):
    return next((a for a in annotations if type(a).__name__ == kind_name), None)


def _spin_box(widget, annotations, floating: bool) -> None:
    """Slicer sets the widget's range from WithinRange, else Minimum/Maximum, else the widest range."""
    within, low, high = (_first(annotations, k) for k in ("WithinRange", "Minimum", "Maximum"))
    wide = (float("-inf"), float("inf")) if floating else (-(2**31), 2**31 - 1)
    widget.minimum = within.minimum if within else (low.minimum if low else wide[0])
    widget.maximum = within.maximum if within else (high.maximum if high else wide[1])


def create_connector(widget, datatype) -> Connector:
    """The connector Slicer's ``createGuiConnector`` picks (exact widget classes, as Slicer's ``type(widget) in``)."""
    import qt
    import slicer

    base, annotations = _split(datatype)
    kind = type(widget)
    if base is bool and kind is qt.QCheckBox:
        return Connector(widget, "stateChanged", "checked")
    if base is bool and kind is qt.QPushButton:
        return Connector(widget, "toggled", "checked")
    if base is int and kind in (qt.QSlider, qt.QSpinBox):
        _spin_box(widget, annotations, floating=False)
        return Connector(widget, "valueChanged", "value")
    if base is float and kind is qt.QDoubleSpinBox:
        _spin_box(widget, annotations, floating=True)
        return Connector(widget, "valueChanged", "value")
    if kind is qt.QComboBox and base in (int, float, str, bool):
        choice = _first(annotations, "Choice")
        if choice is None:
            raise RuntimeError("ComboBoxToStringableConnector requires the Choice annotation to be used.")
        widget.clear()
        for item in choice.choices:
            widget.addItem(str(item))
        return Connector(widget, "currentIndexChanged", "currentIndex", list(choice.choices))
    if base is str and kind is qt.QLineEdit:
        return Connector(widget, "textChanged", "text")
    if base is str and kind is qt.QLabel:
        return Connector(widget, None, "text")  # shows the value; a label is never edited
    if kind is getattr(slicer, "qMRMLNodeComboBox", None) and isinstance(base, type) and base.__name__.startswith("vtkMRML"):
        return Connector(widget, "currentNodeChanged", "currentNode")
    raise RuntimeError(f"Unable to create GUI connector from datatype '{datatype}' to widget type '{kind}'.")


def connect_gui(wrapper, gui) -> int:
    """Bind ``gui``'s parameter widgets to ``wrapper``; returns the tag for :func:`disconnect_gui`."""
    if getattr(gui, "isWidgetType", lambda: False)():
        import qt

        widgets = gui.findChildren(qt.QWidget)
    else:
        widgets = list(vars(gui).values())
    named = {w.property(PARAMETER_PROPERTY): w for w in widgets if w.property(PARAMETER_PROPERTY)}
    for name in named:
        if name not in wrapper.allParameters:
            raise ValueError(f"Cannot find a param with the given name: {name}")
    connectors = {name: create_connector(widget, wrapper.allParameters[name].datatype) for name, widget in named.items()}
    tag = wrapper.nextGuiTag()
    for name, connector in connectors.items():
        connector.write(getattr(wrapper, name))
        connector.callback = _gui_to_parameter(wrapper, name, connector)
        if connector.signal:
            getattr(connector.widget, connector.signal).connect(connector.callback)
    wrapper.guis[tag] = connectors
    return tag


def _gui_to_parameter(wrapper, name: str, connector: Connector):
    def callback(*args) -> None:
        if not wrapper.updatingGui:
            setattr(wrapper, name, connector.read())

    return callback


def update_gui(wrapper) -> None:
    """The parameter node changed: every bound widget shows its parameter's value (as ``_updateGUIFromParameterNode``)."""
    if wrapper.updatingGui:
        return
    wrapper.updatingGui = True
    try:
        for connectors in wrapper.guis.values():
            for name, connector in connectors.items():
                connector.write(getattr(wrapper, name))
    finally:
        wrapper.updatingGui = False


def disconnect_gui(wrapper, tag) -> None:
    for connector in wrapper.guis.pop(tag, {}).values():
        if connector.signal:
            getattr(connector.widget, connector.signal).disconnect(connector.callback)
