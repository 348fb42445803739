"""``EngineClient``: talk to a MedSynth engine over HTTP with the standard library only (it runs in Slicer's Python).

    client = EngineClient("http://127.0.0.1:8765", token_file="~/.medsynth/engine/engine.token")
    job = client.submit("generate", {"model": "phantom", "n": 2, "shape": 64, "spacing": 3})
    job = client.wait(job["id"], progress=lambda j: print(j["progress"]))
    for path in client.files(job["id"]):
        client.download(job["id"], path, "downloads/")

Every failure is an ``EngineError`` whose message is one sentence and whose ``status`` is the HTTP status
(``None`` when the engine could not be reached).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EngineError", "EngineClient", "TERMINAL_STATES"]

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
_CHUNK = 1 << 20


class EngineError(Exception):
    """A request the engine refused or could not answer; ``status`` is the HTTP status or None."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EngineClient:
    """A thin client for the engine's HTTP API (see ``GET /openapi.json`` on a running engine)."""

    def __init__(
        self, url: str, token: str | None = None, *, token_file: str | os.PathLike | None = None, timeout: float = 10.0,
        cafile: str | os.PathLike | None = None,
    ) -> None:
        """``cafile``: the certificate (or its CA) of an engine served over HTTPS with a certificate of its own."""
        self.url = url.rstrip("/")
        self._tls = ssl.create_default_context(cafile=str(cafile)) if cafile is not None else None
        if token is None and token_file is not None:
            path = Path(token_file).expanduser()
            try:
                token = path.read_text().strip()
            except OSError as exc:
                raise EngineError(f"Cannot read the engine token file {path} ({exc.strerror or exc}).") from None
        self.token = token
        self.timeout = timeout

    # -- endpoints ----------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def models(self) -> list[dict[str, Any]]:
        return self._json("GET", "/models")

    def job_kinds(self) -> dict[str, Any]:
        """``{"kinds": {kind: {"params_schema": <JSON Schema>}}}``: what each job kind takes (MedSynthLib.jobschema)."""
        return self._json("GET", "/job-kinds")

    def channel_models(self) -> list[dict[str, Any]]:
        """Models add-channel jobs can use: one row per model with its ``channel`` (seg or ct) and ``id``."""
        return self._json("GET", "/channel-models")

    def model(self, model_id: str) -> dict[str, Any]:
        return self._json("GET", f"/models/{_quote(model_id)}")

    def submit(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/jobs", {"kind": kind, "params": params})

    def jobs(self) -> list[dict[str, Any]]:
        return self._json("GET", "/jobs")

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{_quote(job_id)}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/jobs/{_quote(job_id)}/cancel")

    def resume(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/jobs/{_quote(job_id)}/resume")

    def delete(self, job_id: str) -> None:
        """Remove a finished job and its folder on the engine (a queued or running one is refused: cancel it first)."""
        with self._open("DELETE", f"/jobs/{_quote(job_id)}"):
            pass

    def files(self, job_id: str) -> list[str]:
        return self._json("GET", f"/jobs/{_quote(job_id)}/files")

    def download(self, job_id: str, path: str, dest: str | os.PathLike) -> Path:
        """Fetch one output file; ``dest`` is a file path, or a folder to place it in (subfolders kept).

        The file lands through a temporary name, so an interrupted download leaves nothing half-written.
        """
        relative = Path(path)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise EngineError(f"'{path}' is not a relative path inside the job's outputs; it cannot be downloaded.")
        dest = Path(dest).expanduser()
        target = dest / relative if dest.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        quoted = "/".join(_quote(part) for part in path.split("/"))
        with self._open("GET", f"/jobs/{_quote(job_id)}/files/{quoted}") as response:
            try:
                with open(tmp, "wb") as handle:
                    while block := self._read(response, _CHUNK):
                        handle.write(block)
                if getattr(response, "length", None):  # bytes the reply declared and never sent: the engine stopped
                    raise EngineError(f"The MedSynth engine at {self.url} stopped in the middle of sending {path}; nothing was saved.")
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return target

    def wait(
        self,
        job_id: str,
        poll: float = 0.5,
        timeout: float | None = None,
        *,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job ends (succeeded, failed, cancelled or interrupted); returns its last record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(job)
            if job["state"] in TERMINAL_STATES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise EngineError(f"Job {job_id} was still {job['state']} after {timeout:g} s.", status=None)
            time.sleep(poll)

    # -- transport ----------------------------------------------------------------------------------------

    def _open(self, method: str, path: str, body: Any = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout, context=self._tls)
        except urllib.error.HTTPError as exc:
            raise EngineError(_error_sentence(exc), status=exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EngineError(f"Cannot reach the MedSynth engine at {self.url} ({reason}); is it running?") from None

    def _read(self, response: Any, size: int | None = None) -> bytes:
        """Read the reply; an engine that dies mid-reply (a truncated body, a reset) is an EngineError, as one that
        never answered is."""
        try:
            return response.read() if size is None else response.read(size)
        except (http.client.HTTPException, OSError) as exc:
            raise EngineError(f"The MedSynth engine at {self.url} stopped in the middle of its reply ({type(exc).__name__}); is it still running?") from None

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        with self._open(method, path, body) as response:
            raw = self._read(response)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EngineError(f"The engine at {self.url} sent a reply that is not JSON.") from None


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _error_sentence(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        message = body.get("error") if isinstance(body, dict) else None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        message = None
    if exc.code == 401 and not message:
        message = "The engine refused the request: the token is missing or wrong."
    return message or f"The engine answered HTTP {exc.code} ({exc.reason})."
