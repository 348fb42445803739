"""``medsynth generate --nproc K`` and the engine's ``--gpus``: K worker processes on this machine, started as
torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), watched by this process.

This process makes no case itself: it reports the cases all workers have journalled (one progress line), passes a
Ctrl-C or a cancel on to the workers (they keep their finished cases for ``--resume``), and when a worker dies it
stops the others and removes the unfinished set, so a crash never leaves a set or a half-written folder behind.
What the workers do is ``generate.generate_set`` with their ``sharding.World``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import MedSynthError
from .journal import Journal, RunStopped, temporary_folder
from .progress import JournalWatch
from .setwriter import SetWriter
from .sharding import EXIT_PEER, PeerFailed, World, fail_on_sigterm

if TYPE_CHECKING:
    from .generate import GenerateRequest

__all__ = ["run_workers", "worker_main", "MAX_WORKERS"]

MAX_WORKERS = 64
_DEVICE_VARIABLE = "MEDSYNTH_WORKER_DEVICE"  # the engine's --gpus: each worker's own device
_GRACE_S = 30.0  # how long stopped workers get to leave cleanly before they are killed
_POLL_S = 0.2


def run_workers(
    request: GenerateRequest,
    devices: Sequence[str | None],
    progress: Callable[[int, int], None] | None = None,
    stopped: Callable[[], bool] | None = None,
    resumed: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate ``request``'s set with one worker process per entry of ``devices`` (None: the request's device,
    a CUDA run giving each worker its own GPU); returns the published set. ``resumed(kept, n)`` is called first when
    a ``--resume`` finds journalled cases (rank 0 then verifies them and makes again any that changed).

    Raises ``MedSynthError`` with one sentence when a worker fails, ``KeyboardInterrupt`` on Ctrl-C and
    ``RunStopped`` when ``stopped()`` turns true (both after the workers have kept their finished cases).
    """
    request.validate()
    count = len(devices)
    if not 1 <= count <= MAX_WORKERS:
        raise MedSynthError(f"The number of worker processes must be 1 to {MAX_WORKERS}, not {count}.")
    if request.cohort is not None or request.balance is not None:
        raise MedSynthError("Cohort runs (--cohort, --balance) use one process for now; leave out --nproc.")
    out = Path(request.out).absolute()
    tmp = temporary_folder(out)
    # a non-empty target or a leftover run is refused here, in one sentence, before any worker starts (writes nothing)
    SetWriter(out, request.layout, request.channels, workers=1, resume=request.resume, discard=request.discard)
    kept = Journal(tmp / "journal").count() if request.resume else 0
    if kept and resumed:
        resumed(kept, request.n)
    folder = Path(tempfile.mkdtemp(prefix="medsynth-workers-"))
    try:
        spec = folder / "request.json"
        spec.write_text(json.dumps(_request_document(request)))
        workers = [_start(spec, folder, rank, count, port, device) for rank, device, port in _ranks(devices)]
        with JournalWatch(Journal(tmp / "journal").count, request.n, progress or (lambda done, total: None)):
            failed = _wait(workers, stopped)
        if failed is None:
            if progress:
                progress(request.n, request.n)
            return out
        rank, code = failed
        reason = _reason(folder / f"{rank}.log", code)
        if code == 2:  # the worker's own sentence: it has kept or removed the temporary folder as one process would
            raise MedSynthError(reason)
        shutil.rmtree(tmp, ignore_errors=True)
        raise MedSynthError(f"Worker {rank} of {count} {reason}; nothing was published and the unfinished set was removed.")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ranks(devices: Sequence[str | None]) -> list[tuple[int, str | None, int]]:
    port = _free_port()
    return [(rank, device, port) for rank, device in enumerate(devices)]


def _start(spec: Path, folder: Path, rank: int, count: int, port: int, device: str | None) -> subprocess.Popen:
    env = {
        **os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(count), "LOCAL_WORLD_SIZE": str(count),
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
    }
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))
    if device:
        env[_DEVICE_VARIABLE] = device
    with open(folder / f"{rank}.log", "w") as log:
        # its own session: a Ctrl-C reaches this process, which passes it on once, after which the worker cleans up
        return subprocess.Popen([sys.executable, "-m", "medsynth_engine.launch", str(spec)], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def _wait(workers: list[subprocess.Popen], stopped: Callable[[], bool] | None) -> tuple[int, int] | None:
    """Wait for every worker; the first that failed on its own (rank, exit code), else None."""
    try:
        while True:
            codes = [worker.poll() for worker in workers]
            if all(code == 0 for code in codes):
                return None
            if stopped is not None and stopped():
                _stop(workers, signal.SIGINT)
                raise RunStopped
            failed = [(rank, code) for rank, code in enumerate(codes) if code not in (None, 0, EXIT_PEER)]
            if not failed and None not in codes:  # every worker ended, none said it was the cause
                failed = [(rank, code) for rank, code in enumerate(codes) if code != 0]
            if failed:
                _stop(workers, signal.SIGTERM)
                return failed[0]
            time.sleep(_POLL_S)
    except KeyboardInterrupt:
        _stop(workers, signal.SIGINT)
        raise


def _stop(workers: list[subprocess.Popen], sig: signal.Signals) -> None:
    """Signal the workers still running and wait for them to leave (killing any that hang past the grace time)."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(sig)
    deadline = time.monotonic() + _GRACE_S
    for worker in workers:
        try:
            worker.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _reason(log: Path, code: int) -> str:
    """What a failed worker said (its error sentence), or how it died."""
    if code == 2:
        for line in reversed(log.read_text(errors="replace").splitlines()):
            if line.startswith("medsynth: error: "):
                return line.removeprefix("medsynth: error: ")
        return "A worker failed without saying why."
    if code == EXIT_PEER:
        return "stopped because another worker failed"
    if code < 0:
        try:
            return f"died ({signal.Signals(-code).name})"
        except ValueError:
            return f"died (signal {-code})"
    return f"stopped with exit code {code}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request_document(request: GenerateRequest) -> dict[str, Any]:
    return {f.name: (str(v) if isinstance(v, Path) else v) for f in dataclasses.fields(request) for v in [getattr(request, f.name)]}


def _request_from(document: dict[str, Any]) -> GenerateRequest:
    from .generate import GenerateRequest

    fields = dict(document)
    for name in ("out", "audit_against", "mask", "like"):
        if fields.get(name) is not None:
            fields[name] = Path(fields[name])
    if isinstance(fields.get("cohort"), str):
        fields["cohort"] = Path(fields["cohort"])
    for name in ("channels", "shape", "spacing"):
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
    return GenerateRequest(**fields)


def worker_main(argv: Sequence[str]) -> int:
    """One worker started by ``run_workers``: its share of the set, then rank 0 publishes it."""
    fail_on_sigterm(quiet=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a parent started in the background hands SIGINT ignored
    try:
        from .generate import generate_set
        from .registry import default_registry

        request = _request_from(json.loads(Path(argv[0]).read_text()))
        request.device = os.environ.get(_DEVICE_VARIABLE) or request.device
        generate_set(request, default_registry(), world=World.from_env())
    except PeerFailed as exc:
        if not exc.quiet:
            print(f"medsynth: error: {exc}", file=sys.stderr)
        return EXIT_PEER
    except MedSynthError as exc:
        print(f"medsynth: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
