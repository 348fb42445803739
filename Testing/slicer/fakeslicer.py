"""A stand-in Slicer package for configuring, building and installing the extension with cmake itself.

No Slicer build tree exists here, so ``find_package(Slicer)`` finds a small SlicerConfig.cmake written here. Its
``slicerMacroBuildScriptedModule`` parses arguments with the same keywords and performs the same sanity checks as
Slicer's ``CMake/SlicerMacroBuildScriptedModule.cmake`` (unknown keywords, NAME mandatory, every SCRIPTS/RESOURCES
entry must exist), and its extension-config step requires the metadata Slicer's extension index reads. The install
directory variable is the one Slicer's ``UseSlicer.cmake`` sets for an extension (``Slicer_INSTALL_ROOT`` is empty
there, so it equals the build-tree path).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: where an extension's scripted modules go in the install tree (Slicer_QTSCRIPTEDMODULES_LIB_DIR below)
SCRIPTED_MODULES = "lib/Slicer-5.10/qt-scripted-modules"

FAKE_CONFIG = r"""
set(Slicer_FOUND TRUE)
set(Slicer_USE_PYTHONQT ON)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer-5.10/qt-scripted-modules)
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR ${Slicer_QTSCRIPTEDMODULES_LIB_DIR})
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


def configure(fake: Path, build: Path) -> subprocess.CompletedProcess:
    """Write the stand-in into ``fake`` and configure the extension into ``build`` (the engine wheel is built with
    this interpreter, which has pip and setuptools)."""
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("cmake is not installed; install it (apt-get install cmake) -- .ci/run does this.")
    (fake / "SlicerConfig.cmake").write_text(FAKE_CONFIG)
    (fake / "UseSlicer.cmake").write_text("set(BUILD_TESTING ON)\n")
    (fake / "GenerateConfig.cmake").write_text(GENERATE_CONFIG)
    (fake / "CPack.cmake").write_text('message(STATUS "CHECK cpack")\n')
    return subprocess.run([cmake, "-S", str(REPO), "-B", str(build), f"-DSlicer_DIR={fake}",
                           f"-DMedSynth_WHEEL_PYTHON={sys.executable}"], capture_output=True, text=True, timeout=120)
