"""The finetune request: the options every model family's trainer shares, plus the family's own in ``options``.

Kept free of torch so the command line and the engine can build and check requests without loading it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from MedSynthLib.conventions import parse_channels

from ..contract import OptionSpec
from ..errors import MedSynthError
from ..registry import ModelRegistry, default_registry

__all__ = ["FinetuneRequest", "family_options", "DEFAULT_STEPS"]

DEFAULT_STEPS = 1000


@dataclass
class FinetuneRequest:
    """Everything ``medsynth finetune`` takes that every family shares (field names are the option names).

    Args:
        model: a family name (a new model, e.g. ``pgan3d``), a shipped model id or a model folder to continue from.
        data: BraTS-style folder, nnU-Net v2 raw dataset or plain folder of NIfTI files.
        out: the model folder to write (new or empty, or the folder of a run to ``resume``).
        channels: channels to learn; default: the base model's, else every channel all cases have.
        resolution: cube side (or patch side for channel models); default: the family's.
        steps: training steps over all stages; None: ``DEFAULT_STEPS`` for a new run, the checkpoint's for a resumed one
            (with ``resume``, a count above the steps done extends the run).
        schedule_steps: the step count that step-defined schedules (pgan3d's phases, ldm3d's learning rate) are laid
            out over: the first run's ``steps``, kept when a resumed run is extended, whose extra steps then continue
            at the schedule's end (the final resolution, the final learning rate).
        batch_size: global batch, split over ``nproc`` processes.
        checkpoint_every: steps between checkpoints (and mosaics).
        spacing: voxel size in mm; default: the base's, else the family's.
        width: network width (new models only); default: the family's.
        amp: bf16 autocast.
        description: training-data description for the card (default: counts and layout, no file names).
        licence: licence of the weights for the card (default: the data owner's terms).
        options: the family's own options by name (see ``medsynth finetune --help``); unset ones take defaults.
    """

    model: str
    data: Path
    out: Path
    channels: tuple[str, ...] | None = None
    resolution: int | None = None
    steps: int | None = None
    batch_size: int = 4
    resume: bool = False
    nproc: int = 1
    skip_bad: bool = False
    device: str | None = None
    checkpoint_every: int = 100
    seed: int = 0
    spacing: float | None = None
    width: int | None = None
    amp: bool = False
    log_every: int = 10
    description: str | None = None
    licence: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    schedule_steps: int | None = None

    @property
    def planned_steps(self) -> int:
        """The step count a step-defined schedule is laid out over (see ``schedule_steps``)."""
        return int(self.schedule_steps or self.steps or DEFAULT_STEPS)

    @classmethod
    def make(cls, **values: Any) -> FinetuneRequest:
        """A request from flat option names (a command line's or an engine job's): family options go to ``options``."""
        shared = {f.name for f in fields(cls)} - {"options"}
        options = dict(values.pop("options", None) or {})
        options.update({k: v for k, v in values.items() if k not in shared and v is not None})
        return cls(**{k: v for k, v in values.items() if k in shared}, options=options)

    def validate(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        if self.channels is not None:
            try:
                self.channels = parse_channels(self.channels)
            except ValueError as exc:
                raise MedSynthError(str(exc)) from None
        if self.steps is None and not self.resume:
            self.steps = DEFAULT_STEPS
        for name in ("steps", "batch_size", "nproc", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if value is None and name == "steps":
                continue  # a resumed run takes its checkpoint's
            if not isinstance(value, int) or value < 1:
                raise MedSynthError(f"--{name.replace('_', '-')} must be a positive whole number, not {value}.")
        if self.batch_size % self.nproc:
            raise MedSynthError(f"--batch-size {self.batch_size} must be a multiple of --nproc {self.nproc}.")
        if not 0 <= self.seed < 2**62:
            raise MedSynthError("--seed must be non-negative.")
        if self.resolution is not None and (self.resolution < 8 or self.resolution & (self.resolution - 1)):
            raise MedSynthError(f"--resolution must be a power of two of at least 8, not {self.resolution}.")
        if self.spacing is not None and not 0.25 <= self.spacing <= 20:
            raise MedSynthError(f"--spacing must be 0.25 to 20 mm, not {self.spacing}.")

    def to_json(self) -> dict[str, Any]:
        """Flat, as on the command line: the family's options beside the shared ones."""
        data = asdict(self)
        options = data.pop("options")
        data.update(data=str(self.data), out=str(self.out), channels=list(self.channels) if self.channels else None)
        return {**data, **options}


def family_options(registry: ModelRegistry | None = None) -> list[OptionSpec]:
    """Every installed family's training options, one spec per name (families that share a name share the spec)."""
    registry = registry or default_registry()
    merged: dict[str, OptionSpec] = {}
    shared = {f.name for f in fields(FinetuneRequest)}
    for family in registry.families():
        for spec in family.options():
            if spec.name in shared:
                raise MedSynthError(f"The '{family.name}' family's option '{spec.name}' clashes with a shared finetune option.")
            if spec.name in merged:
                known = merged[spec.name]
                if known.type is not spec.type:
                    raise MedSynthError(f"The training option '{spec.name}' has different types in {known.families[0]} and {family.name}.")
                choices = None if known.choices is None or spec.choices is None else tuple(dict.fromkeys(known.choices + spec.choices))
                spec = OptionSpec(**{**known.__dict__, "choices": choices, "families": known.families + spec.families})
            merged[spec.name] = spec
    return list(merged.values())
