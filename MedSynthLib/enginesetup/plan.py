"""What "Set up engine" will do, as plain command lines: a separate virtual environment, torch, the engine wheel.

The environment is a new venv under the user's Slicer settings folder, made from a Python 3.10-3.13 that is not
Slicer's own site-packages (the engine needs >= 3.10; Slicer 5.8's Python is 3.9). Into it go the chosen torch
build, the engine's pinned requirements, the packages pinned by hash and installed without their dependencies
(``requirements-nodeps.txt``: deepbet, whose wheel carries prepare's skull-strip weights) and the engine wheel that the
extension ships (``MedSynthEngine/`` beside
the module, put there by ``engine/CMakeLists.txt``). Nothing is installed into Slicer's Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .torchbuild import TORCH_VERSION, TorchBuild

__all__ = ["SetupError", "Step", "SetupPlan", "Wheelhouse", "find_wheelhouse", "find_base_python", "make_plan",
           "env_python", "default_env_dir", "MARKER", "WHEELHOUSE_DIR", "REQUIREMENTS_FILE",
           "NODEPS_FILE"]

WHEELHOUSE_DIR = "MedSynthEngine"  # beside MedSynth.py in the extension (qt-scripted-modules/MedSynthEngine)
REQUIREMENTS_FILE = "requirements-engine.txt"
NODEPS_FILE = "requirements-nodeps.txt"  # the source tree's own file, as make setup installs it
MARKER = "medsynth-setup.json"  # written last: its presence says the environment is complete
ENGINE_GB = 1.5  # the engine's requirements (MONAI, SimpleITK, scipy...) unpacked, besides torch
SUPPORTED = ((3, 10), (3, 13))


class SetupError(Exception):
    """A set-up problem, said in one sentence that names what to do."""


@dataclass(frozen=True)
class Step:
    """One command of the set-up; ``name`` is what a test or a partial run selects it by."""

    name: str
    title: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Wheelhouse:
    """What the extension ships for the engine: its wheel, the pinned requirements without torch, and the
    hash-pinned packages installed with ``--no-deps`` (their declared dependencies are not the engine's)."""

    folder: Path
    wheel: Path
    requirements: Path
    nodeps: Path


@dataclass(frozen=True)
class SetupPlan:
    env_dir: Path
    base_python: str
    torch: TorchBuild
    steps: tuple[Step, ...]
    required_gb: float
    pip_options: tuple[str, ...] = field(default=())

    @property
    def python(self) -> Path:
        """The interpreter the panel starts the engine with once set-up succeeded."""
        return env_python(self.env_dir)

    def describe(self) -> str:
        """The plan in words and commands, for the dialog (the user sees what will be downloaded)."""
        lines = [f"Environment: {self.env_dir} (from {self.base_python})", f"Torch: {self.torch.label}",
                 f"Disk space needed: about {self.required_gb:.1f} GB", ""]
        lines += [f"{i}. {s.title}\n   {' '.join(s.argv)}" for i, s in enumerate(self.steps, 1)]
        return "\n".join(lines)


def env_python(env_dir: Path) -> Path:
    return Path(env_dir) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_wheelhouse(module_dir: Path) -> Wheelhouse:
    """The engine wheel shipped beside the module (installed extension or build tree), or a sentence saying why not."""
    folder = Path(module_dir) / WHEELHOUSE_DIR
    wheels = sorted(folder.glob("medsynth-*.whl"))
    requirements, nodeps = folder / REQUIREMENTS_FILE, folder / NODEPS_FILE
    if not wheels or not requirements.is_file() or not nodeps.is_file():
        raise SetupError(f"The MedSynth engine wheel is missing from {folder}: reinstall the MedSynth extension, or in "
                         "a source checkout run 'make setup' and choose .venv/bin/python as the engine's Python.")
    return Wheelhouse(folder, wheels[-1], requirements, nodeps)


def _version(python: str, run=subprocess.run, env: dict[str, str] | None = None) -> tuple[int, int] | None:
    try:
        out = run([python, "-c", "import sys, venv; print('%d %d' % sys.version_info[:2])"], capture_output=True,
                  text=True, timeout=30, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split() if out.returncode == 0 else []
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 else None


def find_base_python(candidates: Iterable[str] = (), run=subprocess.run, env: dict[str, str] | None = None) -> str:
    """The first interpreter that has ``venv`` and a version the engine supports: ``candidates`` first (the user's
    choice, then Slicer's own interpreter), then python3.13 ... python3.10 and python3 on PATH."""
    names = list(candidates) + [f"python3.{minor}" for minor in range(SUPPORTED[1][1], SUPPORTED[0][1] - 1, -1)]
    names += ["python3", "python"] + (["py"] if os.name == "nt" else [])
    seen = []
    for name in names:
        path = name if os.path.isabs(name) else shutil.which(name)
        if not path or path in seen:
            continue
        seen.append(path)
        version = _version(path, run, env)
        if version is not None and SUPPORTED[0] <= version <= SUPPORTED[1]:
            return path
    raise SetupError("No Python 3.10 to 3.13 with venv was found (Slicer 5.8's own is 3.9): install Python 3.12 from "
                     "python.org and choose it as the base Python, or choose an existing engine environment.")


def _pip(python: Path, args: Sequence[str], options: Sequence[str]) -> tuple[str, ...]:
    return (str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *options, *args)


def make_plan(env_dir: Path, base_python: str, wheelhouse: Wheelhouse, torch: TorchBuild,
              pip_options: Sequence[str] = ()) -> SetupPlan:
    """The command lines of a set-up; ``pip_options`` (e.g. ``--no-index --find-links DIR``) go to every pip call."""
    env_dir = Path(env_dir)
    python = env_python(env_dir)
    torch_args = [f"torch=={TORCH_VERSION}"] + (["--index-url", torch.index_url] if torch.index_url else [])
    steps = (
        Step("venv", "Create the engine's own Python environment", (base_python, "-m", "venv", str(env_dir))),
        Step("torch", f"Download and install {torch.label}", _pip(python, torch_args, pip_options)),
        Step("requirements", "Download and install the engine's requirements (MONAI, SimpleITK, FastAPI...)",
             _pip(python, ["-r", str(wheelhouse.requirements)], pip_options)),
        # After the requirements, as in make setup; --no-deps keeps deepbet's GUI/CLI dependencies out, and the hash
        # pins the reviewed wheel whose weight files prepare checks. Without it prepare's auto skull strip is atlas.
        Step("nodeps", "Download and install deepbet's skull-strip weights (hash-pinned, without its dependencies)",
             _pip(python, ["--no-deps", "--require-hashes", "-r", str(wheelhouse.nodeps)], pip_options)),
        Step("engine", "Install the MedSynth engine shipped with the extension (no download)",
             _pip(python, ["--no-deps", str(wheelhouse.wheel)], pip_options)),
        Step("check", "Check that the engine imports",
             (str(python), "-c", "import medsynth_engine as e; print('medsynth', e.__version__, 'from', e.__file__)")),
    )
    return SetupPlan(env_dir, base_python, torch, steps, torch.download_gb + ENGINE_GB, tuple(pip_options))


def default_env_dir(settings_file: str) -> Path:
    """``<Slicer settings folder>/MedSynth/engine-env``: a place Slicer's user owns, outside Slicer's install."""
    return Path(settings_file).parent / "MedSynth" / "engine-env"

