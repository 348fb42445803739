"""Start and stop an engine process with a given Python interpreter (the engine's own environment).

    engine = EngineProcess.start("/opt/medsynth/.venv/bin/python", state_dir="~/.medsynth/engine")
    client = engine.client()
    ...
    engine.stop()

The engine prints one JSON line (``{"url", "token_file", "pid"}``) once it listens; ``start`` waits for it.
Its stderr goes to ``<state_dir>/engine.log``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .client import EngineClient, EngineError

__all__ = ["EngineProcess", "default_state_dir", "TOKEN_FILE_NAME"]

TOKEN_FILE_NAME = "engine.token"


def default_state_dir() -> Path:
    """``$MEDSYNTH_STATE_DIR`` or ``~/.medsynth/engine``: where an engine keeps its jobs and token."""
    return Path(os.environ.get("MEDSYNTH_STATE_DIR") or Path.home() / ".medsynth" / "engine").expanduser()


class EngineProcess:
    """A running engine subprocess started by this process."""

    def __init__(self, process: subprocess.Popen, url: str, token_file: Path, pid: int, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.token_file = Path(token_file)
        self.pid = pid
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        python: str | os.PathLike,
        *,
        state_dir: str | os.PathLike,
        device: str | None = None,
        port: int = 0,
        extra_args: Sequence[str] = (),
        timeout: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> EngineProcess:
        """Start ``python -m medsynth_engine.engine_cli serve`` and wait for its first line (at most ``timeout`` s).

        ``env`` defaults to this process's environment without PYTHONHOME and PYTHONPATH, which would point
        another interpreter (Slicer's) at the wrong libraries; in Slicer pass ``slicer.util.startupEnvironment()``.
        """
        state = Path(state_dir).expanduser().resolve()
        if not state.exists():
            state.mkdir(parents=True)
            state.chmod(0o700)  # the engine's token, jobs and logs are this user's only
        log_path = state / "engine.log"
        command = [str(python), "-m", "medsynth_engine.engine_cli", "serve", "--port", str(port), "--state-dir", str(state)]
        if device:
            command += ["--device", device]
        command += list(extra_args)
        if env is None:
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        with open(log_path, "ab") as log:
            try:
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
                                           creationflags=_NO_CONSOLE)
            except OSError as exc:
                raise EngineError(f"Cannot start the engine with {python} ({exc.strerror or exc}).") from None
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=_drain, args=(process.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                first = lines.get(timeout=0.1)
                break
            except queue.Empty:
                if process.poll() is not None:
                    raise EngineError(f"The engine exited during start-up (code {process.returncode}): {_last_line(log_path)}") from None
                if time.monotonic() > deadline:
                    _terminate(process, 5.0)
                    raise EngineError(f"The engine did not report ready within {timeout:g} s; see {log_path}.") from None
        try:
            info = json.loads(first)
            return cls(process, info["url"], Path(info["token_file"]), int(info["pid"]), log_path)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            _terminate(process, 5.0)
            raise EngineError(f"The engine's first line was not its address: {first[:200]!r}.") from None

    def client(self, timeout: float = 10.0) -> EngineClient:
        return EngineClient(self.url, token_file=self.token_file, timeout=timeout)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10, *, by_request: bool | None = None) -> int:
        """Ask the engine to stop (jobs end as interrupted and resume later), kill its process tree after ``timeout``
        s; returns its exit code.

        ``by_request`` (default: on Windows) asks through ``POST /shutdown``: a process without a console gets no
        console events there, and a signal would be TerminateProcess. Elsewhere SIGTERM does the same.
        """
        if by_request is None:
            by_request = os.name == "nt"
        if not by_request:
            return _terminate(self.process, timeout)
        if self.process.poll() is None:
            try:
                self.client(timeout=min(timeout, 5.0))._json("POST", "/shutdown")
            except EngineError:
                pass  # not answering: the tree kill below ends it
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(self.process)
        return self.process.wait()


#: Windows: start the engine without a console window (and in its own process group). 0 elsewhere.
_NO_CONSOLE = getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)


def _kill_tree(process: subprocess.Popen) -> None:
    """Kill the engine and the worker processes it started (``taskkill /T`` on Windows)."""
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False,
                       creationflags=_NO_CONSOLE)
    else:
        try:
            children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False)
            for pid in children.stdout.split():
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        process.kill()


def _drain(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, b""):
        lines.put(line)
    stream.close()


def _terminate(process: subprocess.Popen, timeout: float) -> int:
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"
