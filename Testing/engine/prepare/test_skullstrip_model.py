"""The skull-strip network's loader (deepbet): only the reviewed bytes, and only pickles naming torch's own objects.

The refusals are tested on stand-in files (wrong bytes; a pickle that would run code), so no real weights are needed
for them; deepbet's own installed files (a requirement: requirements-nodeps.txt) must pass both guards and load.
The one real deepbet inference of the suite runs end to end in test_prepare_pipeline.py.
"""

from __future__ import annotations

import base64
import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from medsynth_engine.errors import MedSynthError
from medsynth_engine.prepare import skullstrip
from medsynth_engine.prepare.skullstrip import DEEPBET_SHA256, check_torchscript, deepbet_available, deepbet_mask


def _record_digest(path: Path) -> str:
    """SHA-256 as a wheel's RECORD writes it (urlsafe base64, no padding)."""
    return base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


@pytest.fixture
def no_jit_load(monkeypatch):
    """torch.jit.load must not be reached: a refused file is never opened by torch."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.jit.load was called on a file that should have been refused")

    monkeypatch.setattr(torch.jit, "load", refuse)


def _installed_as_deepbet(monkeypatch, path: Path, trust: bool) -> None:
    """Make ``path`` deepbet's both weight files; ``trust`` records its own digest as the reviewed one."""
    monkeypatch.setattr(skullstrip, "_deepbet_files", lambda: {name: path for name in DEEPBET_SHA256})
    if trust:
        monkeypatch.setattr(skullstrip, "DEEPBET_SHA256", {name: _record_digest(path) for name in DEEPBET_SHA256})


def test_weights_other_than_the_reviewed_ones_are_refused_unopened(tmp_path, monkeypatch, no_jit_load):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights from somewhere else")
    _installed_as_deepbet(monkeypatch, weights, trust=False)
    with pytest.raises(MedSynthError, match="does not match the deepbet 1.0.2 weights"):
        deepbet_mask(np.zeros((8, 8, 8), np.float32), np.eye(4))


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("protocol", [2, 4])  # GLOBAL opcode, and STACK_GLOBAL with memoised strings
def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path, monkeypatch, no_jit_load, protocol):
    marker = tmp_path / "ran"
    archive = tmp_path / "model.pt"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("model/data.pkl", pickle.dumps(_RunsCode(marker), protocol=protocol))
    _installed_as_deepbet(monkeypatch, archive, trust=True)  # even bytes that pass the hash are read, not run
    with pytest.raises(MedSynthError, match=r"model.pt is not plain TorchScript weights \(model/data.pkl names (__builtin__|builtins).exec\)"):
        deepbet_mask(np.zeros((8, 8, 8), np.float32), np.eye(4))
    assert not marker.exists()


def test_a_pickle_naming_objects_at_run_time_is_refused(tmp_path):
    # STACK_GLOBAL whose module and name come from the memo, not from literal strings just before it.
    text = pickle.SHORT_BINUNICODE + b"\x08builtins" + pickle.MEMOIZE + pickle.SHORT_BINUNICODE + b"\x04exec" + pickle.MEMOIZE
    evil = pickle.PROTO + b"\x04" + text + pickle.POP + pickle.POP + pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01" + pickle.STACK_GLOBAL + pickle.STOP
    archive = tmp_path / "model.pt"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("model/data.pkl", evil)
    with pytest.raises(MedSynthError, match="builds an object's name at run time"):
        check_torchscript(archive)


def test_real_torchscript_passes_and_loads(tmp_path):
    net = torch.jit.script(torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3), torch.nn.InstanceNorm3d(2), torch.nn.ReLU()))
    path = tmp_path / "net.pt"
    net.save(str(path))
    loaded = torch.jit.load(str(check_torchscript(path)))
    x = torch.rand(1, 1, 6, 6, 6)
    assert torch.equal(loaded(x), net(x))
    with pytest.raises(MedSynthError, match="not a TorchScript archive"):
        check_torchscript(tmp_path / "missing.pt")


def test_the_installed_deepbet_weights_pass_both_guards_and_load():
    assert deepbet_available(), "deepbet is a requirement (requirements-nodeps.txt): run make setup"
    files = skullstrip._deepbet_files()
    for name, expected in DEEPBET_SHA256.items():
        model = torch.jit.load(str(check_torchscript(skullstrip._checked(files[name], expected))), map_location="cpu")
        assert sum(p.numel() for p in model.parameters()) > 100_000


@pytest.mark.parametrize("axcodes", ["LPS", "PIR", "SLA", "RAS"])  # axial DICOM, sagittal, another, canonical
def test_the_network_sees_ras_order_and_the_mask_comes_back_in_the_input_order(monkeypatch, axcodes):
    """deepbet was trained on closest-canonical volumes: a native grid is reoriented for it, and its mask back."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

    ras = np.zeros((6, 7, 8), np.float32)
    ras[4:, 5:, 6:] = 1.0  # a block in the right-anterior-superior corner
    ras[0, 0, 0] = 2.0  # and one voxel at the left-posterior-inferior one
    to_native = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(axcodes))
    native = apply_orientation(ras, to_native)
    affine = inv_ornt_aff(to_native, ras.shape)  # native voxel -> RAS mm (nibabel: canonical affine @ this)
    seen = []

    def network(array: np.ndarray, device: str) -> np.ndarray:
        seen.append(array)
        return array == 1.0

    monkeypatch.setattr(skullstrip, "_deepbet_canonical", network)
    mask = deepbet_mask(native, affine)
    assert np.array_equal(seen[0], ras)
    assert mask.dtype == bool and np.array_equal(mask, native == 1.0)


def test_model_without_deepbet_is_one_sentence_and_exit_2(tmp_path, monkeypatch, capsys):
    """Where deepbet is missing (an environment not set up by make setup), --skull-strip model says what to install."""
    from medsynth_engine.cli import main
    from medsynth_engine.prepare import pipeline

    monkeypatch.setattr(pipeline, "deepbet_available", lambda: False)
    (tmp_path / "in").mkdir()
    assert main(["prepare", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--skull-strip", "model"]) == 2
    assert "--skull-strip model needs deepbet (pip install --no-deps deepbet==1.0.2); or use atlas." in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
