"""The scheduler: checks a job on submission, queues it, runs it in its lane, and records every change.

Lanes keep heavy work apart: ``generate`` jobs run one at a time inside the engine (warm models);
``finetune`` jobs run one at a time per device (``device:cuda:0``...) in child processes; ``export``,
``add-channel`` and ``add-tumour`` jobs run one at a time per kind in child processes (a network pass cannot
be stopped from a thread, a process can). Jobs of different lanes run side by side; the rest queue. A job's
``result`` holds what it made (``written`` files for the add-* jobs).
Cancelling a child-process job asks it to stop (a fine-tune writes a checkpoint), then kills its whole
process tree after ``cancel_grace`` seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from MedSynthLib.conventions import parse_channels

from .. import __file__ as _package_file
from ..device import select_device
from ..errors import MedSynthError
from ..export import SetWriter
from ..generate import GenerateRequest, generate_set
from ..registry import ModelRegistry
from .modelcache import ModelCache
from .params import AddChannelParams, AddTumourParams, ExportParams, FinetuneParams, GenerateParams
from .paths import PathPolicy
from .prepare_kind import check_prepare
from .store import JobConflict, JobNotFound, JobStore, new_job_id
from .worker import EXIT_DONE, finetune_fields

__all__ = ["JobRunner", "JobNotFound", "JobConflict"]

#: Seconds between progress writes to the store (the last one is always written).
PROGRESS_INTERVAL = 0.25


class _Cancelled(Exception):
    pass


@dataclass
class _Running:
    job_id: str
    lane: str
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    proc: subprocess.Popen | None = None
    done: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    """Owns the queue and the running jobs of one engine."""

    def __init__(
        self,
        store: JobStore,
        jobs_dir: Path,
        registry: ModelRegistry,
        policy: PathPolicy,
        *,
        default_device: str | None = None,
        max_models: int = 2,
        max_model_bytes: int | None = None,
        cancel_grace: float = 5.0,
        python: str = sys.executable,
    ) -> None:
        self.store = store
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.cache = ModelCache(registry, max_models, max_model_bytes)
        self.policy = policy
        self.default_device = default_device
        self.cancel_grace = cancel_grace
        self.python = python
        self._cond = threading.Condition()
        self._queue: list[str] = []
        self._lanes: dict[str, str] = {}
        self._busy: set[str] = set()
        self._running: dict[str, _Running] = {}
        self._stopping = False
        self._recover()
        self._dispatcher = threading.Thread(target=self._dispatch, name="medsynth-dispatch", daemon=True)
        self._dispatcher.start()

    # -- submission -------------------------------------------------------------------------------------

    def submit(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Check ``params`` for ``kind``, create the job and queue it; MedSynthError if they cannot work."""
        job_id = new_job_id()
        job_dir = self.jobs_dir / job_id
        job_dir.mkdir(parents=True)
        try:
            prepare = {
                "generate": self._prepare_generate, "finetune": self._prepare_finetune, "export": self._prepare_export,
                "add-channel": self._prepare_add_channel, "add-tumour": self._prepare_add_tumour,
                "prepare": lambda raw, job_dir: check_prepare(raw, job_dir, self.policy),
            }
            if kind not in prepare:
                raise MedSynthError(f"Unknown job kind '{kind}'; use {', '.join(prepare)}.")
            stored, output_dir = prepare[kind](params, job_dir)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        (job_dir / "task.json").write_text(json.dumps({"kind": kind, "params": stored}))
        job = self.store.create(kind, stored, output_dir, job_id=job_id)
        with self._cond:
            self._lanes[job_id] = _lane(kind, stored)
            self._queue.append(job_id)
            self._cond.notify_all()
        return job

    def _prepare_generate(self, raw: dict[str, Any], job_dir: Path) -> tuple[dict[str, Any], Path]:
        params = GenerateParams.model_validate(raw)
        model = self._model_ref(params.model)
        out = self.policy.check(params.out, "out") if params.out else job_dir / "output"
        mask = None
        if params.mask is not None:
            mask = self._input_file(params.mask, "mask")
        elif params.outline:
            raise MedSynthError("'outline' describes a mask; give the mask too (or leave outline out).")
        request = GenerateRequest(
            model=model,
            n=params.n,
            seed=params.seed,
            out=out,
            channels=params.channels,
            layout=params.layout,
            shape=tuple(params.shape) if params.shape else None,
            spacing=tuple(params.spacing) if params.spacing else None,
            tumour=params.tumour,
            device=params.device or self.default_device,
            **_mask_field(mask),
        )
        request.validate()
        plugin = self.cache.get(model)
        shape = tuple(request.shape or plugin.card.shape)
        spacing = tuple(request.spacing or plugin.card.spacing)
        plugin.check_request(channels=request.channels, shape=shape, spacing=spacing)
        select_device(request.device)
        SetWriter(out, request.layout, request.channels, workers=1)  # checks layout, channels and target; writes nothing
        stored = params.model_dump()
        stored.update(model=model, out=str(out), channels=list(request.channels), device=request.device)
        stored["mask"] = str(mask) if mask is not None else None
        return stored, out

    def _input_file(self, path: str, what: str) -> Path:
        checked = self.policy.check(path, what)
        if not checked.is_file():
            raise MedSynthError(f"The {what} file {checked} does not exist; give a NIfTI file this engine may read.")
        return checked

    def _prepare_add_channel(self, raw: dict[str, Any], job_dir: Path) -> tuple[dict[str, Any], Path]:
        params = AddChannelParams.model_validate(raw)
        case = self.policy.check(params.case, "case")
        if not case.exists():
            raise MedSynthError(f"The case {case} does not exist; give a case folder or a NIfTI file this engine may read.")
        out = self.policy.check(params.out, "out") if params.out else None
        if case.is_dir() and not params.replace:
            target = (out or case) / f"{case.name}_{params.channel}.nii.gz"
            if target.exists():
                raise MedSynthError(f"{target} already exists; add the channel with replace, or choose another out folder.")
        model = params.model
        if model is not None and Path(os.path.expanduser(model)).is_absolute():
            model = str(self.policy.check(model, "model"))
        device = select_device(params.device or self.default_device)
        stored = params.model_dump()
        stored.update(case=str(case), out=str(out) if out else None, model=model, device=_device_name(device))
        return stored, out or (case if case.is_dir() else case.parent)

    def _prepare_add_tumour(self, raw: dict[str, Any], job_dir: Path) -> tuple[dict[str, Any], Path]:
        params = AddTumourParams.model_validate(raw)
        case = self.policy.check(params.case, "case")
        if not case.is_dir():
            raise MedSynthError(f"The case folder {case} does not exist; give a BraTS-style case folder this engine may read.")
        mask = self._input_file(params.mask, "mask")
        out = self.policy.check(params.out, "out") if params.out else job_dir / "output"
        if out == case or out.is_relative_to(case):
            raise MedSynthError(f"The out folder {out} is inside the case folder; choose a new or empty folder elsewhere.")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise MedSynthError(f"{out} is not empty; choose a new or empty out folder (nothing is overwritten).")
        model = self._model_ref(params.model)
        device = select_device(params.device or self.default_device)
        stored = params.model_dump()
        stored.update(case=str(case), mask=str(mask), out=str(out), model=model, device=_device_name(device))
        return stored, out

    def _prepare_finetune(self, raw: dict[str, Any], job_dir: Path) -> tuple[dict[str, Any], Path]:
        params = FinetuneParams.model_validate(raw)
        try:
            from ..training.finetune import FinetuneRequest
        except ImportError:
            raise MedSynthError("Fine-tuning is not available in this engine (medsynth_engine.training is not installed).") from None
        # A name (pgan3d, pgan3d-phantom...) is the fine-tune's to judge; a folder must be one this engine may read.
        model = str(self.policy.check(params.model, "model")) if Path(os.path.expanduser(params.model)).is_absolute() else params.model
        data = self.policy.check(params.data, "data")
        if not data.is_dir():
            raise MedSynthError(f"The training data folder {data} does not exist.")
        out = self.policy.check(params.out, "out") if params.out else job_dir / "model"
        if params.resume and not self._has_checkpoint(job_dir.name, out):
            raise MedSynthError(f"{out} holds no checkpoint to resume; submit the fine-tune without resume.")
        if not params.resume and out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise MedSynthError(f"{out} is not empty; choose a new folder for the model, or resume the run in it.")
        device = select_device(params.device or self.default_device)
        stored = params.model_dump()
        stored.update(model=model, data=str(data), out=str(out), device=_device_name(device))
        try:
            FinetuneRequest(**finetune_fields(stored)).validate()
        except (TypeError, ValueError) as exc:
            raise MedSynthError(f"The fine-tune parameters are not valid: {exc}.") from None
        return stored, out

    def _model_ref(self, model: str) -> str:
        """A registered model id as it is, or the checked absolute path of a model folder."""
        if model in self.registry.ids():
            return model
        if not Path(os.path.expanduser(model)).is_absolute():
            known = ", ".join(self.registry.ids())
            raise MedSynthError(f"Unknown model '{model}'; known models: {known} (or give the absolute path of a model folder).")
        return str(self.policy.check(model, "model"))

    def _prepare_export(self, raw: dict[str, Any], job_dir: Path) -> tuple[dict[str, Any], Path]:
        from ..relayout import read_set_manifest

        params = ExportParams.model_validate(raw)
        if (params.source is None) == (params.job is None):
            raise MedSynthError("An export job needs exactly one of 'source' (a set folder) or 'job' (a finished job's id).")
        if params.job is not None:
            source_job = self.store.get(params.job)
            if source_job is None:
                raise MedSynthError(f"There is no job '{params.job}' to export from.")
            if source_job["state"] != "succeeded":
                raise MedSynthError(f"Job {params.job} has not succeeded ({source_job['state']}); only finished sets can be exported.")
            source = Path(source_job["output_dir"])
        else:
            source = self.policy.check(params.source, "source")
        manifest = read_set_manifest(source)
        out = self.policy.check(params.out, "out") if params.out else job_dir / "output"
        try:
            channels = parse_channels(params.channels if params.channels is not None else manifest["channels"])
        except ValueError as exc:
            raise MedSynthError(str(exc)) from None
        missing = [c for c in channels if c not in manifest["channels"]]
        if missing:
            raise MedSynthError(f"The source set has no {', '.join(missing)} channel; it holds {', '.join(manifest['channels'])}.")
        SetWriter(out, params.layout, channels, workers=1)  # checks layout, channels and target; writes nothing
        stored = params.model_dump()
        stored.update(source=str(source), out=str(out))
        if params.audit_against is not None:
            from ..evaluate.gate import audit_channels

            train = self.policy.check(params.audit_against, "audit_against")
            audit_channels(channels, train)  # refuses a training set that cannot be audited against, before queueing
            stored["audit_against"] = str(train)
        return stored, out

    # -- control ------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any]:
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(f"There is no job '{job_id}'.")
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once, or stop a running one (killing its process tree if it has one)."""
        job = self.get(job_id)
        with self._cond:
            if job_id in self._queue:
                self._queue.remove(job_id)
                self.store.update(job_id, state="cancelled", message="Cancelled before it started.")
                return self.get(job_id)
            handle = self._running.get(job_id)
        if handle is None:
            raise JobConflict(f"Job {job_id} has already ended ({job['state']}); there is nothing to cancel.")
        handle.reason = handle.reason or "cancel"
        handle.stop.set()
        self.store.update(job_id, message="Cancelling.")
        if job["kind"] == "generate":
            handle.done.wait(2.0)  # stops after the case being made; the job reads cancelled then
        else:
            if handle.proc is not None:  # else the worker is being started and is stopped as soon as it is
                self._stop_process(handle.proc)
            handle.done.wait(self.cancel_grace + 30)
        return self.get(job_id)

    def resume(self, job_id: str) -> dict[str, Any]:
        """Queue an interrupted or cancelled fine-tune again; it continues from its last checkpoint."""
        job = self.get(job_id)
        if job["kind"] != "finetune":
            raise JobConflict(f"Job {job_id} is a {job['kind']} job; only fine-tunes resume, submit it again instead.")
        with self._cond:
            job = self.get(job_id)  # again, under the lock: two resumes at once must not queue it twice
            if job_id in self._running or job_id in self._queue or job["state"] not in ("interrupted", "cancelled"):
                raise JobConflict(f"Job {job_id} is {job['state']}; only interrupted or cancelled fine-tunes can be resumed.")
            params = dict(job["params"])
            params["resume"] = self._has_checkpoint(job_id, Path(params["out"]))
            self.store.update(
                job_id, state="queued", params=params, error=None, progress=job["progress"], metrics={}, result={},
                message="Queued to resume from its last checkpoint." if params["resume"] else "Queued to start again.",
            )
            (self.jobs_dir / job_id).mkdir(parents=True, exist_ok=True)
            (self.jobs_dir / job_id / "task.json").write_text(json.dumps({"kind": "finetune", "params": params}))
            self._lanes[job_id] = _lane("finetune", params)
            self._queue.append(job_id)
            self._cond.notify_all()
        return self.get(job_id)

    def _has_checkpoint(self, job_id: str, out: Path) -> bool:
        """Whether ``out`` holds a checkpoint; a job-owned folder without one is cleared so the run can start again."""
        from ..training.checkpoint import read_state

        try:
            if read_state(out) is not None:
                return True
        except MedSynthError:
            return True  # a damaged checkpoint: resuming reports it as the job's error
        if out.is_dir() and out.resolve().is_relative_to((self.jobs_dir / job_id).resolve()):
            shutil.rmtree(out, ignore_errors=True)
        return False

    def shutdown(self, wait: float = 3.0) -> None:
        """Stop everything: running jobs end as ``interrupted`` (fine-tunes checkpoint first if they can).

        Worker processes get ``cancel_grace`` seconds, then are killed; an in-engine generate job gets ``wait``
        seconds to reach the end of its case, else it stays ``running`` on disk and the next start marks it
        interrupted and removes its partial output.
        """
        with self._cond:
            self._stopping = True
            handles = list(self._running.values())
            self._cond.notify_all()
        for handle in handles:
            handle.reason = handle.reason or "shutdown"
            handle.stop.set()
        for handle in handles:
            if handle.proc is not None:
                self._stop_process(handle.proc)
        deadline = time.monotonic() + wait
        for handle in handles:
            handle.done.wait(max(0.0, deadline - time.monotonic()))

    # -- running --------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._startable():
                    self._cond.wait()
                if self._stopping:
                    return
                for job_id in self._startable():
                    lane = self._lanes[job_id]
                    if lane in self._busy:
                        continue
                    self._queue.remove(job_id)
                    self._busy.add(lane)
                    handle = _Running(job_id, lane)
                    self._running[job_id] = handle
                    self.store.update(job_id, state="running", message="Started.", worker_pid=None, worker_started=None)
                    threading.Thread(target=self._run, args=(handle,), name=f"medsynth-{job_id}", daemon=True).start()

    def _startable(self) -> list[str]:
        return [job_id for job_id in self._queue if self._lanes[job_id] not in self._busy]

    def _run(self, handle: _Running) -> None:
        job = self.store.get(handle.job_id)
        outcome: dict[str, Any]
        try:
            if job["kind"] == "generate":
                outcome = self._run_generate(handle, job)
            else:
                outcome = self._run_child(handle, job)
        except _Cancelled:
            outcome = {}
        except MedSynthError as exc:
            outcome = {"error": str(exc)}
        except Exception as exc:  # a bug must end as a failed job with its reason, not a silent thread death
            outcome = {"error": f"The job failed unexpectedly ({exc.__class__.__name__}: {exc})."}
        finally:
            with self._cond:
                self._running.pop(handle.job_id, None)
                self._busy.discard(handle.lane)
                self._cond.notify_all()
        if handle.reason == "cancel":
            fields = {"state": "cancelled", "message": "Cancelled."}
        elif handle.reason == "shutdown":
            fields = {"state": "interrupted", "message": "The engine stopped while this job ran."}
        elif "error" in outcome:
            fields = {"state": "failed", "message": "Failed.", "error": outcome["error"]}
        else:
            fields = {"state": "succeeded", "message": "Done.", "progress": 1.0}
        if isinstance(outcome.get("result"), dict):
            fields["result"] = outcome["result"]
        self.store.update(handle.job_id, worker_pid=None, worker_started=None, **fields)
        handle.done.set()

    def _run_generate(self, handle: _Running, job: dict[str, Any]) -> dict[str, Any]:
        params = job["params"]
        mask = Path(params["mask"]) if params.get("mask") else None
        if mask is not None and params.get("outline"):
            from .masks import outline_to_tumour

            self.store.append_log(handle.job_id, ["Turning the drawn outline into a tumour (core, rim, oedema)."])
            mask = outline_to_tumour(mask, self.jobs_dir / handle.job_id / "tumour-mask.nii.gz")
        request = GenerateRequest(
            model=params["model"],
            n=params["n"],
            seed=params["seed"],
            out=Path(params["out"]),
            channels=tuple(params["channels"]),
            layout=params["layout"],
            shape=tuple(params["shape"]) if params["shape"] else None,
            spacing=tuple(params["spacing"]) if params["spacing"] else None,
            tumour=params["tumour"],
            device=params["device"],
            **_mask_field(mask),
        )
        report = _Throttled(self.store, handle.job_id)
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            report(done / total, f"case {done}/{total}", {"step": done, "total": total, "seconds": round(time.monotonic() - started, 3)})
            if handle.stop.is_set():
                raise _Cancelled

        out = generate_set(request, _CacheAsRegistry(self.cache), progress=progress)
        report.flush()
        self.store.append_log(handle.job_id, [f"Wrote {request.n} case(s) to {request.out}."])
        return {"result": {"output_dir": str(out)}}

    def _run_child(self, handle: _Running, job: dict[str, Any]) -> dict[str, Any]:
        job_dir = self.jobs_dir / handle.job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(_import_roots()))
        with open(job_dir / "job.log", "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "medsynth_engine.jobs.worker", str(job_dir)],
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
        self.store.update(handle.job_id, worker_pid=proc.pid, worker_started=started, message="Running in a worker process.")
        if handle.stop.is_set():
            self._stop_process(proc)
        report = _Throttled(self.store, handle.job_id)
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
                    info = event["progress"]
                    total = info.get("total") or 0
                    if isinstance(info.get("fraction"), int | float):
                        fraction = min(1.0, max(0.0, float(info["fraction"])))
                    else:
                        fraction = min(1.0, float(info.get("step", 0)) / total) if total else 0.0
                    message = info.get("message") or (f"step {info.get('step')}/{total}" if total else "running")
                    report(fraction, str(message), info)
                elif "log" in event:
                    self.store.append_log(handle.job_id, [str(event["log"])])
                elif "error" in event:
                    outcome = {"error": str(event["error"])}
                elif "result" in event:
                    outcome = {"result": event["result"]}
        code = proc.wait()
        report.flush()
        if handle.reason:
            return {}
        if "error" in outcome:
            self.store.append_log(handle.job_id, _tail(job_dir / "job.log"))
            return outcome
        if code != EXIT_DONE or "result" not in outcome:
            self.store.append_log(handle.job_id, _tail(job_dir / "job.log"))
            return {"error": f"The worker process ended unexpectedly (exit code {code}); see the job log."}
        return outcome

    def _stop_process(self, proc: subprocess.Popen) -> None:
        """SIGTERM (a fine-tune checkpoints and returns), then after the grace time kill the whole tree."""
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
            proc.wait(self.cancel_grace)
        except subprocess.TimeoutExpired:
            pass
        _kill_all(tree)

    def _recover(self) -> None:
        """After a restart: running jobs become interrupted (their leftover workers killed); queued ones queue again."""
        for job_id in self.store.ids_in_state("running"):
            pid, started = self.store.worker(job_id)
            if pid is not None:
                _kill_stale_worker(pid, started, self.cancel_grace)
            job = self.store.get(job_id)
            if job["kind"] == "generate":
                _remove_partials(Path(job["output_dir"]))
            self.store.update(
                job_id,
                state="interrupted",
                worker_pid=None,
                worker_started=None,
                message="The engine stopped while this job ran; resume it (fine-tunes) or submit it again.",
            )
        for job_id in self.store.ids_in_state("queued"):
            job = self.store.get(job_id)
            self._lanes[job_id] = _lane(job["kind"], job["params"])
            self._queue.append(job_id)


class _CacheAsRegistry:
    """What ``generate_set`` needs of a registry (``get``), served from the warm cache."""

    def __init__(self, cache: ModelCache) -> None:
        self._cache = cache

    def get(self, model: str):
        return self._cache.get(model)


class _Throttled:
    """Writes progress to the store at most every PROGRESS_INTERVAL seconds."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self.last = 0.0
        self.pending: dict[str, Any] | None = None
        self.logged = ""

    def __call__(self, fraction: float, message: str, metrics: dict[str, Any]) -> None:
        self.pending = {"progress": max(0.0, min(1.0, fraction)), "message": message, "metrics": metrics}
        if time.monotonic() - self.last >= PROGRESS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            self.store.update(self.job_id, **self.pending)
            if self.pending["message"] != self.logged:
                self.logged = self.pending["message"]
                self.store.append_log(self.job_id, [self.logged])
            self.pending = None
            self.last = time.monotonic()


def _mask_field(mask: Path | None) -> dict[str, Any]:
    """``mask=...`` for GenerateRequest when a mask is given; a generate without one works on any engine version."""
    if mask is None:
        return {}
    if "mask" not in {f.name for f in dataclasses.fields(GenerateRequest)}:
        raise MedSynthError("This engine cannot generate from a tumour mask yet; update MedSynth.")
    return {"mask": mask}


def _lane(kind: str, params: dict[str, Any]) -> str:
    if kind == "finetune":
        return f"device:{params.get('device') or 'cpu'}"
    return kind


def _device_name(device: Any) -> str:
    if device.type == "cuda" and device.index is None:
        import torch

        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


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


def _kill_stale_worker(pid: int, started: float | None, grace: float) -> None:
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


def _remove_partials(out: Path) -> None:
    for partial in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []
