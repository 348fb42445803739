"""What a job kind is: typed params, a preparation at submit, a run, and a lane; and what each step is given.

A kind is one module under ``jobs/kinds/`` holding one ``KIND = JobKind(...)``. The scheduler, the worker
process and the HTTP schema only ever go through this record, so adding a kind touches its own module and
the list in ``jobs/kinds/__init__.py``.

Refusals at submit carry the HTTP status a client can act on: ``Forbidden`` (403, a path outside the
folders this engine may use), ``Missing`` (404, an input file, folder, model or job that is not there) and
``Conflict`` (409, a well-formed request that cannot work with what is on disk or on this machine now: an
output that exists, an unavailable device). Malformed params are 422 from their schema.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from ..errors import MedSynthError
from ..journal import RunStopped

if TYPE_CHECKING:
    from .paths import PathPolicy
    from .store import JobStore

__all__ = [
    "JobKind", "Prepared", "PrepareContext", "RunContext", "JobStopped", "Forbidden", "Missing", "Conflict",
    "request_fields",
]


class Forbidden(MedSynthError):
    """A path outside the folders this engine may read or write (HTTP 403)."""


class Missing(MedSynthError):
    """An input that is not there: a file, a folder, a model or a job (HTTP 404)."""


class Conflict(MedSynthError):
    """A well-formed request that cannot work with the engine's files or devices as they are (HTTP 409)."""


class JobStopped(RunStopped):
    """Raised by a run when it was asked to stop (cancel or shutdown); the job ends cancelled or interrupted.

    A set writer left this way keeps its journalled temporary folder, so the job can be resumed."""


@dataclass(frozen=True)
class Prepared:
    """What preparation made of the params: the stored (absolute, checked) params and the job's output folder."""

    params: dict[str, Any]
    output_dir: Path


@dataclass(frozen=True)
class PrepareContext:
    """What a kind's preparation may use; it runs in the HTTP request thread, so it never loads a model."""

    job_dir: Path
    policy: PathPolicy
    store: JobStore
    model_ids: tuple[str, ...]
    default_device: str | None
    #: The ``generate`` options a model id or folder takes (the registry's ``generate_options``; loads no weights).
    generate_options: Callable[[str], tuple[str, ...]] | None = None

    def path(self, value: str | None, what: str) -> Path | None:
        """The checked absolute path of ``value`` (None stays None)."""
        return None if value is None else self.policy.check(value, what)

    def input_file(self, value: str, what: str) -> Path:
        checked = self.policy.check(value, what)
        if not checked.is_file():
            raise Missing(f"The {what} file {checked} does not exist; give a NIfTI file this engine may read.")
        return checked

    def model_ref(self, model: str) -> str:
        """A registered model id as it is, or the checked absolute path of a model folder."""
        if model in self.model_ids:
            return model
        if not Path(os.path.expanduser(model)).is_absolute():
            known = ", ".join(self.model_ids)
            raise Missing(f"Unknown model '{model}'; known models: {known} (or give the absolute path of a model folder).")
        return str(self.policy.check(model, "model"))

    def device(self, requested: str | None) -> str:
        """The device name jobs run on (``cuda:N`` for a bare ``cuda``); one this machine lacks is a Conflict."""
        from ..device import select_device

        try:
            device = select_device(requested or self.default_device)
        except MedSynthError as exc:
            raise Conflict(str(exc)) from None
        if device.type == "cuda" and device.index is None:
            import torch

            return f"cuda:{torch.cuda.current_device()}"
        return str(device)


@dataclass
class RunContext:
    """What a kind's run is given, in the engine (in-engine kinds) or in its worker process (the others).

    ``progress(info)``: ``info`` holds ``fraction`` or ``step``/``total``, and ``message``. ``models``: the
    engine's warm models (in-engine kinds only). ``devices``: the engine's ``--gpus``, over which a generate job
    shares its cases (one worker process each; empty: the job runs in the engine). A run checks ``stopped()`` at its safe points and raises
    ``JobStopped``, or returns ``{"stopped": True, ...}`` after saving what can be resumed.
    """

    job_dir: Path
    progress: Callable[[dict[str, Any]], None]
    log: Callable[[str], None]
    stopped: Callable[[], bool]
    models: Any = None
    devices: tuple[str, ...] = ()

    def fraction_progress(self) -> Callable[[float, str], None]:
        """A ``progress(fraction, message)`` callback for tools that report so; it stops at the next call after cancel."""

        def progress(fraction: float, message: str) -> None:
            self.progress({"fraction": float(fraction), "message": str(message)})
            if self.stopped():
                raise JobStopped

        return progress


def request_fields(params: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """A tool's request keyword arguments from stored params: unset ones left to its defaults, ``paths`` as Path."""
    fields = {k: v for k, v in params.items() if v is not None}
    for name in paths:
        if name in fields:
            fields[name] = Path(fields[name])
    return fields


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    ``lane(params)`` names the queue the job waits in: jobs of one lane run one at a time, lanes side by side.
    ``lane_by`` says what the lane is keyed by (``kind`` or ``device``), for clients. ``runs_in`` says where
    ``run`` runs: ``engine`` (a thread with the warm models) or ``worker`` (a child process, killed on cancel).
    ``resume(params, job_dir)``, where given, returns the params to queue the stopped job again with;
    ``requeue_on_restart`` says a job of the kind that was running when the engine died queues again by itself
    (journalled sets: nothing is lost by continuing); ``resumed_message`` is the job's message when it is queued.
    ``done_message(result)``, where given, is the message of a job that succeeded (else "Done.").
    """

    name: str
    params: type[BaseModel]
    prepare: Callable[[Any, PrepareContext], Prepared]
    run: Callable[[dict[str, Any], RunContext], dict[str, Any]]
    summary: str
    lane_by: Literal["kind", "device"] = "kind"
    runs_in: Literal["engine", "worker"] = "worker"
    resume: Callable[[dict[str, Any], Path], dict[str, Any]] | None = None
    requeue_on_restart: bool = False
    resumed_message: str = "Queued to resume from its last checkpoint."
    done_message: Callable[[dict[str, Any]], str] | None = None

    def lane(self, params: dict[str, Any]) -> str:
        if self.lane_by == "device":
            return f"device:{params.get('device') or 'cpu'}"
        return self.name

    def describe(self) -> dict[str, Any]:
        """What ``GET /job-kinds`` serves for this kind."""
        return {
            "summary": self.summary,
            "params_schema": self.params.model_json_schema(),
            "lane": self.lane_by,
            "runs_in": self.runs_in,
            "resumable": self.resume is not None,
        }
