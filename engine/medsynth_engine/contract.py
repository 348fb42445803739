"""The model plugin contract: what a model family declares, and what a loaded model does.

A model family is one package under ``medsynth_engine/models/<family>/`` (or any installed package) that
exposes a :class:`ModelFamily` through the ``medsynth.models`` entry-point group::

    [project.entry-points."medsynth.models"]
    my-family = "my_package:FAMILY"

Built-in families register exactly like that, in MedSynth's own ``pyproject.toml``. The family says what
its models can do (:class:`Capabilities`), how to load a model folder (``model.json`` + safetensors), which
models it ships, and, if it trains, its trainer and that trainer's own options (a dataclass whose fields are
made with :func:`option`). The ``medsynth finetune`` flags, the engine's finetune params and the Slicer
panel's fields are all derived from those options, so a new family touches no other file.

References are ``"module:attribute"`` strings resolved on first use, so listing families (``medsynth
models``, ``--help``) imports neither torch nor a family's network code.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MedSynthError

__all__ = [
    "Capabilities", "ModelFamily", "TrainerSpec", "OptionSpec", "option", "option_specs", "ModelPlugin", "SynthCase",
    "resolve_ref", "OPTION_TYPES",
]

#: Types a training option may have (what a command line, JSON and a panel field can all carry).
OPTION_TYPES = (bool, int, float, str)


def resolve_ref(ref: str | Callable | type) -> Any:
    """The object a ``"package.module:attribute"`` reference names (objects pass through unchanged)."""
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    if not module or not attribute:
        raise MedSynthError(f"'{ref}' is not a 'module:attribute' reference.")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise MedSynthError(f"'{ref}' cannot be loaded: {exc.__class__.__name__}: {exc}.") from None


@dataclass(frozen=True)
class Capabilities:
    """What a family's models can do; shown by ``medsynth models``, ``GET /models`` and the panel.

    Args:
        dims: 3 for volumes (X, Y, Z); 2 for single slices (X, Y) with their own in-plane geometry (a 2D model
            is never a volume with a fake third axis).
        mask: ``generate`` follows a tumour label map (``--mask``).
        inpaint: the model can add a tumour to a real case (``add-tumour``).
        channel: a channel model: it adds this channel (``seg`` or ``ct``) to a case with ``add-channel``
            and does not generate cases itself.
    """

    dims: int = 3
    mask: bool = False
    inpaint: bool = False
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.dims not in (2, 3):
            raise MedSynthError(f"A model family's dims must be 2 or 3, not {self.dims}.")

    @property
    def role(self) -> str:
        """``channel`` for channel models, ``generator`` for the rest."""
        return "channel" if self.channel else "generator"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def option(default: Any, help: str, *, choices: tuple | None = None, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A trainer option: a dataclass field with what the CLI, the engine schema and the panel need to know.

    A bool option that defaults to True becomes ``--no-<name>`` on the command line.
    """
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum, "maximum": maximum})


@dataclass(frozen=True)
class OptionSpec:
    """One training option as every front end sees it."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    families: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.type is bool and self.default is True else f"--{dashed}"

    def check(self, value: Any) -> Any:
        """``value`` converted to the option's type, or one sentence saying why it cannot be."""
        if value is None:
            return self.default
        if self.type is bool:
            if not isinstance(value, bool):
                raise MedSynthError(f"{self.flag} takes true or false, not {value!r}.")
        elif self.type in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float) or (self.type is int and value != int(value)):
                raise MedSynthError(f"--{self.name.replace('_', '-')} must be a {'whole ' if self.type is int else ''}number, not {value!r}.")
            value = self.type(value)
            if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
                raise MedSynthError(f"--{self.name.replace('_', '-')} must be {self.minimum:g} to {self.maximum:g}, not {value}.")
        elif not isinstance(value, str):
            raise MedSynthError(f"--{self.name.replace('_', '-')} takes text, not {value!r}.")
        if self.choices is not None and value not in self.choices:
            listed = ", ".join(str(c) for c in self.choices)
            raise MedSynthError(f"--{self.name.replace('_', '-')} must be one of {listed}, not {value!r}.")
        return value

    def json_schema(self) -> dict[str, Any]:
        """The option as a JSON Schema property (nullable: unset means the family's default)."""
        kind = {bool: "boolean", int: "integer", float: "number", str: "string"}[self.type]
        schema: dict[str, Any] = {"type": [kind, "null"], "description": f"{self.help} ({', '.join(self.families)})"}
        if self.choices is not None:
            schema["enum"] = [*self.choices, None]
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


def _option_type(annotation: Any) -> type:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if annotation not in OPTION_TYPES:
        raise MedSynthError(f"A training option must be bool, int, float or str (or one of them or None), not {annotation!r}.")
    return annotation


def option_specs(options: type | None, family: str = "") -> list[OptionSpec]:
    """The options a trainer's dataclass declares, in declaration order."""
    if options is None:
        return []
    if not dataclasses.is_dataclass(options):
        raise MedSynthError(f"A trainer's options must be a dataclass, not {options!r}.")
    hints = typing.get_type_hints(options)
    specs = []
    for f in dataclasses.fields(options):
        if f.default is dataclasses.MISSING:
            raise MedSynthError(f"The training option '{f.name}' of {family or options.__name__} needs a default.")
        meta = f.metadata
        specs.append(
            OptionSpec(
                name=f.name, type=_option_type(hints[f.name]), default=f.default, help=meta.get("help", ""),
                choices=meta.get("choices"), minimum=meta.get("minimum"), maximum=meta.get("maximum"),
                families=(family,) if family else (),
            )
        )
    return specs


@dataclass(frozen=True)
class TrainerSpec:
    """How a family trains.

    Args:
        train: ``"module:function"``; ``function(request, options, progress=None, should_stop=None) -> Path``
            trains or continues the model named by ``request.model`` into ``request.out``: a usable model
            folder from the first checkpoint on, exact ``--resume``, ``loss.jsonl``, progress dicts, and it never
            raises on stop (``training.finetune.run_finetune`` documents the request).
        options: a dataclass of the family's own options (fields made with :func:`option`), or None.
    """

    train: str | Callable
    options: type | None = None

    def parse(self, values: Mapping[str, Any], family: str) -> Any:
        """The options dataclass filled from ``values`` (unset ones take their defaults), each checked."""
        if self.options is None:
            return None
        specs = {spec.name: spec for spec in option_specs(self.options, family)}
        return self.options(**{name: spec.check(values.get(name)) for name, spec in specs.items()})


@dataclass(frozen=True)
class ModelFamily:
    """A model family as its package declares it (see the module docstring).

    Args:
        name: the family's name; ``medsynth finetune --model NAME`` trains a new model of it.
        architecture: ``architecture.name`` in its model cards (how a model folder finds its family).
        kind: the card kind (procedural, gan, diffusion, segmentation, translation).
        summary: one line for ``medsynth models`` and the panel.
        capabilities: what its models can do.
        load: ``"module:callable"`` taking a model folder and returning the loaded model (a
            :class:`ModelPlugin` for generators; an object with ``predict`` for channel models), or None.
        builtin: model ids the family makes without a folder (the procedural phantom) -> ``"module:factory"``.
        shipped: ids of models whose weights ship inside the package (``medsynth_engine/weights/<id>/``).
        trainer: how it trains, or None.
    """

    name: str
    architecture: str
    kind: str
    summary: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    load: str | Callable | None = None
    builtin: Mapping[str, str | Callable] = field(default_factory=dict)
    shipped: tuple[str, ...] = ()
    trainer: TrainerSpec | None = None

    def load_folder(self, folder: Path) -> Any:
        if self.load is None:
            raise MedSynthError(f"The '{self.name}' family has no model folders to load.")
        return resolve_ref(self.load)(Path(folder))

    def options(self) -> list[OptionSpec]:
        return option_specs(self.trainer.options if self.trainer else None, self.name)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "architecture": self.architecture, "kind": self.kind, "summary": self.summary,
            "capabilities": self.capabilities.to_json(), "trains": self.trainer is not None,
            "options": [spec.name for spec in self.options()],
        }


@dataclass
class SynthCase:
    """One generated case: arrays by channel on one grid, its RAS affine, and what made it.

    A 2D family's arrays are (X, Y) slices; ``affine`` is still the 4x4 RAS matrix of the slice's plane.
    """

    arrays: dict[str, np.ndarray]
    affine: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


class ModelPlugin(ABC):
    """A generative model MedSynth can run (a loaded generator of some family)."""

    card: Any
    #: Where the weights came from, in words (shown by ``medsynth models``).
    weights_origin: str = ""
    #: Whether ``generate`` takes ``mask=`` (a NIfTI tumour label map the case must follow); only then is it passed.
    supports_mask: bool = False
    #: Further ``generate`` keywords the model takes (``truncation``, ``like``); only those it names are passed.
    generate_options: tuple[str, ...] = ()
    #: The family this model belongs to (set by the registry).
    family: ModelFamily | None = None

    @property
    def id(self) -> str:
        return self.card.id

    def weights_sha256(self) -> str:
        return str(self.card.weights.get("sha256", ""))

    def check_request(self, *, channels: tuple[str, ...], shape: tuple[int, ...], spacing: tuple[float, ...]) -> None:
        """Raise MedSynthError if this model cannot make the requested channels, shape or spacing."""
        missing = [c for c in channels if c not in self.card.channels]
        if missing:
            raise MedSynthError(
                f"Model '{self.id}' cannot make channel(s) {', '.join(missing)}; it makes {', '.join(self.card.channels)}."
            )
        if tuple(shape) != tuple(self.card.shape) or tuple(spacing) != tuple(self.card.spacing):
            raise MedSynthError(
                f"Model '{self.id}' makes {tuple(self.card.shape)} voxels at {tuple(self.card.spacing)} mm only; "
                "leave out --shape and --spacing."
            )

    @abstractmethod
    def generate(
        self,
        *,
        seed: int,
        channels: tuple[str, ...],
        shape: tuple[int, ...],
        spacing: tuple[float, ...],
        tumour: bool,
        device: Any,
    ) -> SynthCase:
        """Make one case; the same arguments must give identical voxels."""
