"""`make setup`'s torch build: the module the Makefile runs picks the CUDA build a (fake) nvidia-smi's driver runs,
the CPU build without a driver, and MEDSYNTH_TORCH overrides; a bad override is one sentence and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from MedSynthLib.enginesetup.torchbuild import TORCH_VERSION

REPO = Path(__file__).resolve().parents[2]


def pick(tmp_path: Path, smi: str | None, override: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m MedSynthLib.enginesetup.torchpick`` as make does, with ``smi`` as nvidia-smi's script (None: none)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if smi is not None:
        fake = bin_dir / "nvidia-smi"
        fake.write_text(f"#!/bin/sh\n{smi}\n")
        fake.chmod(0o755)
    env = {"PATH": str(bin_dir), "PYTHONPATH": str(REPO)}
    if override is not None:
        env["MEDSYNTH_TORCH"] = override
    return subprocess.run([sys.executable, "-m", "MedSynthLib.enginesetup.torchpick"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("smi", "override", "build"), [
    ("echo 550.54.14", None, "cu128"),
    ("echo 580.82.07; echo 580.82.07", None, "cu130"),  # two GPUs: one line each
    ("echo 470.256.02", None, "cpu"),  # a driver too old for this torch's CUDA builds
    (None, None, "cpu"),  # no NVIDIA driver
    ("echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'; exit 9", None, "cpu"),
    ("echo 580.82.07", "cpu", "cpu"),
    (None, "cu126", "cu126"),
    ("echo 550.54.14", "auto", "cu128"),
])
def test_the_driver_or_the_override_picks_the_build(tmp_path, smi, override, build):
    result = pick(tmp_path, smi, override)
    assert result.returncode == 0, result.stderr
    index = f"https://download.pytorch.org/whl/{build}"
    assert result.stdout.split() == [f"torch=={TORCH_VERSION}+{build}", "--no-deps", "--index-url", index]
    assert result.stderr.startswith("medsynth setup: torch ") and result.stderr.count("\n") == 1


def test_a_bad_override_is_one_sentence_and_exit_2(tmp_path):
    result = pick(tmp_path, "echo 550.54.14", "cu999")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "medsynth setup: error: MEDSYNTH_TORCH=cu999 is not a torch build; use auto or one of: cpu, cu130, cu128, cu126.\n"


def test_the_makefile_installs_torch_with_the_picked_arguments():
    makefile = (REPO / "Makefile").read_text()
    assert '$$($(PY) -m MedSynthLib.enginesetup.torchpick)" && $(PY) -m pip install --quiet $$torch_args' in makefile
    assert "-r requirements.txt" in makefile.split("torchpick", 1)[1]  # torch's dependencies come with the requirements
    assert "torch==" not in makefile  # the pin lives in torchbuild.TORCH_VERSION (and requirements.txt), not twice more
