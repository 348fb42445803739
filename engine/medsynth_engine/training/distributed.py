"""Several training processes: ``--nproc K`` spawns K-1 workers beside this process, or torchrun starts them.

gloo on CPU, NCCL on CUDA GPUs (one per process). Gradients are averaged with one all-reduce per network
(``GANTrainer._allreduce``) rather than by wrapping the networks in DistributedDataParallel: DDP cannot
follow the gradient penalty's double backward or the three critic passes per step, and progressive growing
leaves whole stages unused. The same choice StyleGAN2-ADA's trainer made.
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..errors import MedSynthError

__all__ = ["DistContext", "broadcast_flag", "launch"]

TIMEOUT = datetime.timedelta(minutes=10)


@dataclass
class DistContext:
    rank: int
    world: int
    device: torch.device
    owns_group: bool = False

    @staticmethod
    def single(device: torch.device) -> DistContext:
        return DistContext(0, 1, device)

    @staticmethod
    def from_env(device: torch.device) -> DistContext:
        """Under torchrun: rank and world from the environment; one GPU per local rank."""
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
            return DistContext(rank, world, device, owns_group=True)
        return DistContext(rank, world, device)

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def broadcast_flag(flag: bool, context: DistContext) -> bool:
    """Rank 0's flag on every rank (a stop request must stop all processes at the same step)."""
    if context.world == 1:
        return flag
    value = torch.tensor([int(flag)], device=context.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _join(rank: int, world: int, port: int, device: torch.device) -> DistContext:
    if device.type == "cuda":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=TIMEOUT,
    )
    return DistContext(rank, world, device, owns_group=True)


def _worker(request: Any, train: Callable, rank: int, world: int, port: int, device: str) -> None:
    train(request, _join(rank, world, port, torch.device(device)), None, None)


def launch(request: Any, train: Callable, progress: Callable | None, should_stop: Callable | None) -> Any:
    """Run ``train(request, context, progress, should_stop)`` as rank 0 here and in ``request.nproc - 1`` spawned
    workers (``train`` must be picklable: a module-level function or a partial of one); returns rank 0's result."""
    from ..device import select_device

    world = request.nproc
    device = select_device(request.device)
    if device.type == "cuda" and torch.cuda.device_count() < world:
        raise MedSynthError(f"--nproc {world} needs {world} GPUs; this machine has {torch.cuda.device_count()}.")
    if device.type == "mps":
        raise MedSynthError("Several processes are not supported on Apple MPS; use --nproc 1.")
    port = _free_port()
    context = mp.get_context("spawn")
    workers = [context.Process(target=_worker, args=(request, train, r, world, port, str(device)), daemon=True) for r in range(1, world)]
    threads = torch.get_num_threads()
    for worker in workers:
        worker.start()
    try:
        result = train(request, _join(0, world, port, device), progress, should_stop)
        for worker in workers:
            worker.join()
        failed = [w.exitcode for w in workers if w.exitcode != 0]
        if failed:
            raise MedSynthError(f"{len(failed)} training worker process(es) failed; see their messages above.")
        return result
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(5)
        torch.set_num_threads(threads)
