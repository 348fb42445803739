"""The scheduler: prepares a job on submission, queues it, runs it in its lane, and records every change.

What a job does is its kind's (``jobs/kinds/``); this module only knows a kind's lane and where it runs.
Jobs of one lane run one at a time, lanes side by side: ``generate`` in the engine with the warm models,
``finetune`` per device and the others per kind, in worker processes (``supervise.py``). A job's ``result``
holds what it made. Cancelling a worker job asks it to stop (a fine-tune writes a checkpoint), then kills
its whole process tree after ``cancel_grace`` seconds.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..errors import MedSynthError
from ..killpoint import killpoint
from ..modelfile import write_atomic
from ..registry import ModelRegistry
from .kinds import job_kinds
from .modelcache import ModelCache
from .paths import PathPolicy
from .report import ProgressReport
from .retention import Retention, apply_retention, delete_job, remove_orphan_folders
from .spec import Conflict, JobKind, JobStopped, PrepareContext, RunContext
from .store import JobConflict, JobNotFound, JobStore, new_job_id
from .supervise import Running, kill_stale_worker, run_in_worker, stop_process

__all__ = ["JobRunner", "JobNotFound", "JobConflict"]


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
        requeue_interrupted: bool = True,
        retention: Retention | None = None,
        devices: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.cache = ModelCache(registry, max_models, max_model_bytes)
        self.policy = policy
        self.default_device = default_device
        self.devices = tuple(devices)  # --gpus: generate jobs share their cases over these, one worker process each
        self.cancel_grace = cancel_grace
        self.python = python
        self.requeue_interrupted = requeue_interrupted  # jobs of journalled kinds a dead engine left running queue again
        self.kinds = job_kinds()
        self.retention = retention or Retention()
        self._cond = threading.Condition()
        self._queue: list[str] = []
        self._lanes: dict[str, str] = {}
        self._busy: set[str] = set()
        self._running: dict[str, Running] = {}
        self._ended_at: float | None = None  # time.monotonic() when the last job ended (heap.IdleRelease)
        self._stopping = False
        self._recover()
        remove_orphan_folders(self.store, self.jobs_dir)
        apply_retention(self.store, self.jobs_dir, self.retention)
        self._dispatcher = threading.Thread(target=self._dispatch, name="medsynth-dispatch", daemon=True)
        self._dispatcher.start()

    # -- submission -------------------------------------------------------------------------------------

    def submit(self, kind: str, params: dict[str, Any] | BaseModel) -> dict[str, Any]:
        """Check ``params`` for ``kind``, create the job and queue it.

        Malformed params raise pydantic's ValidationError (422); a request that cannot work raises a
        MedSynthError: Forbidden, Missing, or Conflict (any other refusal of its preparation becomes one).
        Preparation never loads a model: a model's own limits are checked when the job starts.
        """
        spec = self._kind(kind)
        checked = params if isinstance(params, spec.params) else spec.params.model_validate(params)
        job_id = new_job_id()
        job_dir = self.jobs_dir / job_id
        job_dir.mkdir(parents=True)
        killpoint("jobs.folder")
        context = PrepareContext(
            job_dir, self.policy, self.store, tuple(self.registry.ids()), self.default_device, generate_options=self.registry.generate_options
        )
        try:
            prepared = spec.prepare(checked, context)
        except MedSynthError as exc:
            shutil.rmtree(job_dir, ignore_errors=True)
            if type(exc) is MedSynthError:  # a tool's own check (layout, channels, target folder...)
                raise Conflict(str(exc)) from None
            raise
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        write_atomic(job_dir / "task.json", json.dumps({"kind": kind, "params": prepared.params}).encode())
        killpoint("jobs.task")
        job = self.store.create(kind, prepared.params, prepared.output_dir, job_id=job_id)
        killpoint("jobs.created")
        with self._cond:
            self._lanes[job_id] = spec.lane(prepared.params)
            self._queue.append(job_id)
            self._cond.notify_all()
        return job

    def _kind(self, name: str) -> JobKind:
        if name not in self.kinds:
            raise MedSynthError(f"Unknown job kind '{name}'; use {', '.join(self.kinds)}.")
        return self.kinds[name]

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
        if self._kind(job["kind"]).runs_in == "engine":
            handle.done.wait(2.0)  # stops at its next safe point (generate: after the case being made)
        else:
            if handle.proc is not None:  # else the worker is being started and is stopped as soon as it is
                stop_process(handle.proc, self.cancel_grace)
            handle.done.wait(self.cancel_grace + 30)
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Remove a finished job and its folder (``retention.delete_job``); a queued or running one is refused."""
        with self._cond:  # not while the dispatcher starts it
            if job_id in self._queue or job_id in self._running:
                raise JobConflict(f"Job {job_id} is {self.get(job_id)['state']}; cancel it first, then delete it.")
            delete_job(self.store, self.jobs_dir, job_id)

    def resume(self, job_id: str) -> dict[str, Any]:
        """Queue an interrupted or cancelled job of a resumable kind again: a fine-tune continues from its last
        checkpoint, a generate or export from its set's journal (the cases it finished are kept)."""
        job = self.get(job_id)
        spec = self._kind(job["kind"])
        if spec.resume is None:
            resumable = ", ".join(name for name, kind in self.kinds.items() if kind.resume is not None)
            raise JobConflict(f"Job {job_id} is a {job['kind']} job; only {resumable} jobs resume, submit it again instead.")
        with self._cond:
            job = self.get(job_id)  # again, under the lock: two resumes at once must not queue it twice
            if job_id in self._running or job_id in self._queue or job["state"] not in ("interrupted", "cancelled"):
                raise JobConflict(f"Job {job_id} is {job['state']}; only interrupted or cancelled jobs can be resumed.")
            params = spec.resume(dict(job["params"]), self.jobs_dir / job_id)
            self._requeue(job, params, spec.resumed_message if params.get("resume") else "Queued to start again.")
        return self.get(job_id)

    def _requeue(self, job: dict[str, Any], params: dict[str, Any], message: str) -> None:
        """Queue a job again with ``params`` (the caller holds the lock or is still starting up)."""
        job_id, job_dir = job["id"], self.jobs_dir / job["id"]
        self.store.update(
            job_id, state="queued", params=params, error=None, progress=job["progress"], metrics={}, result={}, message=message,
            worker_pid=None, worker_started=None,
        )
        job_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(job_dir / "task.json", json.dumps({"kind": job["kind"], "params": params}).encode())
        self._lanes[job_id] = self._kind(job["kind"]).lane(params)
        self._queue.append(job_id)
        self._cond.notify_all()

    def shutdown(self, wait: float = 3.0) -> None:
        """Stop everything: running jobs end as ``interrupted`` (fine-tunes checkpoint first if they can).

        Worker processes get ``cancel_grace`` seconds, then are killed; an in-engine job gets ``wait`` seconds
        to reach its next safe point, else it stays ``running`` on disk and the next start queues it again to
        continue from its journal (or marks it interrupted).
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
                stop_process(handle.proc, self.cancel_grace)
        deadline = time.monotonic() + wait
        for handle in handles:
            handle.done.wait(max(0.0, deadline - time.monotonic()))

    def last_active(self) -> float | None:
        """``time.monotonic()`` of the last moment a job ran (now while one runs); None before the first."""
        with self._cond:
            return time.monotonic() if self._running else self._ended_at

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
                    handle = Running(job_id, lane)
                    self._running[job_id] = handle
                    self.store.update(job_id, state="running", message="Started.", worker_pid=None, worker_started=None)
                    killpoint("jobs.running")
                    threading.Thread(target=self._run, args=(handle,), name=f"medsynth-{job_id}", daemon=True).start()

    def _startable(self) -> list[str]:
        return [job_id for job_id in self._queue if self._lanes[job_id] not in self._busy]

    def _run(self, handle: Running) -> None:
        job = self.store.get(handle.job_id)
        job_dir = self.jobs_dir / handle.job_id
        outcome: dict[str, Any]
        try:
            if self._kind(job["kind"]).runs_in == "engine":
                outcome = self._run_in_engine(handle, job, job_dir)
            else:
                outcome = run_in_worker(handle, job_dir, self.store, self.python, self.cancel_grace)
        except JobStopped:
            outcome = {}
        except MedSynthError as exc:
            outcome = {"error": str(exc)}
        except Exception as exc:  # a bug must end as a failed job with its reason, not a silent thread death
            outcome = {"error": f"The job failed unexpectedly ({exc.__class__.__name__}: {exc})."}
        self._record_end(handle, outcome)
        with self._cond:  # the lane is freed only once the job reads ended, so a lane never shows two running
            self._running.pop(handle.job_id, None)
            self._ended_at = time.monotonic()
            self._busy.discard(handle.lane)
            self._cond.notify_all()
        handle.done.set()
        with self._cond:  # a job being resumed or queued is not finished any more: the lock keeps it
            apply_retention(self.store, self.jobs_dir, self.retention)

    def _record_end(self, handle: Running, outcome: dict[str, Any]) -> None:
        if handle.reason == "cancel":
            fields = {"state": "cancelled", "message": "Cancelled."}
        elif handle.reason == "shutdown":
            fields = {"state": "interrupted", "message": "The engine stopped while this job ran."}
        elif "error" in outcome:
            fields = {"state": "failed", "message": "Failed.", "error": outcome["error"]}
        else:
            fields = {"state": "succeeded", "message": self._done_message(handle, outcome.get("result")), "progress": 1.0}
        if isinstance(outcome.get("result"), dict):
            fields["result"] = outcome["result"]
        self.store.update(handle.job_id, worker_pid=None, worker_started=None, **fields)
        killpoint("jobs.ended")

    def _done_message(self, handle: Running, result: Any) -> str:
        """A succeeded job's message: its kind's ``done_message`` of the result (a broken one must not fail the job)."""
        kind = self._kind(self.store.get(handle.job_id)["kind"])
        if kind.done_message is None or not isinstance(result, dict):
            return "Done."
        try:
            return kind.done_message(result)
        except Exception:  # noqa: BLE001 - the job did succeed; the message is a courtesy
            return "Done."

    def _run_in_engine(self, handle: Running, job: dict[str, Any], job_dir: Path) -> dict[str, Any]:
        report = ProgressReport(self.store, handle.job_id)
        context = RunContext(
            job_dir=job_dir,
            progress=report,
            log=lambda line: self.store.append_log(handle.job_id, [line]),
            stopped=handle.stop.is_set,
            models=self.cache,
            devices=self.devices,
        )
        try:
            result = self._kind(job["kind"]).run(job["params"], context)
        finally:
            report.flush()
        return {"result": result}

    def _recover(self) -> None:
        """After a restart: leftover workers of running jobs are killed; jobs of journalled kinds (generate, export)
        queue again to continue from their journals (unless ``requeue_interrupted`` is off), the rest become
        interrupted; queued ones queue again."""
        for job_id in self.store.ids_in_state("running"):
            pid, started = self.store.worker(job_id)
            if pid is not None:
                kill_stale_worker(pid, started, self.cancel_grace)
            job = self.store.get(job_id)
            spec = self.kinds.get(job["kind"])
            if spec is not None and spec.requeue_on_restart and spec.resume is not None and self.requeue_interrupted:
                params = spec.resume(dict(job["params"]), self.jobs_dir / job_id)
                with self._cond:
                    self._requeue(job, params, "The engine stopped while this job ran; queued again to continue from its journal.")
                continue
            self.store.update(
                job_id,
                state="interrupted",
                worker_pid=None,
                worker_started=None,
                message="The engine stopped while this job ran; resume it to continue.",
            )
        for job_id in self.store.ids_in_state("queued"):
            if job_id in self._queue:  # re-queued just above
                continue
            job = self.store.get(job_id)
            if job["kind"] not in self.kinds:  # queued by an engine version with more kinds
                self.store.update(job_id, state="failed", message="Failed.",
                                  error=f"This engine cannot run {job['kind']} jobs; start the engine version that queued it.")
                continue
            self._lanes[job_id] = self.kinds[job["kind"]].lane(job["params"])
            self._queue.append(job_id)

