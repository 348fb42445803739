"""Resumable training state: safetensors for networks and optimiser moments, JSON for everything else.

``checkpoint/state.json`` is written last and names the weights file it belongs to, so it is the commit
point: a process killed mid-write leaves the previous checkpoint intact. Older weights files are removed
only after the new JSON is in place.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load, save

from ..errors import MedSynthError
from ..killpoint import killpoint
from ..modelfile import write_atomic

__all__ = ["CHECKPOINT_DIR", "Checkpointable", "save_checkpoint", "load_checkpoint", "read_state"]

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"


class Checkpointable(Protocol):
    """What a trainer hands to the checkpoint: its networks and optimisers by name, its step and random generator.

    The names are the trainer's own (a GAN saves ``g``, ``d``, ``g_ema`` and ``opt_g``, ``opt_d``); networks and
    optimisers share one namespace, so every name must differ and none may be another's prefix followed by a dot
    (``save_checkpoint`` refuses a clash rather than write a checkpoint that cannot be restored).
    """

    steps_done: int
    rng: torch.Generator

    def modules(self) -> dict[str, torch.nn.Module]: ...

    def optimisers(self) -> dict[str, torch.optim.Optimizer]: ...


def save_checkpoint(out: Path, trainer: Checkpointable, meta: dict[str, Any]) -> Path:
    """Write the trainer's full state plus ``meta`` (step, stage, request...) under ``out/checkpoint``."""
    names = [*trainer.modules(), *trainer.optimisers()]
    clashes = sorted({a for a in names for b in names if a != b and (a == b or b.startswith(f"{a}."))} | {n for n in names if names.count(n) > 1})
    if clashes:
        raise MedSynthError(f"The trainer's checkpoint names clash ({', '.join(clashes)}); name every network and optimiser differently.")
    folder = Path(out) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in trainer.modules().items():
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().cpu().contiguous()
    groups = {}
    for name, opt in trainer.optimisers().items():
        state = opt.state_dict()
        groups[name] = state["param_groups"]
        for pid, entries in state["state"].items():
            for key, value in entries.items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"{name}.{pid}.{key}"] = tensor.detach().cpu().contiguous()
    blob = save(tensors)
    weights = f"state-{trainer.steps_done:09d}.safetensors"
    write_atomic(folder / weights, blob)
    killpoint("checkpoint.weights")
    rng = base64.b64encode(trainer.rng.get_state().numpy().tobytes()).decode()
    state = {
        **meta,
        "steps_done": trainer.steps_done,
        "weights": weights,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "rng": rng,
        "optimisers": groups,
    }
    write_atomic(folder / STATE_FILE, (json.dumps(state, indent=1) + "\n").encode())
    killpoint("checkpoint.state")
    for old in folder.glob("state-*.safetensors"):
        if old.name != weights:
            old.unlink(missing_ok=True)
    return folder


def read_state(out: Path) -> dict[str, Any] | None:
    """The JSON part of the checkpoint in ``out``, or None if there is none."""
    path = Path(out) / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MedSynthError(f"The checkpoint {path} is not valid JSON; it cannot be resumed.") from None


def load_checkpoint(out: Path, trainer: Checkpointable) -> dict[str, Any]:
    """Restore networks, optimisers, EMA, step count and the random generator; returns the JSON state."""
    state = read_state(out)
    if state is None:
        raise MedSynthError(f"{out} holds no checkpoint to resume; start a new run without --resume.")
    path = Path(out) / CHECKPOINT_DIR / state["weights"]
    try:
        blob = path.read_bytes()
    except OSError:
        raise MedSynthError(f"The checkpoint weights {path} are missing; the checkpoint cannot be resumed.") from None
    if hashlib.sha256(blob).hexdigest() != state["sha256"]:
        raise MedSynthError(f"The checkpoint weights {path} do not match state.json; the checkpoint is damaged.")
    tensors = load(blob)
    for name, module in trainer.modules().items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, opt in trainer.optimisers().items():
        entries: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                pid, field = key[len(prefix) :].split(".", 1)
                entries.setdefault(int(pid), {})[field] = value
        opt.load_state_dict({"state": entries, "param_groups": state["optimisers"][name]})
    trainer.steps_done = int(state["steps_done"])
    rng = torch.frombuffer(bytearray(base64.b64decode(state["rng"])), dtype=torch.uint8)
    trainer.rng.set_state(rng)
    return state
