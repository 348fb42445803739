"""Proof of the plugin contract: a model family installed as its own distribution (dist-info with an entry point,
outside the source tree) shows up everywhere without touching any MedSynth file, with its own training option."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

EXAMPLE = Path(__file__).resolve().parent / "example_family" / "wobble_family"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder laid out as an installed distribution: the package plus ``wobble_family-1.0.dist-info``."""
    root = tmp_path_factory.mktemp("site-packages")
    shutil.copytree(EXAMPLE, root / "wobble_family")
    dist = root / "wobble_family-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wobble-family\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[medsynth.models]\nwobble = wobble_family:FAMILY\n")
    return root


@pytest.fixture(scope="module")
def env(site) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Three T1-only cases with brain levels 90, 100 and 110."""
    root = tmp_path_factory.mktemp("wobble-data")
    for i, level in enumerate((90, 100, 110)):
        case = root / f"case{i}"
        case.mkdir()
        volume = np.zeros((8, 8, 8), np.int16)
        volume[2:6, 2:6, 2:6] = level
        nib.save(nib.Nifti1Image(volume, np.diag([4.0, 4.0, 4.0, 1.0])), case / f"case{i}_t1.nii.gz")
    return root


def medsynth(env, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "import sys; from medsynth_engine.cli import main; sys.exit(main())", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_the_family_is_listed_with_its_model_and_capabilities(env):
    result = medsynth(env, "models", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["wobble-constant"]["family"] == "wobble" and rows["wobble-constant"]["weights"] == "plugin wobble-family 1.0"
    assert rows["wobble-constant"]["capabilities"]["dims"] == 3
    table = medsynth(env, "models").stdout
    assert "wobble-constant" in table and "wobble" in table.split("Families")[1]


def test_its_training_option_is_a_finetune_flag(env):
    result = medsynth(env, "finetune", "--help")
    assert result.returncode == 0 and "--wobble WOBBLE" in result.stdout and "wobble: how far the level wobbles" in result.stdout


def test_it_generates_and_trains_one_step_with_its_own_option(env, data, tmp_path):
    made = medsynth(env, "generate", "--model", "wobble-constant", "-n", "2", "--channels", "t1", "--shape", "8", "--spacing", "4",
                    "--no-tumour", "--out", str(tmp_path / "set"), "--quiet")
    assert made.returncode == 0, made.stderr
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert manifest["model"]["id"] == "wobble-constant" and len(manifest["cases"]) == 2
    trained = medsynth(env, "finetune", "--model", "wobble", "--data", str(data), "--out", str(tmp_path / "model"), "--wobble", "0", "--quiet")
    assert trained.returncode == 0, trained.stderr
    card = json.loads((tmp_path / "model" / "model.json").read_text())
    assert card["architecture"] == {"name": "wobble", "wobble": 0.0}
    assert (tmp_path / "model" / "loss.jsonl").read_text().count("\n") == 1
    again = medsynth(env, "generate", "--model", str(tmp_path / "model"), "-n", "1", "--channels", "t1", "--shape", "8",
                     "--spacing", "4", "--no-tumour", "--out", str(tmp_path / "set2"), "--quiet")
    assert again.returncode == 0, again.stderr
    case = json.loads((tmp_path / "set2" / "manifest.json").read_text())["cases"][0]
    volume = nib.load(tmp_path / "set2" / case["files"]["t1"]).get_fdata()
    assert np.all(volume == 100)  # the mean of 90, 100, 110 learned in one step, no wobble
    refused = medsynth(env, "finetune", "--model", "wobble", "--data", str(data), "--out", str(tmp_path / "m2"), "--wobble", "500")
    assert refused.returncode == 2 and "--wobble must be 0 to 100, not 500.0" in refused.stderr


def test_the_engine_and_the_panel_offer_it_and_its_finetune_job_takes_the_option(env, data, tmp_path):
    from MedSynthLib.controller import PanelController

    controller = PanelController()
    state = tmp_path / "state"
    controller.start_engine(sys.executable, str(state), device="cpu", env=env)  # the engine's environment has the family
    try:
        client = controller._client()
        rows = {row["id"]: row for row in client.models()}
        assert rows["wobble-constant"]["family"] == "wobble"
        assert "wobble-constant" in controller.generators()
        finetune = client._json("GET", "/job-kinds")["kinds"]["finetune"]["params_schema"]
        wobble = finetune["properties"]["wobble"]
        number = next(part for part in wobble.get("anyOf", [wobble]) if part.get("type") == "number")
        assert number["maximum"] == 100.0 and "wobble: how far" in wobble["description"]
        inputs = state / "inputs"
        shutil.copytree(data, inputs)  # the state folder is one the engine may read
        job = client.submit("finetune", {"model": "wobble", "data": str(inputs), "wobble": 0.0})
        done = client.wait(job["id"], timeout=120)
        assert done["state"] == "succeeded", done
        card = json.loads((Path(done["result"]["output_dir"]) / "model.json").read_text())
        assert card["architecture"]["wobble"] == 0.0
    finally:
        controller.stop_engine(force=True)
