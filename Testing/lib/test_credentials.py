"""Engine tokens live in the user's 0600 credentials file, one per engine URL (runs under Python 3.9 too)."""

from __future__ import annotations

import json
import stat

import pytest

from MedSynthLib.credentials import CredentialStore, resolve_credential


def test_tokens_are_kept_per_url_in_a_file_only_the_user_can_read(tmp_path):
    path = tmp_path / "settings" / "credentials.json"
    store = CredentialStore(path)
    assert store.token("http://127.0.0.1:1") == ""
    store.save("http://127.0.0.1:1/", "secret-a")
    store.save("http://gpu-box:8765", "secret-b")
    assert store.token("http://127.0.0.1:1") == "secret-a" and store.token(" http://gpu-box:8765/ ") == "secret-b"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"http://127.0.0.1:1": "secret-a", "http://gpu-box:8765": "secret-b"}
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temporary file left behind


def test_a_failed_write_keeps_the_saved_tokens(tmp_path, monkeypatch):
    store = CredentialStore(tmp_path / "credentials.json")
    store.save("http://a", "one")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("json.dump", fail)
    with pytest.raises(OSError):
        store.save("http://b", "two")
    assert store.token("http://a") == "one" and [p.name for p in tmp_path.iterdir()] == ["credentials.json"]


def test_the_token_field_takes_a_token_or_its_file(tmp_path):
    token_file = tmp_path / "engine.token"
    token_file.write_text("from-file\n")
    assert resolve_credential(f"  {token_file} ") == "from-file"
    assert resolve_credential("pasted-token") == "pasted-token" and resolve_credential("  ") == ""
