"""Run a :class:`~.plan.SetupPlan` in subprocesses on a worker thread: progress lines, cancel, one-sentence errors.

The GUI thread calls :meth:`SetupRun.poll` from a timer; nothing here waits on it. The environment is created at its
final path and only counts as set up once the marker file (:data:`~.plan.MARKER`) is written after the last step; a
failed or cancelled set-up removes the folder it created, so nothing half-installed is left for Start to find.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .plan import MARKER, SetupError, SetupPlan, Step

__all__ = ["SetupRun", "Progress", "check_disk_space", "explain_failure"]

_NO_CONSOLE = getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)


@dataclass
class Progress:
    """What the dialog shows: the step running, new output lines, and the outcome once there is one."""

    step: int  # 1-based index of the running step; len(steps) when done
    total: int
    title: str
    lines: list[str]
    state: str  # running | succeeded | failed | cancelled
    error: str = ""


def check_disk_space(plan: SetupPlan, usage=shutil.disk_usage) -> None:
    """Refuse before anything is written when the disk cannot hold the environment."""
    parent = plan.env_dir.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    free_gb = usage(str(parent)).free / 1e9
    if free_gb < plan.required_gb:
        raise SetupError(f"The disk holding {plan.env_dir} has {free_gb:.1f} GB free and the engine needs about "
                         f"{plan.required_gb:.1f} GB: free some space or choose another folder.")


def explain_failure(step: Step, returncode: int, output: Sequence[str], plan: SetupPlan) -> str:
    """One sentence for a failed step, from pip's own last words."""
    text = "\n".join(output[-200:])
    if "No space left on device" in text or "[Errno 28]" in text:
        return (f"The disk holding {plan.env_dir} is full ({step.title.lower()} stopped): free at least "
                f"{plan.required_gb:.1f} GB and run Set up again.")
    if any(s in text for s in ("Failed to establish a new connection", "Temporary failure in name resolution",
                               "Network is unreachable", "ProxyError", "SSLError")):
        return (f"Could not download ({step.title.lower()}): the package index is not reachable from this computer; "
                "check the network or proxy settings and run Set up again.")
    if "No matching distribution found" in text or "Could not find a version that satisfies" in text:
        return (f"pip found no matching package ({step.title.lower()}): {_last_error(output)} Choose another torch "
                "build or check that this Python version is supported (3.10 to 3.13).")
    return f"{step.title} failed (exit code {returncode}): {_last_error(output)}"


def _last_error(output: Sequence[str]) -> str:
    errors = [line.strip() for line in output if line.strip().startswith("ERROR")]
    last = errors[-1] if errors else next((line.strip() for line in reversed(output) if line.strip()), "no output")
    return last if last.endswith(".") else last + "."


class SetupRun:
    """One set-up in progress. ``steps`` selects a part of the plan by step name (all by default); ``env`` is the
    environment to start from (in Slicer ``slicer.util.startupEnvironment()``, the one Slicer itself was started in)."""

    def __init__(self, plan: SetupPlan, steps: Sequence[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.plan = plan
        self.steps = [s for s in plan.steps if steps is None or s.name in steps]
        # Slicer's PYTHONHOME/PYTHONPATH (and this user's site-packages) must not leak into the new environment.
        base = dict(os.environ if env is None else env)
        self.env = {k: v for k, v in base.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        self.env["PYTHONNOUSERSITE"] = "1"
        self._lines: queue.Queue[str] = queue.Queue()
        self._cancel = threading.Event()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.step, self.state, self.error = 0, "running", ""
        self._created = not plan.env_dir.exists()
        if plan.env_dir.exists() and any(plan.env_dir.iterdir()):
            raise SetupError(f"{plan.env_dir} already exists: choose it as an existing environment, or remove it "
                             "and set up again.")
        self._thread = threading.Thread(target=self._run, name="MedSynth engine set-up", daemon=True)

    def start(self) -> SetupRun:
        self._thread.start()
        return self

    def poll(self) -> Progress:
        """New output and the state so far (call from the GUI thread's timer; never waits)."""
        lines = []
        while True:
            try:
                lines.append(self._lines.get_nowait())
            except queue.Empty:
                break
        current = self.steps[min(self.step, len(self.steps)) - 1] if self.step else self.steps[0]
        return Progress(max(self.step, 1), len(self.steps), current.title, lines, self.state, self.error)

    def cancel(self) -> None:
        """Stop the running command (and pip's children) and remove what was created."""
        self._cancel.set()
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                _kill_tree(self._process)

    def wait(self, timeout: float | None = None) -> str:
        self._thread.join(timeout)
        return self.state

    def _run(self) -> None:
        try:
            for index, step in enumerate(self.steps, 1):
                self.step = index
                self._lines.put(f"[{index}/{len(self.steps)}] {step.title}")
                returncode, output = self._execute(step)
                if self._cancel.is_set():
                    self._finish("cancelled", f"Set-up was cancelled; {self._cleanup()}")
                    return
                if returncode != 0:
                    self._finish("failed", f"{explain_failure(step, returncode, output, self.plan)} {self._cleanup()}")
                    return
            self._write_marker()
            self._finish("succeeded", "")
        except OSError as exc:
            self._finish("failed", f"Could not run the set-up ({exc.strerror or exc}). {self._cleanup()}")

    def _execute(self, step: Step) -> tuple[int, list[str]]:
        output: list[str] = []
        with self._lock:
            if self._cancel.is_set():
                return -1, output
            self._process = subprocess.Popen(
                step.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace", env=self.env, creationflags=_NO_CONSOLE, start_new_session=os.name != "nt")
        assert self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip()
            output.append(line)
            self._lines.put(line)
        return self._process.wait(), output

    def _write_marker(self) -> None:
        marker = self.plan.env_dir / MARKER
        partial = marker.with_name(marker.name + ".partial")
        partial.write_text(json.dumps({"torch": self.plan.torch.name, "index_url": self.plan.torch.index_url,
                                       "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                       "steps": [s.name for s in self.steps]}, indent=1))
        partial.replace(marker)

    def _cleanup(self) -> str:
        if self._created and self.plan.env_dir.exists():
            shutil.rmtree(self.plan.env_dir, ignore_errors=True)
            return f"the partial environment {self.plan.env_dir} was removed."
        return "nothing was changed."

    def _finish(self, state: str, error: str) -> None:
        self.error = error.strip()
        self._lines.put(self.error or "The engine environment is ready.")
        self.state = state


def _kill_tree(process: subprocess.Popen) -> None:
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True,
                       creationflags=_NO_CONSOLE)
    else:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
