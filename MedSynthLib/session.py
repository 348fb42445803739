"""The engine the panel talks to and the one job it follows (state only; the controller decides)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import EngineClient, EngineError
from .requests import InputError

__all__ = ["EngineSession", "JobTracker", "ACTIVE_STATES", "allow_dir_args"]

ACTIVE_STATES = ("queued", "running")


def allow_dir_args(folders: tuple[str, ...] | list[str]) -> list[str]:
    """``--allow-dir`` options for an engine that may use ``folders`` as well as the home folder (its default,
    which any ``--allow-dir`` replaces); a folder that does not exist is refused in one sentence."""
    if not folders:
        return []
    args = ["--allow-dir", str(Path.home())]
    for text in folders:
        folder = Path(str(text).strip()).expanduser()
        if not folder.is_absolute() or not folder.is_dir():
            raise InputError(f"The data folder {text} does not exist; give existing folders with absolute paths.")
        args += ["--allow-dir", str(folder.resolve())]
    return args


@dataclass
class EngineSession:
    """The engine the panel talks to: one it started (``process``) or one it connected to by URL."""

    client: EngineClient | None = None
    process: Any = None  # MedSynthLib.launcher.EngineProcess when this panel started it
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def connected(self) -> bool:
        return self.client is not None

    def start_local(self, python: str | os.PathLike, state_dir: str | os.PathLike, device: str | None = None,
                    extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> dict[str, Any]:
        """Start the engine with ``python`` (an interpreter whose environment has the engine installed).

        ``env``: the environment for it (in Slicer, the one from before Slicer's launcher set PYTHONHOME etc.).
        """
        from .launcher import EngineProcess

        if not str(python).strip():
            raise InputError("No Python interpreter is set for the engine; choose the engine environment's python.")
        if not Path(python).expanduser().is_file():
            raise InputError(f"The engine interpreter {python} does not exist; choose the engine environment's python.")
        process = EngineProcess.start(Path(python).expanduser(), state_dir=state_dir, device=device or None,
                                      extra_args=extra_args, env=env)
        try:
            return self._attach(process.client(timeout=10.0), process)
        except EngineError:
            process.stop()
            raise

    def connect(self, url: str, token: str | None = None, token_file: str | None = None) -> dict[str, Any]:
        """Connect to a running engine by URL (and token)."""
        if not url.strip().startswith(("http://", "https://")):
            raise InputError(f"'{url}' is not an engine address; give one like http://127.0.0.1:8765.")
        client = EngineClient(url.strip(), token or None, token_file=token_file or None, timeout=10.0)
        return self._attach(client, None)

    def _attach(self, client: EngineClient, process: Any) -> dict[str, Any]:
        health = client.health()
        client.models()  # checks the token too: /health needs none
        self.client, self.process, self.health = client, process, health
        return health

    def alive(self) -> bool:
        """Whether a started engine process still runs (True for a URL connection: that is checked by polling)."""
        return self.process is None or self.process.alive()

    def stop(self) -> None:
        """Stop an engine this panel started; forget a connected one."""
        if self.process is not None:
            self.process.stop()
        self.client, self.process, self.health = None, None, {}


@dataclass
class JobTracker:
    """The one job the panel follows: its last record, loss history and what went wrong."""

    job: dict[str, Any] | None = None
    losses: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    lost: str = ""  # set when the engine stopped answering about this job
    #: Whether ``losses`` come from the job's loss log (every step) rather than from the polled metrics.
    from_log: bool = False

    @property
    def active(self) -> bool:
        return self.job is not None and not self.lost and self.job.get("state") in ACTIVE_STATES

    @property
    def kind(self) -> str:
        return self.job.get("kind", "") if self.job else ""

    def follow(self, job: dict[str, Any]) -> None:
        self.job, self.losses, self.lost, self.from_log = job, [], "", False
        self._record(job)

    def update(self, job: dict[str, Any]) -> None:
        self.job = job
        self._record(job)

    def add_logged(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Append rows read from the loss log (from then on the log, not the metrics, feeds ``losses``)."""
        if not self.from_log:
            self.losses, self.from_log = [], True
        self.losses.extend(rows)

    def _record(self, job: dict[str, Any]) -> None:
        if self.from_log:
            return
        metrics = job.get("metrics") or {}
        losses = metrics.get("losses")
        step = metrics.get("step")
        if isinstance(losses, dict) and isinstance(step, int) and (not self.losses or step > self.losses[-1][0]):
            self.losses.append((step, {k: float(v) for k, v in losses.items() if isinstance(v, (int, float))}))


