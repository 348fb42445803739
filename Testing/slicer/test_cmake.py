"""The extension's CMake files, configured by cmake itself against a stand-in Slicer package (``fakeslicer.py``)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import fakeslicer
import pytest

from MedSynthLib.slicermodule import CATEGORY

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def configure(tmp_path_factory):
    return fakeslicer.configure(tmp_path_factory.mktemp("fake-slicer"), tmp_path_factory.mktemp("build"))


def test_extension_configures(configure):
    assert configure.returncode == 0, configure.stdout + configure.stderr
    out = configure.stdout
    assert "CHECK cpack" in out and "CHECK unittest MedSynth.py" in out
    for var in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert f"CHECK EXTENSION_{var}=" in out
    # the modules are listed under the extension's category (MedSynthLib.slicermodule sets both modules' category)
    assert f"CHECK EXTENSION_CATEGORY={CATEGORY}\n" in out


def test_module_and_library_ship_side_by_side(configure):
    out = configure.stdout
    assert re.search(r"CHECK module MedSynth into '.*qt-scripted-modules/': MedSynth\.py \| .*MedSynth\.ui", out)
    assert re.search(r"CHECK module MedSynthReaderStudy into '.*qt-scripted-modules/': MedSynthReaderStudy\.py \| "
                     r".*MedSynthReaderStudy\.ui", out)
    assert "CHECK unittest MedSynthReaderStudy.py" in out
    lib = re.search(r"CHECK module MedSynthLib into '.*qt-scripted-modules/MedSynthLib': (.*) \|", out)
    assert lib, out
    shipped = set(lib.group(1).split(";"))
    # Every torch-free module of the library ships; the PyQt5 studio does not.
    expected = {p.relative_to(REPO / "MedSynthLib").as_posix() for p in _shipped_sources()}
    assert shipped == expected and "scene/cases.py" in shipped


def test_shipped_library_imports_nothing_heavy():
    """What ships into Slicer must run on Slicer's Python: standard library, numpy, SimpleITK, and Slicer itself (VTK,
    its qt only where Slicer alone calls it, e.g. the set-up dialog's opener)."""
    allowed = set(sys.stdlib_module_names) | {"numpy", "SimpleITK", "slicer", "vtk", "vtkmodules", "qt"}
    for path in _shipped_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def _shipped_sources() -> list[Path]:
    return [p for p in (REPO / "MedSynthLib").rglob("*.py") if "studio" not in p.relative_to(REPO / "MedSynthLib").parts]
