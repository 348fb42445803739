"""The Slicer side (MedSynth/, MedSynthLib/) must run on Slicer 5.8's Python 3.9 as well as on 5.10's 3.12.

``make py39`` builds ``.venv-py39`` (Testing/requirements-py39.txt) from a Python 3.9 interpreter; the tests listed
in ``PY39_TESTS`` then run under it. ``MEDSYNTH_PY39`` names another 3.9 interpreter with those packages.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLICER_SIDE = [REPO / "MedSynth", REPO / "MedSynthLib"]
#: Torch-free tests that exercise the module's import, Slicer's test discovery and the library on 3.9.
PY39_TESTS = [
    "Testing/slicer/test_discovery.py", "Testing/lib/test_reader_study_session.py", "Testing/lib/test_credentials.py",
    "Testing/lib/test_jobschema.py", "Testing/lib/test_modelrows.py",
    "Testing/lib/test_enginesetup_torchbuild.py", "Testing/lib/test_enginesetup_errors.py", "Testing/lib/test_i18n.py",
    "Testing/lib/test_results_losslog.py", "Testing/lib/test_session_allow_dirs.py",
]


def _sources() -> list[Path]:
    return sorted(p for folder in SLICER_SIDE for p in folder.rglob("*.py"))


def test_every_slicer_side_file_postpones_annotations():
    """``X | None`` in an evaluated annotation raises TypeError on 3.9 when the class or function is defined."""
    missing = []
    for path in _sources():
        tree = ast.parse(path.read_text())
        has_code = any(not isinstance(node, ast.Expr) for node in tree.body)
        future = any(
            isinstance(node, ast.ImportFrom) and node.module == "__future__" and any(a.name == "annotations" for a in node.names)
            for node in tree.body
        )
        if has_code and not future:
            missing.append(str(path.relative_to(REPO)))
    assert not missing, f"add 'from __future__ import annotations' to {missing}"


def test_vermin_finds_nothing_newer_than_python39():
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    assert vermin, "vermin is missing: it is in requirements-dev.txt (make setup)"
    result = subprocess.run(
        [vermin, "--target=3.9-", "--violations", "--no-tips", "--no-parse-comments", *map(str, SLICER_SIDE)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _python39() -> str | None:
    candidates = [os.environ.get("MEDSYNTH_PY39", ""), str(REPO / ".venv-py39" / "bin" / "python")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.mark.slow
def test_module_import_discovery_and_library_tests_pass_under_python39():
    python = _python39()
    if python is None:
        pytest.skip("No Python 3.9 environment: run `make py39` (needs a python3.9, e.g. from pyenv).")
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert version.stdout.strip() == "(3, 9)", version.stdout + version.stderr
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    imports = subprocess.run(
        [python, "-c", "import pkgutil, importlib, MedSynthLib\n"
         "for m in pkgutil.iter_modules(MedSynthLib.__path__):\n"
         "    m.name == 'studio' or importlib.import_module('MedSynthLib.' + m.name)"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )
    assert imports.returncode == 0, imports.stderr
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PY39_TESTS],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
