"""Every endpoint of a real engine on loopback: auth, models, a generate job end to end, export, bad requests."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from MedSynthLib.client import EngineClient, EngineError

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

TINY = {"n": 2, "seed": 3, "shape": 24, "spacing": 6, "channels": "t1,flair,seg"}


def _raw(engine, method: str, path: str, token: str | None = None, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(engine.url + path, data=body, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def token(engine) -> str:
    return engine.token_file.read_text().strip()


@pytest.fixture(scope="module")
def generated(client) -> dict:
    """One finished tiny generate job (shared by the download, files and export tests)."""
    job = client.submit("generate", dict(TINY))
    assert job["state"] in ("queued", "running")
    job = client.wait(job["id"], poll=0.2, timeout=120)
    assert job["state"] == "succeeded", job
    return job


def test_token_file_is_private_and_random(engine, token):
    mode = stat.S_IMODE(os.stat(engine.token_file).st_mode)
    assert mode == 0o600
    assert len(token) >= 32


def test_a_new_state_folder_is_private(tmp_path, allowed_root):
    from service_helpers import start_engine, stop_engine

    engine = start_engine(tmp_path / "new" / "state", allowed_root)
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "new" / "state").st_mode) == 0o700
        assert engine.token_file.parent == tmp_path / "new" / "state"
    finally:
        stop_engine(engine)


def test_health_needs_no_token(engine):
    status, body = _raw(engine, "GET", "/health")
    assert status == 200
    assert body["status"] == "ok" and body["device"] == "cpu" and body["version"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/models"),
        ("GET", "/models/phantom"),
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/jobs/job-000000000000"),
        ("POST", "/jobs/job-000000000000/cancel"),
        ("POST", "/jobs/job-000000000000/resume"),
        ("GET", "/jobs/job-000000000000/files"),
        ("GET", "/jobs/job-000000000000/files/manifest.json"),
        ("GET", "/openapi.json"),
    ],
)
@pytest.mark.parametrize("credential", [None, "wrong-token"])
def test_every_other_endpoint_needs_the_token(engine, method, path, credential):
    body = b'{"kind": "generate", "params": {}}' if method == "POST" else None
    status, reply = _raw(engine, method, path, token=credential, body=body)
    assert status == 401
    assert "token" in reply["error"]


def test_models_and_model_card(client):
    rows = client.models()
    assert any(row["id"] == "phantom" and "t1" in row["channels"] for row in rows)
    card = client.model("phantom")
    assert card["id"] == "phantom" and card["kind"] == "procedural" and len(card["weights_sha256"]) == 64
    with pytest.raises(EngineError) as info:
        client.model("no-such-model")
    assert info.value.status == 404 and "no-such-model" in str(info.value)


def test_openapi_schema_lists_the_api(client):
    schema = client._json("GET", "/openapi.json")
    paths = set(schema["paths"])
    assert {"/health", "/models", "/models/{model_id}", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel"} <= paths
    assert {"/jobs/{job_id}/resume", "/jobs/{job_id}/files", "/jobs/{job_id}/files/{path}"} <= paths


def test_generate_job_end_to_end_with_download(client, generated, tmp_path):
    assert generated["progress"] == 1.0 and generated["metrics"]["step"] == 2 and generated["metrics"]["total"] == 2
    assert generated["params"]["channels"] == ["t1", "flair", "seg"]
    out = Path(generated["output_dir"])
    assert out.is_absolute() and (out / "manifest.json").is_file()
    files = client.files(generated["id"])
    assert "manifest.json" in files
    volumes = [f for f in files if f.endswith(".nii.gz")]
    assert len(volumes) == 2 * 3
    for name in volumes:
        target = client.download(generated["id"], name, tmp_path)
        assert target == tmp_path / name
        assert target.read_bytes() == (out / name).read_bytes()
    seg = next(tmp_path.glob("*/*_seg.nii.gz"))
    labels = set(np.unique(np.asarray(nib.load(seg).dataobj)).tolist())
    assert labels <= {0, 1, 2, 4} and len(labels) > 1
    manifest = json.loads(client.download(generated["id"], "manifest.json", tmp_path / "m.json").read_text())
    assert [c["seed"] for c in manifest["cases"]] and manifest["model"]["id"] == "phantom"
    assert any(job["id"] == generated["id"] for job in client.jobs())


def test_generate_into_an_allowed_out_folder(client, allowed_root, tmp_path):
    out = tmp_path / "my-set"
    job = client.wait(client.submit("generate", {**TINY, "n": 1, "out": str(out)})["id"], poll=0.2, timeout=120)
    assert job["state"] == "succeeded" and job["output_dir"] == str(out)
    assert len(list(out.glob("ms-*/*.nii.gz"))) == 3


def test_export_job_rewrites_a_finished_job(client, generated):
    job = client.submit("export", {"job": generated["id"], "layout": "nnunet", "channels": "flair,seg"})
    job = client.wait(job["id"], poll=0.2, timeout=120)
    assert job["state"] == "succeeded", job
    files = client.files(job["id"])
    assert "dataset.json" in files and sum(f.startswith("imagesTr/") for f in files) == 2
    assert sum(f.startswith("labelsTr/") for f in files) == 2
    source = json.loads((Path(generated["output_dir"]) / "manifest.json").read_text())
    exported = json.loads((Path(job["output_dir"]) / "manifest.json").read_text())
    assert sorted(c["seed"] for c in exported["cases"]) == sorted(c["seed"] for c in source["cases"])
    assert exported["model"] == source["model"] and exported["channels"] == ["flair", "seg"]


def test_export_job_audits_against_a_training_set_and_leaves_copies_out(client, generated, training_set):
    """The panel's export gate: an export audited against the training data never ships a copy of it."""
    clean = client.wait(client.submit("export", {"job": generated["id"], "audit_against": str(training_set)})["id"], poll=0.2, timeout=120)
    assert clean["state"] == "succeeded", clean
    manifest = json.loads((Path(clean["output_dir"]) / "manifest.json").read_text())
    assert manifest["audit"]["n_flagged"] == 0 and len(manifest["cases"]) == manifest["audit"]["n_synthetic"]
    assert str(training_set) not in json.dumps(manifest)
    # Audited against its own source, every case is a copy: the job fails and writes nothing.
    copies = client.wait(client.submit("export", {"job": generated["id"], "audit_against": generated["output_dir"]})["id"], poll=0.2, timeout=120)
    assert copies["state"] == "failed" and "were flagged as probable copies" in copies["error"]
    assert not Path(copies["output_dir"]).exists() or not any(Path(copies["output_dir"]).iterdir())


@pytest.mark.parametrize(
    "body,status,words",
    [
        ({"kind": "teleport", "params": {}}, 422, "kind"),
        ({"params": {}}, 422, "kind"),
        ({"kind": "generate", "params": {"n": 0}}, 422, "'n'"),
        ({"kind": "generate", "params": {"n": "many"}}, 422, "'n'"),
        ({"kind": "generate", "params": {"n": 1_000_001}}, 422, "'n'"),
        ({"kind": "generate", "params": {"colour": "red"}}, 422, "colour"),
        ({"kind": "generate", "colour": "red"}, 422, "colour"),
        ({"kind": "generate", "params": {"channels": "t1,t3"}}, 422, "t3"),
        ({"kind": "generate", "params": {"shape": [24, 24]}}, 422, "shape"),
        ({"kind": "generate", "params": {"model": "nonexistent"}}, 404, "nonexistent"),
        ({"kind": "generate", "params": {"device": "tpu"}}, 422, "tpu"),
        ({"kind": "generate", "params": {"out": "relative/folder"}}, 422, "absolute"),
        ({"kind": "generate", "params": {"out": "/etc/medsynth-out"}}, 403, "outside"),
        ({"kind": "generate", "params": {"layout": "nnunet", "channels": "t1"}}, 409, "seg"),
        ({"kind": "export"}, 422, "'params' is required"),
        ({"kind": "export", "params": {}}, 422, "exactly one"),
        ({"kind": "export", "params": {"source": "/etc", "job": "job-000000000000"}}, 422, "exactly one"),
        ({"kind": "export", "params": {"source": "/etc"}}, 403, "outside"),
        ({"kind": "export", "params": {"job": "job-000000000000"}}, 404, "no job"),
        ({"kind": "export", "params": {"source": "/tmp", "audit_threshold": 2}}, 422, "audit_threshold"),
        ({"kind": "add-channel"}, 422, "'params' is required"),
        ({"kind": "add-channel", "params": {"case": "/etc", "channel": "pd"}}, 422, "channel"),
        ({"kind": "finetune", "params": {"model": "pgan3d"}}, 422, "data"),
        ({"kind": "finetune", "params": {"model": "pgan3d", "data": "/etc"}}, 403, "outside"),
        ({"kind": "finetune", "params": {"model": "pgan3d", "data": "/etc", "resolution": 12}}, 422, "resolution"),
    ],
)
def test_bad_submissions_are_4xx_with_one_sentence(engine, token, body, status, words):
    code, reply = _raw(engine, "POST", "/jobs", token=token, body=json.dumps(body).encode())
    assert code == status, reply
    assert set(reply) == {"error"} and words in reply["error"]
    assert reply["error"].endswith(".") and "\n" not in reply["error"]


def test_malformed_json_is_422(engine, token):
    code, reply = _raw(engine, "POST", "/jobs", token=token, body=b'{"kind": "generate", ')
    assert code == 422 and "JSON" in reply["error"]


def test_out_folder_that_is_not_empty_is_refused(client, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(EngineError) as info:
        client.submit("generate", {**TINY, "out": str(tmp_path)})
    assert info.value.status == 409 and "not empty" in str(info.value)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_unknown_job_and_wrong_states(client, generated):
    for call in (client.job, client.cancel, client.resume, client.files):
        with pytest.raises(EngineError) as info:
            call("job-ffffffffffff")
        assert info.value.status == 404
    with pytest.raises(EngineError) as info:
        client.cancel(generated["id"])
    assert info.value.status == 409 and "already ended" in str(info.value)
    with pytest.raises(EngineError) as info:
        client.resume(generated["id"])
    assert info.value.status == 409 and "only interrupted or cancelled jobs" in str(info.value)


def test_unknown_route_and_method_are_4xx(engine, token):
    assert _raw(engine, "GET", "/nowhere", token=token)[0] == 404
    assert _raw(engine, "DELETE", "/jobs", token=token)[0] == 405


@pytest.mark.parametrize("method, path, allowed", [("DELETE", "/jobs", "GET, POST"), ("PUT", "/jobs/job-1/cancel", "POST")])
def test_a_405_names_every_method_the_path_serves(engine, token, method, path, allowed):
    request = urllib.request.Request(engine.url + path, method=method, headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 405 and info.value.headers["Allow"] == allowed


def test_job_kinds_serve_the_schema_the_engine_checks(client):
    kinds = client._json("GET", "/job-kinds")["kinds"]
    assert list(kinds) == ["generate", "finetune", "export", "add-channel", "add-tumour", "progress", "prepare"]
    generate = kinds["generate"]
    assert generate["params_schema"]["properties"]["n"]["maximum"] == 1_000_000 and generate["runs_in"] == "engine"
    assert kinds["finetune"]["lane"] == "device" and kinds["finetune"]["resumable"]
    assert kinds["export"]["params_schema"]["oneOf"] == [{"required": ["source"]}, {"required": ["job"]}]
    assert {"case", "channel"} <= set(kinds["add-channel"]["params_schema"]["required"])


def test_openapi_publishes_jobs_as_a_union_on_kind_with_links_to_the_job(client):
    schema = client._json("GET", "/openapi.json")
    post = schema["paths"]["/jobs"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["propertyName"] == "kind"
    members = {ref["$ref"].rsplit("/", 1)[1] for ref in body["oneOf"]}
    assert members == {"GenerateJob", "FinetuneJob", "ExportJob", "AddChannelJob", "AddTumourJob", "ProgressJob", "PrepareJob"}
    generate = schema["components"]["schemas"]["GenerateParams"]
    assert generate["properties"]["out"]["anyOf"][0]["pattern"].startswith("^(/")
    links = post["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {"getJob", "listJobFiles", "cancelJob", "resumeJob"}


@pytest.mark.parametrize(
    "path",
    [
        "../../jobs.sqlite",
        "..%2f..%2fjobs.sqlite",
        "%2e%2e/%2e%2e/engine.token",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "ms-x/../../../engine.token",
        "..",
        "",
    ],
)
def test_path_traversal_is_refused(engine, token, generated, path):
    code, reply = _raw(engine, "GET", f"/jobs/{generated['id']}/files/{path}", token=token)
    assert code in (400, 404), reply
    assert set(reply) == {"error"}


def test_a_link_out_of_the_job_folder_is_refused(engine, token, generated):
    link = Path(generated["output_dir"]) / "escape.txt"
    link.symlink_to(engine.token_file)
    try:
        code, reply = _raw(engine, "GET", f"/jobs/{generated['id']}/files/escape.txt", token=token)
    finally:
        link.unlink()
    assert code == 400 and "leaves" in reply["error"]


def test_client_errors_carry_status_and_sentence(engine):
    with pytest.raises(EngineError) as info:
        EngineClient(engine.url, "not-the-token").jobs()
    assert info.value.status == 401
    with pytest.raises(EngineError) as info:
        EngineClient("http://127.0.0.1:9", "x", timeout=2).health()
    assert info.value.status is None and "Cannot reach" in str(info.value)


def test_a_link_out_of_the_allowed_folders_is_refused_as_out(client, tmp_path):
    (tmp_path / "etc-link").symlink_to("/etc")
    with pytest.raises(EngineError) as info:
        client.submit("generate", {**TINY, "out": str(tmp_path / "etc-link" / "medsynth-set")})
    assert info.value.status == 403 and "outside" in str(info.value)
