"""One set made by several worker processes (``--nproc K``, torchrun, the engine's ``--gpus``): who makes which case.

Case ``i`` is the same case whatever the number of workers: its seed and id derive from the run seed and ``i``
(``casewriting.case_seed``, ``journal.case_id``), never from a rank. Rank 0 sets up (or reopens) the hidden
temporary set; every worker then writes its share of the cases still missing into it and journals each one;
rank 0 alone writes the manifest and publishes the set with one rename.

The workers only need to agree at a few steps (set up, joined, all cases written, published), so they talk
through a gloo process group on every machine, GPUs included (NCCL would need a tensor on each GPU for nothing
and cannot notice a dead peer). ``Group.step`` is "everyone finishes this step, or everyone fails": a worker that
raises, or dies (its connections close), fails the step on every other worker.
"""

from __future__ import annotations

import datetime
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import MedSynthError

__all__ = ["World", "Group", "PeerFailed", "EXIT_PEER", "STEP_TIMEOUT", "fail_on_sigterm", "parse_devices"]

#: Exit code of a worker that stops because another one failed (the launcher looks for the one that did not).
EXIT_PEER = 3
#: How long a step waits for the slowest worker (the last step includes the audit of the whole set).
STEP_TIMEOUT = datetime.timedelta(hours=6)


class PeerFailed(MedSynthError):
    """This worker stops because another worker of the run failed; ``quiet``: that worker has said why."""

    def __init__(self, message: str, *, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


def parse_devices(text: str) -> tuple[str, ...]:
    """The engine's ``--gpus``: ``0,1`` (CUDA GPUs by index), ``cuda:0,cuda:1``, or ``cpu,cpu`` (CPU worker processes)."""
    from .device import select_device

    devices = []
    for part in (p.strip() for p in text.split(",")):
        name = f"cuda:{part}" if part.isdigit() else part
        if not name or name.startswith("mps"):
            raise MedSynthError(f"--gpus takes GPU indices (0,1), cuda:N or cpu entries, not '{text}'.")
        devices.append(str(select_device(name)))
    return tuple(devices)


def fail_on_sigterm(*, quiet: bool) -> None:
    """A worker of several takes SIGTERM as "the run failed": torchrun and ``--nproc`` send it to the other workers
    when one dies, so the run ends failed and its folder is removed (Ctrl-C, SIGINT, keeps the finished cases).
    ``quiet``: another process says so (``--nproc``'s launcher; under torchrun, rank 0 does)."""

    def stopped(signum: int, frame: object) -> None:
        raise PeerFailed("A worker of this run failed or the run was stopped (SIGTERM); nothing was published and the "
                         "unfinished set was removed.", quiet=quiet)

    signal.signal(signal.SIGTERM, stopped)


@dataclass(frozen=True)
class World:
    """This worker's place in the run: ``rank`` of ``size``, ``local_rank`` on its machine (its GPU)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> World:
        """Rank and size as torchrun (or ``--nproc``) sets them; one worker when they are absent."""
        env = os.environ if environ is None else environ
        try:
            size = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise MedSynthError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (as torchrun sets them).") from None
        if size < 1 or not 0 <= rank < size or local < 0:
            raise MedSynthError(f"RANK {rank} and WORLD_SIZE {size} do not describe a worker of a run; start workers with torchrun or --nproc.")
        return cls(rank, size, local)

    def share(self, indices: Sequence[int]) -> list[int]:
        """This worker's cases among ``indices`` (the run's missing cases, in order): every ``size``-th one."""
        return list(indices[self.rank :: self.size])

    def device(self, requested: str | None) -> str | None:
        """The device this worker uses: its own GPU (``cuda:LOCAL_RANK``) when the run is on CUDA and names no GPU."""
        if self.size == 1 or requested not in (None, "", "auto", "cuda"):
            return requested
        import torch

        if not torch.cuda.is_available():
            return requested
        return f"cuda:{self.local_rank % torch.cuda.device_count()}"


class Group:
    """The workers of one run, joined in a gloo process group (nothing to join for a single worker)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._dist = None

    def __enter__(self) -> Group:
        if self.world.size > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                try:
                    dist.init_process_group("gloo", rank=self.world.rank, world_size=self.world.size, timeout=STEP_TIMEOUT)
                except (RuntimeError, ValueError) as exc:
                    raise MedSynthError(f"Worker {self.world.rank} could not join the run's other workers ({_first_line(exc)}).") from None
                self._dist = dist
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dist is not None:
            self._dist.destroy_process_group()
            self._dist = None

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Run the block on every worker; if it failed on any of them, fail it on all (``what`` names the step)."""
        error: BaseException | None = None
        try:
            yield
        except (Exception, KeyboardInterrupt) as exc:
            error = exc
        if self.world.size > 1:
            self._agree(what, error)
        if error is not None:
            raise error

    def _agree(self, what: str, error: BaseException | None) -> None:
        import torch.distributed as dist

        mine = None if error is None else (str(error) or type(error).__name__)
        outcomes: list[str | None] = [None] * self.world.size
        try:
            dist.all_gather_object(outcomes, mine)
        except RuntimeError as exc:
            if error is not None:
                return  # this worker's own error says more
            raise PeerFailed(f"Another worker of this run stopped while {what} ({_first_line(exc)}); nothing was published.") from None
        failed = [(rank, text) for rank, text in enumerate(outcomes) if text is not None]
        if failed and error is None:
            rank, text = failed[0]
            raise PeerFailed(f"Worker {rank} failed while {what}: {text}", quiet=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
