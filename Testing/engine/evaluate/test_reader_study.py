"""`medsynth reader-study`: a blinded, shuffled, balanced set on one grid with neutral headers; the key kept apart."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.cli import main

from MedSynthLib.reader_study import ReaderSession, score

GRID = {"shape": (24, 24, 24), "spacing": 10.0}


@pytest.fixture(scope="module")
def study(make_phantom_set, tmp_path_factory):
    synthetic = make_phantom_set(n=4, seed=1, **GRID)
    # The real set on another grid, so the study must bring both onto one (the synthetic set's).
    real = make_phantom_set(n=4, seed=0, shape=(20, 20, 20), spacing=10.0)
    root = tmp_path_factory.mktemp("reader")
    args = ["reader-study", "--real", str(real), "--synthetic", str(synthetic), "-n", "5", "--out", str(root / "study"), "--seed", "3"]
    assert main(args) == 0
    return root, real, synthetic


def test_study_folder_holds_only_blinded_cases_and_the_key_is_beside_it(study):
    root, real, synthetic = study
    folder, key_path = root / "study", root / "study-answer-key.json"
    assert sorted(p.name for p in root.iterdir()) == ["study", "study-answer-key.json"]
    meta = json.loads((folder / "study.json").read_text())
    ids = [c["id"] for c in meta["cases"]]
    assert ids == [f"case-{i:03d}" for i in range(1, 6)]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*ids, "study.json"])
    key = json.loads(key_path.read_text())
    truths = [key["cases"][i]["truth"] for i in ids]
    assert sorted(truths).count("real") in (2, 3) and key["n_real"] + key["n_synthetic"] == 5
    sources = {c.name for c in real.iterdir() if c.is_dir()} | {c.name for c in synthetic.iterdir() if c.is_dir()}
    assert {key["cases"][i]["source_case"] for i in ids} <= sources
    everything = (folder / "study.json").read_text() + "".join(p.name for p in folder.rglob("*"))
    assert not any(s in everything for s in sources)
    assert all(set(c) == {"id", "files"} for c in meta["cases"])  # nothing about where a case came from


def test_every_case_has_the_same_grid_header_and_scale(study):
    folder = study[0] / "study"
    headers = []
    for path in sorted(folder.rglob("*.nii.gz")):
        image = nib.load(str(path))
        header = image.header
        assert header["descrip"].tobytes().strip(b"\x00") == b""
        assert image.shape == (24, 24, 24) and image.get_data_dtype() == np.int16
        data = np.asanyarray(image.dataobj)
        assert 0 <= data.min() and data.max() <= 1000
        headers.append((image.affine.tobytes(), header["pixdim"].tobytes(), int(header["datatype"])))
    assert len(headers) == 5 * 4 and len(set(headers)) == 1


def test_even_study_is_balanced_and_a_perfect_reader_scores_1(study, tmp_path):
    root, real, synthetic = study
    args = ["reader-study", "--real", str(real), "--synthetic", str(synthetic), "-n", "6", "--out", str(tmp_path / "s"), "--seed", "4"]
    assert main(args) == 0
    key = json.loads((tmp_path / "s-answer-key.json").read_text())
    assert [v["truth"] for v in key["cases"].values()].count("real") == 3
    session = ReaderSession(tmp_path / "s", "dr-a")
    while session.current is not None:
        session.record(key["cases"][session.current.id]["truth"], 4)
        assert all(path.is_file() for path in (session.current.files.values() if session.current else []))
    result = score(session, tmp_path / "s-answer-key.json")
    assert result["accuracy"] == 1.0 and result["answered"] == 6 and result["by_confidence"]["4"]["n"] == 6
    assert main(["reader-study", "--score", str(tmp_path / "s" / "responses-dr-a.json"), "--key", str(tmp_path / "s-answer-key.json")]) == 0


def _error(capsys, *args: str) -> str:
    assert main(["reader-study", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medsynth: error: ") and "\n" not in err
    return err


def test_bad_requests_are_one_sentence(study, tmp_path, capsys):
    root, real, synthetic = study
    base = ["--real", str(real), "--synthetic", str(synthetic)]
    err = _error(capsys, *base, "-n", "10", "--out", str(tmp_path / "a"))
    assert "set has 4 case(s); 10 study cases need 5 of them" in err and not (tmp_path / "a").exists() and not (tmp_path / "a-answer-key.json").exists()
    assert "at least 2" in _error(capsys, *base, "-n", "1", "--out", str(tmp_path / "a"))
    assert "inside the study folder" in _error(capsys, *base, "-n", "2", "--out", str(tmp_path / "a"), "--key", str(tmp_path / "a" / "k.json"))
    assert "exists already" in _error(capsys, *base, "-n", "2", "--out", str(root / "x"), "--key", str(root / "study-answer-key.json"))
    assert "needs --real" in _error(capsys, "--synthetic", str(synthetic), "-n", "2", "--out", str(tmp_path / "a"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "is empty" in _error(capsys, "--real", str(empty), "--synthetic", str(synthetic), "-n", "2", "--out", str(tmp_path / "a"))
    assert "--key" in _error(capsys, "--score", str(root / "study" / "responses-x.json"))
    assert not (tmp_path / "a").exists()
