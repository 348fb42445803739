"""The child process that runs one long job: ``python -m medsynth_engine.jobs.worker JOB_DIR``.

Fine-tune, export, add-channel and add-tumour jobs run here, each in its own process, so cancelling one kills
its whole tree at once (a network forward pass cannot be interrupted from a thread).

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
import time
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


def run_finetune_task(params: dict[str, Any], stop: threading.Event, job_dir: Path) -> dict[str, Any]:
    from ..training.finetune import FinetuneRequest, run_finetune

    request = FinetuneRequest(**finetune_fields(params))
    if stop.is_set():  # cancelled while starting up: nothing to checkpoint yet
        raise _Stopped

    def progress(info: dict[str, Any]) -> None:
        _emit({"progress": info})

    folder = run_finetune(request, progress=progress, should_stop=stop.is_set)
    return {"output_dir": str(folder), "stopped": stop.is_set()}


def finetune_fields(params: dict[str, Any]) -> dict[str, Any]:
    """FinetuneRequest keyword arguments from job parameters: unset ones left to its defaults, paths as Path.

    Channels stay a string or list, which ``FinetuneRequest.validate`` parses (and checks).
    """
    fields = {k: v for k, v in params.items() if v is not None}
    for name in ("data", "out"):
        if name in fields:
            fields[name] = Path(fields[name])
    return fields


def run_export_task(params: dict[str, Any], stop: threading.Event, job_dir: Path) -> dict[str, Any]:
    from ..relayout import export_set

    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        _emit({"progress": {"step": done, "total": total, "message": f"case {done}/{total}"}})
        if stop.is_set():
            raise _Stopped

    audit_against = Path(params["audit_against"]) if params.get("audit_against") else None
    out = export_set(
        Path(params["source"]), Path(params["out"]), layout=params["layout"], channels=params.get("channels"), progress=progress,
        audit_against=audit_against, audit_threshold=params.get("audit_threshold", 0.5),
    )
    return {"output_dir": str(out), "seconds": round(time.monotonic() - started, 3)}


def _fraction_progress(stop: threading.Event):
    """A ``progress(fraction, message)`` callback that reports to the engine and stops at the next call after cancel."""

    def progress(fraction: float, message: str) -> None:
        _emit({"progress": {"fraction": float(fraction), "message": str(message)}})
        if stop.is_set():
            raise _Stopped

    return progress


def _request_fields(params: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    fields = {k: v for k, v in params.items() if v is not None}
    for name in paths:
        if name in fields:
            fields[name] = Path(fields[name])
    return fields


def run_add_channel_task(params: dict[str, Any], stop: threading.Event, job_dir: Path) -> dict[str, Any]:
    from ..addchannel import AddChannelRequest, add_channel

    request = AddChannelRequest(**_request_fields(params, ("case", "out")))
    return add_channel(request, progress=_fraction_progress(stop))


def run_add_tumour_task(params: dict[str, Any], stop: threading.Event, job_dir: Path) -> dict[str, Any]:
    from ..tumour import AddTumourRequest, add_tumour
    from .masks import outline_to_tumour

    fields = _request_fields(params, ("case", "mask", "out"))
    if fields.pop("outline", False):
        _emit({"log": "Turning the drawn outline into a tumour (core, rim, oedema)."})
        fields["mask"] = outline_to_tumour(fields["mask"], job_dir / "tumour-mask.nii.gz")
    return add_tumour(AddTumourRequest(**fields), progress=_fraction_progress(stop))


def run_prepare_task(params: dict[str, Any], stop: threading.Event, job_dir: Path) -> dict[str, Any]:
    from ..prepare import PrepareRequest, prepare

    fields = _request_fields(params, ("input", "out", "sequences", "keep_key"))
    fields["spacing_mm"] = fields.pop("spacing", 1.0)
    return prepare(PrepareRequest(**fields, log=lambda message: _emit({"log": message})), progress=_fraction_progress(stop))


class _Stopped(Exception):
    pass


TASKS = {
    "finetune": run_finetune_task, "export": run_export_task,
    "add-channel": run_add_channel_task, "add-tumour": run_add_tumour_task, "prepare": run_prepare_task,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_dir = Path(argv[0])
    task = json.loads((job_dir / "task.json").read_text())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=_watch_parent, args=(stop,), daemon=True).start()
    try:
        result = TASKS[task["kind"]](task["params"], stop, job_dir)
    except _Stopped:
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
