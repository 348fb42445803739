"""The child process that runs one long job: ``python -m medsynth_engine.jobs.worker JOB_DIR``.

Every kind that ``runs_in="worker"`` (fine-tune, export, add-channel, add-tumour) runs here, each job in its
own process, so cancelling one kills its whole tree at once (a network forward pass cannot be interrupted
from a thread).

It reads ``JOB_DIR/task.json`` (``{"kind", "params"}``) and reports on stdout, one JSON object per line:
``{"progress": {...}}``, ``{"log": "..."}``, then ``{"result": {...}}`` or ``{"error": "..."}``. SIGTERM,
or the engine going away, asks the job to stop at its next safe point (a fine-tune writes a checkpoint);
the engine kills the whole process tree if that takes too long.
Exit codes: 0 done, 2 refused (MedSynthError), 3 stopped on request, 1 crashed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from ..errors import MedSynthError

__all__ = ["main", "EXIT_DONE", "EXIT_REFUSED", "EXIT_STOPPED", "EXIT_CRASHED"]

EXIT_DONE, EXIT_CRASHED, EXIT_REFUSED, EXIT_STOPPED = 0, 1, 2, 3
_stdout_lock = threading.Lock()


def _emit(event: dict[str, Any]) -> None:
    with _stdout_lock:
        sys.stdout.write(json.dumps(event, default=str) + "\n")
        sys.stdout.flush()


def _watch_parent(stop: threading.Event) -> None:
    """Stop when the engine that started us is gone (killed engines must not leave trainers running)."""
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


def main(argv: list[str] | None = None) -> int:
    from .kinds import job_kinds
    from .spec import JobStopped, RunContext

    argv = sys.argv[1:] if argv is None else argv
    job_dir = Path(argv[0])
    task = json.loads((job_dir / "task.json").read_text())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=_watch_parent, args=(stop,), daemon=True).start()
    context = RunContext(
        job_dir=job_dir,
        progress=lambda info: _emit({"progress": info}),
        log=lambda line: _emit({"log": line}),
        stopped=stop.is_set,
    )
    try:
        result = job_kinds()[task["kind"]].run(task["params"], context)
    except JobStopped:
        _emit({"log": "Stopped on request."})
        return EXIT_STOPPED
    except MedSynthError as exc:
        _emit({"error": str(exc)})
        return EXIT_REFUSED
    except Exception as exc:  # report every crash as a job failure, with the traceback in the log
        traceback.print_exc()
        _emit({"error": f"The {task['kind']} job crashed ({exc.__class__.__name__}: {exc}); see the job log."})
        return EXIT_CRASHED
    _emit({"result": result})
    return EXIT_STOPPED if result.get("stopped") else EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
