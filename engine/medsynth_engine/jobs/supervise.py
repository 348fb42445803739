"""Worker processes: start one for a job, relay what it reports, stop it (and its whole tree) on cancel.

A worker (``python -m medsynth_engine.jobs.worker JOB_DIR``) reports one JSON object per stdout line; its
stderr and every line go to ``JOB_DIR/job.log``. Stopping sends SIGTERM (a fine-tune checkpoints and
returns), then kills the whole process tree after the grace time. After an engine crash, a worker it left
behind is found by pid and start time and stopped the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .. import __file__ as _package_file
from .report import ProgressReport
from .store import JobStore
from .worker import EXIT_DONE

__all__ = ["Running", "run_in_worker", "stop_process", "kill_stale_worker"]


@dataclass
class Running:
    """A job being run: why it is being stopped (``cancel``, ``shutdown``), and its worker process if it has one."""

    job_id: str
    lane: str
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    proc: subprocess.Popen | None = None
    done: threading.Event = field(default_factory=threading.Event)


def run_in_worker(handle: Running, job_dir: Path, store: JobStore, python: str, cancel_grace: float) -> dict[str, Any]:
    """Run the job in ``job_dir`` (its ``task.json``) in a worker process; ``{"result": ...}`` or ``{"error": ...}``."""
    job_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(_import_roots()))
    with open(job_dir / "job.log", "ab") as log:
        proc = subprocess.Popen(
            [python, "-m", "medsynth_engine.jobs.worker", str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    handle.proc = proc
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        started = None
    store.update(handle.job_id, worker_pid=proc.pid, worker_started=started, message="Running in a worker process.")
    if handle.stop.is_set():
        stop_process(proc, cancel_grace)
    report = ProgressReport(store, handle.job_id)
    outcome: dict[str, Any] = {}
    with open(job_dir / "job.log", "a", encoding="utf-8") as log:
        for raw in proc.stdout:
            log.write(raw.decode("utf-8", "replace"))
            log.flush()
            try:
                event = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # something in the worker printed to stdout; it is in the log file
            if not isinstance(event, dict):
                continue
            if "progress" in event and isinstance(event["progress"], dict):
                report(event["progress"])
            elif "log" in event:
                store.append_log(handle.job_id, [str(event["log"])])
            elif "error" in event:
                outcome = {"error": str(event["error"])}
            elif "result" in event:
                outcome = {"result": event["result"]}
    code = proc.wait()
    report.flush()
    if handle.reason:
        return {}
    if "error" in outcome:
        store.append_log(handle.job_id, _tail(job_dir / "job.log"))
        return outcome
    if code != EXIT_DONE or "result" not in outcome:
        store.append_log(handle.job_id, _tail(job_dir / "job.log"))
        return {"error": f"The worker process ended unexpectedly (exit code {code}); see the job log."}
    return outcome


def stop_process(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM (a fine-tune checkpoints and returns), then after ``grace`` seconds kill the whole tree."""
    try:
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    try:
        root.terminate()
    except psutil.NoSuchProcess:
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    _kill_all(tree)


def kill_stale_worker(pid: int, started: float | None, grace: float) -> None:
    """Stop a worker left running by an engine that died (if that pid is still the same process): SIGTERM, then kill."""
    try:
        process = psutil.Process(pid)
        if started is None or abs(process.create_time() - started) > 0.5:
            return
        tree = [process, *process.children(recursive=True)]
        process.terminate()
        psutil.wait_procs([process], timeout=grace)
    except psutil.NoSuchProcess:
        return
    _kill_all(tree)


def _import_roots() -> list[str]:
    """Folders that make ``medsynth_engine`` and ``MedSynthLib`` importable in a worker, wherever they live."""
    import MedSynthLib

    roots = [str(Path(_package_file).resolve().parents[1]), str(Path(MedSynthLib.__file__).resolve().parents[1])]
    extra = os.environ.get("PYTHONPATH")
    return roots + ([extra] if extra else [])


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=5)


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []
