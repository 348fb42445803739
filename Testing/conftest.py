"""Shared fixtures: small phantom sets made in-process (no downloads), and one engine process, for the whole session."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Under xdist with a worker per core (make test: 2 on CI's 2 cores), one math thread per process: torch's default of
# a thread per core makes every worker, and every engine or CLI process a test starts, run 2+ OpenMP threads on 2
# cores, and OpenMP threads spin waiting for each other on a contended CPU (a stylegan2d fine-tune measured 37 s of
# CPU with two threads against 3.6 s with one). Set before torch is imported; subprocesses inherit it.
if os.environ.get("PYTEST_XDIST_WORKER") and int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) >= (os.cpu_count() or 1):
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")
REPO = Path(__file__).resolve().parents[1]
# slicer-core's ``slicer`` package imports every module of every folder named slicer on sys.path, and this folder is
# on it, so Testing/slicer's modules load as ``slicer.<name>`` whenever any test imports slicer; their own imports
# (``import harness``) need that folder on sys.path too, else ``import slicer`` fails and the MRML tests skip.
sys.path.append(str(REPO / "Testing" / "slicer"))
MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"
ENGINE_BIN = Path(sys.executable).parent / "medsynth-engine"


@pytest.fixture(scope="session")
def registry():
    from medsynth_engine.registry import default_registry

    return default_registry()


@pytest.fixture(scope="session")
def make_phantom_set(tmp_path_factory, registry):
    """Factory: ``make_phantom_set(n=4, shape=(24, 24, 24), spacing=6.0, channels=..., layout="brats", seed=0)``.

    Returns the path of a complete set written by the real generate pipeline; identical requests share one set.
    Treat the returned folder as read-only (copy it before changing anything).
    """
    from medsynth_engine.generate import GenerateRequest, generate_set

    cache: dict[tuple, Path] = {}

    def make(
        n: int = 4,
        shape: tuple[int, int, int] = (24, 24, 24),
        spacing: float = 6.0,
        channels: str = "t1,t1ce,t2,flair,seg",
        layout: str = "brats",
        seed: int = 0,
        tumour: bool = True,
    ) -> Path:
        key = (n, tuple(shape), spacing, channels, layout, seed, tumour)
        if key not in cache:
            out = tmp_path_factory.mktemp("phantom-set") / "set"
            request = GenerateRequest(
                model="phantom",
                n=n,
                seed=seed,
                out=out,
                channels=channels,
                layout=layout,
                shape=tuple(shape),
                spacing=(spacing,) * 3,
                tumour=tumour,
                device="cpu",
            )
            cache[key] = generate_set(request, registry)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def allowed_root(tmp_path_factory) -> Path:
    """Every folder the tests make lies under pytest's base temp folder; the shared engine may use it."""
    return tmp_path_factory.getbasetemp().resolve()


@pytest.fixture(scope="session")
def engine(tmp_path_factory, allowed_root):
    """One real engine for every suite that submits jobs (service, client); tests that kill or restart an
    engine, or test starting one, start their own."""
    from engine_process import start_engine, stop_engine

    process = start_engine(tmp_path_factory.mktemp("engine-state"), allowed_root)
    yield process
    stop_engine(process)


@pytest.fixture(scope="session")
def client(engine):
    return engine.client(timeout=60)


@contextmanager
def locked_folder(path: Path):
    """A folder nobody may write into: mode 0500; root ignores modes, so for root also the immutable attribute.

    Where the file system refuses ``chattr`` (root on overlayfs), the permission case cannot be staged: skipped.
    """
    path.mkdir()
    path.chmod(0o500)
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        path.chmod(0o700)
        pytest.skip("running as root on a file system without chattr +i: cannot make a read-only folder")
    try:
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o700)


@pytest.fixture(scope="session")
def read_only_folder():
    """``with read_only_folder(path) as folder:`` makes ``path`` a folder nobody may write into."""
    return locked_folder


@pytest.fixture(autouse=True)
def _seeded_global_generators():
    """Every test starts from the same global random state, so a draw that fails fails every time, not one CI run
    in many (an unseeded float32 draw once failed CI at a tolerance its siblings met). Tests that mean to vary a
    seed pass their own generators. torch is seeded only where the test already imported it (layer tests check
    that some modules never import it)."""
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(0)
    yield
