"""Every text the panel shows is marked for translation, and ``_`` translates inside Slicer only.

The marker check reads the source (AST): a string literal with words in it may reach a label, a tool tip, a status
line, a disable reason or an error shown by the panel only through ``_()``, so a new untranslated text fails here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

from MedSynthLib import controller as controller_module
from MedSynthLib.i18n import _

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "MedSynth").glob("*.py")) + sorted(
    p for p in (ROOT / "MedSynthLib").rglob("*.py") if "studio" not in p.parts)
#: Qt setters (PyQt5 style) and properties (PythonQt style) that put a text on screen.
SETTERS = {"setText", "setToolTip", "setTitle", "setWindowTitle", "setPlainText", "appendPlainText",
           "setPlaceholderText", "setStatusTip", "showMessage", "getOpenFileName", "SetTitle", "SetXAxisTitle",
           "SetYAxisTitle",
           "getExistingDirectory"}
PROPERTIES = {"text", "toolTip", "title", "windowTitle", "plainText", "placeholderText", "statusTip"}
#: What the controller shows: the view's status lines, the error line, the lost-engine line, disable reasons.
SHOWN_NAMES = {"engine_status", "job_status", "error", "lost", "not_connected", "running", "where"}
#: Files whose raised errors are all shown as they are (the panel's error line, the set-up dialog's status).
ERRORS_SHOWN = {"controller.py", "dialog.py", "panellogic.py", "MedSynth.py"}


def _bare_literals(node: ast.AST) -> list[ast.AST]:
    """String literals with a word in them under ``node`` that are not inside a ``_(...)`` call."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_":
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node] if any(c.isalpha() for c in node.value) else []
    if isinstance(node, ast.JoinedStr):
        parts = [v for v in node.values if isinstance(v, ast.Constant)]
        return [node] if any(any(c.isalpha() for c in str(v.value)) for v in parts) else []
    if isinstance(node, ast.Call):  # a call's arguments are keys and names; only a string method's receiver is text
        text_method = isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join", "capitalize")
        return _bare_literals(node.func.value) if text_method else []
    if isinstance(node, ast.Subscript):  # reasons["export"]: the key is not shown
        return _bare_literals(node.value)
    if isinstance(node, ast.Compare):
        return []
    found = []
    for child in ast.iter_child_nodes(node):
        found += _bare_literals(child)
    return found


def _shown_name(target: ast.AST) -> bool:
    """Whether assigning to ``target`` shows the value: a Qt text property, a status line, a disable reason."""
    while isinstance(target, ast.Subscript):
        target = target.value
    name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
    return name in PROPERTIES or name in SHOWN_NAMES or name == "reasons"


def _shown_values(tree: ast.AST, file_name: str):
    """Every expression whose value the user sees, with its line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SETTERS:
            yield from node.args
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_lose":
            yield from node.args
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                pairs = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):  # a, b = x, y
                    pairs = [(t, node.value.elts[i]) for i, t in enumerate(target.elts)]
                yield from (value for target, value in pairs if _shown_name(target))
        elif isinstance(node, ast.FunctionDef) and node.name.endswith("_reason"):
            yield from (n.value for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None)
        elif isinstance(node, ast.Raise) and file_name in ERRORS_SHOWN and isinstance(node.exc, ast.Call):
            yield from node.exc.args


def test_every_shown_text_is_marked_for_translation():
    unmarked = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for value in _shown_values(tree, path.name):
            unmarked += [f"{path.relative_to(ROOT)}:{n.lineno}: {ast.unparse(n)[:70]}" for n in _bare_literals(value)]
    assert not unmarked, "wrap these in _() (MedSynthLib.i18n):\n" + "\n".join(unmarked)


def test_marked_texts_are_constant_so_lupdate_and_the_catalogue_find_them():
    dynamic = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_":
                if not (len(node.args) == 1 and isinstance(node.args[0], ast.Constant)):
                    dynamic.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:70]}")
    known = {"MedSynth/MedSynth.py"}  # _(PRIVACY_NOTES): a constant kept in MedSynthLib.slicermodule
    assert all(entry.split(":")[0] in known for entry in dynamic), dynamic


def test_the_checker_flags_an_unmarked_text():
    tree = ast.parse('label.setText("Engine ready.")\nself.error = f"The {kind} job failed."\nx.text = _("Fine.")')
    found = sorted(type(n).__name__ for v in _shown_values(tree, "x.py") for n in _bare_literals(v))
    assert found == ["Constant", "JoinedStr"]


@pytest.fixture
def slicer_i18n(monkeypatch):
    """Slicer's ``slicer.i18n`` with a catalogue: each translation says which context it was asked in."""
    asked: list[tuple[str, str]] = []
    module = types.ModuleType("slicer.i18n")

    def translate(context: str, text: str) -> str:
        asked.append((context, text))
        return "{kind} ist beschäftigt" if "{kind}" in text else f"[{context}] {text}"

    module.translate = translate
    monkeypatch.setitem(sys.modules, "slicer.i18n", module)
    return asked


def test_inside_slicer_texts_are_translated_in_the_calling_files_context(slicer_i18n):
    view = controller_module.PanelController().view()
    assert view.engine_status == "[MedSynthLib.controller] Engine not running."
    assert ("MedSynthLib.controller", "No job is running.") in slicer_i18n
    assert _("{count} cases").startswith("[test_i18n]")  # a file outside a package: its own name
    assert _("A {kind} job is running") == "{kind} ist beschäftigt"


def test_a_translation_that_lost_a_placeholder_falls_back_to_the_text(monkeypatch, slicer_i18n):
    monkeypatch.setattr(sys.modules["slicer.i18n"], "translate", lambda context, text: "Fehler")
    assert _("The {kind} job failed.").format(kind="export") == "The export job failed."


def test_outside_slicer_texts_pass_through_and_slicer_is_never_imported():
    code = ("import sys; import MedSynthLib.controller as c, MedSynthLib.enginesetup.dialog, MedSynthLib.panellogic; "
            "assert 'slicer' not in sys.modules, 'slicer imported'; print(c.PanelController().view().engine_status)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "Engine not running.", done.stderr
