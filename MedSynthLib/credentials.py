"""Engine tokens kept in the user's own settings file (mode 0600), never in a scene or a parameter node.

A scene file travels (it is shared, attached to tickets, saved next to hospital paths); an engine token must not.
The panel keeps one token per engine URL in ``~/.medsynth/credentials.json`` (``$MEDSYNTH_CREDENTIALS``), written
to a temporary name with mode 0600 and renamed into place, in a folder only the user can open.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["CredentialStore", "default_credentials_path", "resolve_credential"]


def default_credentials_path() -> Path:
    return Path(os.environ.get("MEDSYNTH_CREDENTIALS") or Path.home() / ".medsynth" / "credentials.json").expanduser()


def resolve_credential(text: str) -> str:
    """What the panel's token field holds, as a token: the content of a token file, or the token itself."""
    text = text.strip()
    if not text:
        return ""
    path = Path(text).expanduser()
    try:
        if path.is_file():
            return path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"Cannot read the engine token file {path} ({exc.strerror or exc}).") from None
    return text


class CredentialStore:
    """``{engine url: token}`` in a JSON file only the user may read."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_credentials_path()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def token(self, url: str) -> str:
        """The token saved for ``url``, or empty."""
        return self._read().get(url.strip().rstrip("/"), "")

    def save(self, url: str, token: str) -> None:
        """Remember ``token`` for ``url`` (atomically; the file and its folder are the user's only)."""
        tokens = self._read()
        tokens[url.strip().rstrip("/")] = token
        if not self.path.parent.is_dir():
            self.path.parent.mkdir(parents=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(tokens, handle, indent=1, sort_keys=True)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
