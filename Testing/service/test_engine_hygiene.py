"""Engine hygiene on real engine processes: ``DELETE /jobs/{id}`` (204, 409 while queued or running, 404 unknown),
the retention setting, HTTPS for ``--allow-remote`` (a self-signed certificate made here), body and path limits."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from medsynth_engine.engine_cli import main as engine_main
from medsynth_engine.httplimits import MAX_BODY_BYTES, MAX_PATH_CHARS
from service_helpers import start_engine, stop_engine

from MedSynthLib.client import EngineClient, EngineError

pytestmark = pytest.mark.slow

TINY = {"n": 1, "seed": 3, "shape": 24, "spacing": 6, "channels": "t1,seg"}


def _raw(engine, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(engine.url + path, data=body, method=method)
    request.add_header("Authorization", f"Bearer {engine.token_file.read_text().strip()}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_delete_removes_a_finished_job_and_its_folder_only(engine, client):
    job = client.wait(client.submit("generate", dict(TINY))["id"], poll=0.2, timeout=120)
    folder = Path(job["output_dir"]).parent
    assert job["state"] == "succeeded" and folder.name == job["id"] and folder.is_dir()
    busy = client.submit("generate", {**TINY, "n": 50})  # queued or running for a while
    with pytest.raises(EngineError) as refused:
        client.delete(busy["id"])
    assert refused.value.status == 409 and "cancel it first" in str(refused.value)
    client.delete(job["id"])
    assert not folder.exists()
    for ask in (lambda: client.job(job["id"]), lambda: client.delete(job["id"]), lambda: client.delete("job-000000000000")):
        with pytest.raises(EngineError) as missing:
            ask()
        assert missing.value.status == 404
    client.cancel(busy["id"])
    client.wait(busy["id"], poll=0.2, timeout=60)
    client.delete(busy["id"])
    assert busy["id"] not in [j["id"] for j in client.jobs()]


def test_bodies_and_paths_over_the_limits_are_refused_in_one_sentence(engine):
    # The refusal comes from the declared length, before the body is read: send the headers only and read the
    # answer (sending the whole body races the server's close and can end in a broken pipe instead).
    host, port = engine.url.split("://")[1].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("POST", "/jobs")
        connection.putheader("Authorization", f"Bearer {engine.token_file.read_text().strip()}")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert status == 413 and body["error"].startswith("The request body is larger than 1024 KiB")
    status, body = _raw(engine, "GET", "/jobs/" + "j" * MAX_PATH_CHARS)
    assert status == 414 and body == {"error": f"The request's path is longer than {MAX_PATH_CHARS} characters."}
    status, body = _raw(engine, "POST", "/jobs", json.dumps({"kind": "generate", "params": {**TINY, "out": "/" + "d" * 5000}}).encode())
    assert status == 422 and "out" in body["error"]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key: with ``cryptography`` if installed, else the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is here to make a certificate")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        return cert, key
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key


def test_allow_remote_needs_tls(tmp_path, capsys):
    assert engine_main(["serve", "--host", "0.0.0.0", "--allow-remote", "--state-dir", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.strip() == (
        "medsynth-engine: error: --allow-remote serves other machines over HTTPS only; give --tls-cert and --tls-key (PEM files)."
    )
    assert not (tmp_path / "s").exists()


def test_https_engine_keeps_only_the_newest_finished_jobs(tmp_path, allowed_root):
    """One engine serves HTTPS (the certificate made here) with --keep-jobs 1: after a second job ends, the first is
    gone with its folder; plain HTTP and an unknown certificate get no answer."""
    cert, key = _self_signed(tmp_path)
    engine = start_engine(tmp_path / "state", allowed_root, "--tls-cert", str(cert), "--tls-key", str(key), "--keep-jobs", "1")
    try:
        assert engine.url.startswith("https://127.0.0.1:")
        client = EngineClient(engine.url, token_file=engine.token_file, cafile=cert, timeout=30)
        assert client.health()["status"] == "ok"
        with pytest.raises(EngineError):
            EngineClient(engine.url, token_file=engine.token_file, timeout=5).health()  # the system's CAs do not know it
        with pytest.raises(EngineError):
            EngineClient(engine.url.replace("https", "http"), token_file=engine.token_file, timeout=5).health()
        first = client.wait(client.submit("generate", dict(TINY))["id"], poll=0.2, timeout=120)
        second = client.wait(client.submit("generate", dict(TINY))["id"], poll=0.2, timeout=120)
        assert first["state"] == second["state"] == "succeeded"
        deadline = time.monotonic() + 20  # retention runs just after the job's end is recorded
        while [j["id"] for j in client.jobs()] != [second["id"]] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [j["id"] for j in client.jobs()] == [second["id"]]
        assert sorted(p.name for p in (tmp_path / "state" / "jobs").iterdir()) == [second["id"]]
    finally:
        stop_engine(engine)


def test_retention_removes_only_jobs_that_are_over_and_keeps_resumable_ones(tmp_path):
    """--keep-jobs 0 and --keep-jobs-days 0 remove succeeded and failed jobs with their folders; interrupted and
    cancelled ones (they can resume) stay, as do queued and running ones."""
    from medsynth_engine.jobs.retention import Retention, apply_retention
    from medsynth_engine.jobs.store import JobStore

    jobs_dir = tmp_path / "jobs"
    store = JobStore(tmp_path / "jobs.sqlite")
    try:
        ids = {}
        for state in ("succeeded", "failed", "interrupted", "cancelled", "queued", "running"):
            job = store.create("generate", {}, jobs_dir / "x")
            (jobs_dir / job["id"]).mkdir(parents=True)
            store.update(job["id"], state=state)
            ids[state] = job["id"]
        removed = apply_retention(store, jobs_dir, Retention(keep_jobs=0))
        assert sorted(removed) == sorted([ids["succeeded"], ids["failed"]])
        assert apply_retention(store, jobs_dir, Retention(keep_days=0.0), now=time.time() + 1) == []
        left = {job["state"] for job in store.list()}
        assert left == {"interrupted", "cancelled", "queued", "running"}
        assert sorted(p.name for p in jobs_dir.iterdir()) == sorted(ids[s] for s in left)
    finally:
        store.close()
