"""MedSynthLib's launcher and stdlib client against a real engine, and ``medsynth ... --engine URL``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from MedSynthLib.client import EngineClient, EngineError
from MedSynthLib.launcher import EngineProcess

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

MEDSYNTH = [sys.executable, "-m", "medsynth_engine.cli"]


def test_client_and_launcher_need_only_the_standard_library():
    code = "import sys, MedSynthLib.client, MedSynthLib.launcher; print(sorted({'torch', 'numpy', 'fastapi'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_launcher_reports_address_token_and_pid(engine):
    assert engine.url.startswith("http://127.0.0.1:") and engine.alive()
    assert engine.token_file.is_file() and engine.pid == engine.process.pid
    assert engine.client().health()["status"] == "ok"


def test_launcher_stop_ends_the_process(tmp_path):
    process = EngineProcess.start(sys.executable, state_dir=tmp_path / "state", device="cpu")
    assert process.alive()
    process.stop(timeout=15)
    assert not process.alive()
    with pytest.raises(EngineError) as info:
        process.client(timeout=2).health()
    assert info.value.status is None


def test_launcher_with_a_missing_interpreter_says_so(tmp_path):
    with pytest.raises(EngineError) as info:
        EngineProcess.start(tmp_path / "no-python", state_dir=tmp_path / "state")
    assert "Cannot start the engine" in str(info.value)


def test_launcher_passes_on_the_engines_start_up_error(tmp_path):
    with pytest.raises(EngineError) as info:
        EngineProcess.start(sys.executable, state_dir=tmp_path / "state", device="tpu")
    assert "exited during start-up" in str(info.value) and "tpu" in str(info.value)


def test_missing_token_file_is_one_sentence(engine, tmp_path):
    with pytest.raises(EngineError) as info:
        EngineClient(engine.url, token_file=tmp_path / "nope.token")
    assert "token file" in str(info.value)


def test_download_into_a_folder_or_to_a_file_and_404_leaves_nothing(engine, tmp_path):
    client = engine.client(timeout=60)
    job = client.wait(client.submit("generate", {"n": 1, "shape": 24, "spacing": 6, "channels": "t1,seg"})["id"], poll=0.2, timeout=120)
    assert job["state"] == "succeeded"
    volume = next(f for f in client.files(job["id"]) if f.endswith("_t1.nii.gz"))
    placed = client.download(job["id"], volume, tmp_path)
    assert placed == tmp_path / volume and placed.stat().st_size > 0
    named = client.download(job["id"], "manifest.json", tmp_path / "manifest-copy.json")
    assert named.read_bytes() == (Path(job["output_dir"]) / "manifest.json").read_bytes()
    with pytest.raises(EngineError) as info:
        client.download(job["id"], "missing.nii.gz", tmp_path / "missing.nii.gz")
    assert info.value.status == 404
    assert not list(tmp_path.glob("*missing*")) and not list(tmp_path.glob(".*partial"))
    for bad in ("../outside.nii.gz", "/etc/passwd", ""):
        with pytest.raises(EngineError, match="relative path"):
            client.download(job["id"], bad, tmp_path)
    assert not (tmp_path.parent / "outside.nii.gz").exists()


def test_wait_gives_up_after_its_timeout(engine):
    client = engine.client(timeout=60)
    job = client.submit("generate", {"n": 500, "shape": 24, "spacing": 6})
    try:
        with pytest.raises(EngineError) as info:
            client.wait(job["id"], poll=0.1, timeout=0.3)
        assert "still" in str(info.value)
    finally:
        client.cancel(job["id"])


def test_medsynth_generate_and_export_with_engine(engine, tmp_path):
    out = tmp_path / "set"
    common = ["--engine", engine.url, "--token-file", str(engine.token_file)]
    result = subprocess.run(
        [*MEDSYNTH, "generate", "-n", "2", "--shape", "24", "--spacing", "6", "--channels", "t1,seg", "--out", str(out), "--quiet", *common],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert len(list(out.glob("ms-*/*.nii.gz"))) == 4
    exported = tmp_path / "nnunet"
    result = subprocess.run(
        [*MEDSYNTH, "export", "--source", str(out), "--out", str(exported), "--layout", "nnunet", *common],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((exported / "imagesTr").glob("*.nii.gz"))) == 2 and (exported / "dataset.json").is_file()


def test_medsynth_generate_with_engine_reports_refusals_in_one_line(engine, tmp_path):
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token\n")
    result = subprocess.run(
        [*MEDSYNTH, "generate", "--out", str(tmp_path / "x"), "--engine", engine.url, "--token-file", str(wrong)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("medsynth: error:") and "token" in result.stderr and result.stderr.count("\n") == 1
    result = subprocess.run(
        [*MEDSYNTH, "generate", "--out", "/etc/forbidden", "--engine", engine.url, "--token-file", str(engine.token_file)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "outside" in result.stderr
    result = subprocess.run(
        [*MEDSYNTH, "generate", "--out", str(tmp_path / "y"), "--audit-against", str(tmp_path), "--engine", engine.url,
         "--token-file", str(engine.token_file)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "--audit-against" in result.stderr and not (tmp_path / "y").exists()
