"""The extension's CMake files, configured by cmake itself against a stand-in Slicer package.

No Slicer build tree exists here, so ``find_package(Slicer)`` finds a small SlicerConfig.cmake written by this test.
Its ``slicerMacroBuildScriptedModule`` parses arguments with the same keywords and performs the same sanity checks as
Slicer's ``CMake/SlicerMacroBuildScriptedModule.cmake`` (unknown keywords, NAME mandatory, every SCRIPTS/RESOURCES
entry must exist), and its extension-config step requires the metadata Slicer's extension index reads.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FAKE_CONFIG = r"""
set(Slicer_FOUND TRUE)
set(Slicer_USE_PYTHONQT ON)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer-5.10/qt-scripted-modules)
set(Slicer_USE_FILE ${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake)
set(Slicer_EXTENSION_GENERATE_CONFIG ${CMAKE_CURRENT_LIST_DIR}/GenerateConfig.cmake)
set(Slicer_EXTENSION_CPACK ${CMAKE_CURRENT_LIST_DIR}/CPack.cmake)
macro(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(MY_SLICER "WITH_GENERIC_TESTS;WITH_SUBDIR;VERBOSE" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  if(MY_SLICER_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "Unknown keywords given to slicerMacroBuildScriptedModule(): ${MY_SLICER_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT DEFINED MY_SLICER_NAME)
    message(FATAL_ERROR "NAME is mandatory")
  endif()
  foreach(var SCRIPTS RESOURCES)
    foreach(value ${MY_SLICER_${var}})
      if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${value} AND NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${value}.py)
        message(FATAL_ERROR "slicerMacroBuildScriptedModule(${var}) given nonexistent file or directory '${value}'")
      endif()
    endforeach()
  endforeach()
  set(_subdir "")
  if(MY_SLICER_WITH_SUBDIR)
    get_filename_component(_subdir ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  endif()
  message(STATUS "CHECK module ${MY_SLICER_NAME} into '${Slicer_QTSCRIPTEDMODULES_LIB_DIR}/${_subdir}': ${MY_SLICER_SCRIPTS} | ${MY_SLICER_RESOURCES}")
endmacro()
function(slicer_add_python_unittest)
  cmake_parse_arguments(MY "" "SCRIPT" "" ${ARGN})
  if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${MY_SCRIPT})
    message(FATAL_ERROR "slicer_add_python_unittest: no ${MY_SCRIPT}")
  endif()
  message(STATUS "CHECK unittest ${MY_SCRIPT}")
endfunction()
"""
GENERATE_CONFIG = r"""
foreach(var HOMEPAGE CATEGORY CONTRIBUTORS DESCRIPTION ICONURL SCREENSHOTURLS DEPENDS)
  if("${EXTENSION_${var}}" STREQUAL "")
    message(FATAL_ERROR "EXTENSION_${var} is not set")
  endif()
  message(STATUS "CHECK EXTENSION_${var}=${EXTENSION_${var}}")
endforeach()
"""


@pytest.fixture(scope="module")
def configure(tmp_path_factory):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("cmake is not installed; install it (apt-get install cmake) -- .ci/run does this.")
    fake = tmp_path_factory.mktemp("fake-slicer")
    (fake / "SlicerConfig.cmake").write_text(FAKE_CONFIG)
    (fake / "UseSlicer.cmake").write_text("set(BUILD_TESTING ON)\n")
    (fake / "GenerateConfig.cmake").write_text(GENERATE_CONFIG)
    (fake / "CPack.cmake").write_text('message(STATUS "CHECK cpack")\n')
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run([cmake, "-S", str(REPO), "-B", str(build), f"-DSlicer_DIR={fake}"], capture_output=True,
                            text=True, timeout=120)
    return result


def test_extension_configures(configure):
    assert configure.returncode == 0, configure.stdout + configure.stderr
    out = configure.stdout
    assert "CHECK cpack" in out and "CHECK unittest MedSynth.py" in out
    for var in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert f"CHECK EXTENSION_{var}=" in out


def test_module_and_library_ship_side_by_side(configure):
    out = configure.stdout
    assert re.search(r"CHECK module MedSynth into '.*qt-scripted-modules/': MedSynth\.py \| .*MedSynth\.ui", out)
    lib = re.search(r"CHECK module MedSynthLib into '.*qt-scripted-modules/MedSynthLib': (.*) \|", out)
    assert lib, out
    shipped = set(lib.group(1).split(";"))
    # Every torch-free module of the library ships; the PyQt5 studio does not.
    expected = {p.relative_to(REPO / "MedSynthLib").as_posix() for p in _shipped_sources()}
    assert shipped == expected and "scene/cases.py" in shipped


def test_shipped_library_imports_nothing_heavy():
    """What ships into Slicer must run on Slicer's Python: standard library, numpy, and Slicer itself."""
    allowed = set(sys.stdlib_module_names) | {"numpy", "slicer", "vtk"}
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
