"""``medsynth-studio --open CASE --screenshot FILE`` in a real window under Xvfb: the views show the case and labels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

STUDIO = Path(sys.executable).parent / "medsynth-studio"  # the console script pyproject.toml declares


def run_studio(display: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    return subprocess.run([str(STUDIO), *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def case_dir(make_phantom_set):
    set_dir = make_phantom_set(n=1, shape=(32, 32, 32), spacing=6.0)
    return next(p for p in set_dir.iterdir() if p.is_dir())


def test_screenshot_shows_the_case_with_its_label_overlay(xvfb_display, case_dir, tmp_path):
    shot = tmp_path / "studio.png"
    result = run_studio(xvfb_display, "--open", str(case_dir), "--screenshot", str(shot), "--size", "1200x700")
    assert result.returncode == 0, result.stderr
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape == (700, 1200, 3)
    views = pixels[70:330, 420:]  # the axial and coronal views (right of the panel, above the legend)
    red, green, blue = views[..., 0], views[..., 1], views[..., 2]
    grey = (abs(red - green) < 6) & (abs(green - blue) < 6) & (red > 60) & (red < 225)  # Qt's own grey is ~239
    assert grey.mean() > 0.03, "no brain tissue rendered (VTK views black?)"
    # The overlay blends each BraTS colour with the image: look for clearly yellow (ED) and green-dominant (NCR) pixels.
    yellowish = (red > 150) & (green > 120) & (blue < 0.6 * green)
    greenish = (green > red + 40) & (green > blue + 40)
    assert yellowish.sum() > 200 and greenish.sum() > 30, "label overlay missing"


def test_bad_case_folder_is_one_sentence_and_exit_code_2(xvfb_display, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_studio(xvfb_display, "--open", str(empty), "--screenshot", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "holds no <case>_<channel>.nii.gz files" in result.stderr
    assert not (tmp_path / "x.png").exists()
    result = run_studio(xvfb_display, "--screenshot", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "--screenshot needs --open" in result.stderr
