"""Batch generation: a model, a seed and parameters in; an anonymised, complete set on disk out."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from MedSynthLib.conventions import parse_channels

from .casewriting import case_seed, check_case, set_arguments, set_manifest, writing_errors
from .device import select_device
from .diskspace import case_bytes
from .errors import MedSynthError
from .progress import JournalWatch
from .registry import ModelRegistry
from .setwriter import LAYOUTS, SetWriter
from .sharding import Group, World

__all__ = ["GenerateRequest", "case_seed", "generate_set", "model_options", "MAX_CASES"]

MAX_CASES = 1_000_000


@dataclass
class GenerateRequest:
    """Everything ``medsynth generate`` takes; ``shape``/``spacing`` default to the model's own."""

    model: str
    n: int
    seed: int
    out: Path
    channels: tuple[str, ...] = ("t1", "t1ce", "t2", "flair", "seg")
    layout: str = "brats"
    shape: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None
    tumour: bool = True
    device: str | None = None
    workers: int = 2
    audit_against: Path | None = None  # training set: leave probable copies of its cases out (evaluate.gate)
    audit_threshold: float = 0.5
    mask: Path | None = None  # tumour label map (BraTS codes) the cases must follow; models with supports_mask only
    resume: bool = False  # continue the interrupted run into ``out`` from its journal (same arguments)
    discard: bool = False  # remove what an interrupted run into ``out`` left, then start afresh
    cohort: Path | dict | None = None  # cohort file (YAML/JSON strata) or its document; its counts replace n (cohort.run)
    balance: str | None = None  # a built-in cohort over n cases, e.g. "size" or "enhancing" (cohort.balance)
    truncation: float = 1.0  # StyleGAN truncation psi: 1 none, 0 every case the average (models with generate_options)
    like: Path | None = None  # a case folder whose slice the cases vary (projected into the model's W; stylegan2d)

    def validate(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise MedSynthError(f"The number of cases must be at least 1, not {self.n}.")
        if self.n > MAX_CASES:
            raise MedSynthError(f"{self.n:,} cases is more than one run makes ({MAX_CASES:,}); split it into several runs.")
        if not 0 <= self.seed < 2**63:
            raise MedSynthError(f"The seed must be a non-negative integer below 2**63, not {self.seed}.")
        if self.layout not in LAYOUTS:
            raise MedSynthError(f"Unknown layout '{self.layout}'; use brats or nnunet.")
        try:
            self.channels = parse_channels(self.channels)
        except ValueError as exc:
            raise MedSynthError(str(exc)) from None
        if not 0.0 < self.audit_threshold <= 1.0:
            raise MedSynthError(f"The audit threshold must be in (0, 1], not {self.audit_threshold}.")
        if not 0.0 <= self.truncation <= 1.0:
            raise MedSynthError(f"--truncation must be 0 to 1 (1: no truncation, 0: the average image), not {self.truncation}.")
        if self.resume and self.discard:
            raise MedSynthError("Give --resume or --discard, not both: one continues the interrupted run, the other drops it.")
        if self.cohort is not None or self.balance is not None:
            from .cohort.run import check_cohort_request

            check_cohort_request(self)


def generate_set(
    request: GenerateRequest,
    registry: ModelRegistry,
    progress: Callable[[int, int], None] | None = None,
    resumed: Callable[[int, int], None] | None = None,
    world: World | None = None,
) -> Path:
    """Generate ``request.n`` cases and write them as one complete set; returns the set's folder.

    Case ``i`` depends on the run seed and ``i`` only (its seed and its id), so a resumed run (``request.resume``)
    makes only the cases the journal lacks and publishes the same bytes as an uninterrupted run, and so does a
    run shared by several workers (``world``, see ``sharding.py``): each makes its share of the missing cases and
    rank 0 publishes. ``progress`` gets (cases finished by all workers, n); ``resumed`` gets (cases kept from the
    interrupted run, n) once, when there were any; both are called on rank 0 only.
    """
    request.validate()
    world = world or World()
    if request.cohort is not None or request.balance is not None:
        if world.size > 1:
            raise MedSynthError("Cohort runs (--cohort, --balance) use one process for now; leave out --nproc and torchrun.")
        from .cohort.run import generate_cohort_set

        return generate_cohort_set(request, registry, progress, resumed)
    publish = None
    if request.audit_against is not None:  # the export gate: the complete set is audited before it is published
        from .evaluate.gate import audit_channels, publish_audited

        train = Path(request.audit_against)
        audit_with = audit_channels(request.channels, train)

        def publish(staging: Path, out: Path) -> Path:
            return publish_audited(staging, out, train, threshold=request.audit_threshold, channels=audit_with)

    plugin = registry.generator(request.model)
    shape = tuple(request.shape or plugin.card.shape)
    spacing = tuple(request.spacing or plugin.card.spacing)
    plugin.check_request(channels=request.channels, shape=shape, spacing=spacing)
    if request.mask is not None and not plugin.supports_mask:
        raise MedSynthError(f"Model '{plugin.id}' cannot follow a tumour mask; use an ldm3d model such as ldm3d-phantom.")
    extra = {"mask": Path(request.mask)} if request.mask is not None else {}
    extra.update(model_options(request, plugin))
    device = select_device(world.device(request.device))
    manifest = set_manifest(request, plugin, shape, spacing)

    def open_writer(stack: ExitStack, joining: bool) -> SetWriter:
        writer = SetWriter(
            request.out, request.layout, request.channels, workers=request.workers,
            arguments=set_arguments(request, plugin, manifest["parameters"]),
            resume=request.resume, discard=request.discard, id_key=f"generate:{request.seed}",
            cases=request.n, case_bytes=case_bytes(shape, request.channels), joining=joining,
        )
        stack.enter_context(writing_errors(request.out, writer))
        return stack.enter_context(writer)

    lead = world.rank == 0
    with Group(world) as group, ExitStack() as stack:
        with group.step("setting up the temporary set"):
            if lead:
                writer = open_writer(stack, joining=False)
        with group.step("joining the temporary set"):
            if not lead:
                writer = open_writer(stack, joining=True)
        if writer.finished and resumed and lead:
            resumed(len(writer.finished), request.n)
        missing = [index for index in range(request.n) if index not in writer.finished]
        with group.step("generating its cases"), _watch(writer, world, request.n, progress):
            done = len(writer.finished)
            for index in world.share(missing):
                seed = case_seed(request.seed, index)
                case = plugin.generate(
                    seed=seed, channels=request.channels, shape=shape, spacing=spacing, tumour=request.tumour, device=device, **extra
                )
                check_case(case.arrays, request.channels, shape, plugin.id)
                writer.add(case, seed, index)
                done += 1
                if progress and world.size == 1:
                    progress(done, request.n)
            writer.drain()
        with group.step("publishing the set"):
            if lead:
                published = writer.commit(manifest, publish)
        return published if lead else writer.out


def model_options(request: GenerateRequest, plugin: Any) -> dict[str, Any]:
    """``--truncation`` and ``--like`` for a model that takes them (its ``generate_options``), or one sentence refusing them."""
    asked = {"truncation": request.truncation if request.truncation != 1.0 else None, "like": request.like}
    options = {}
    for name, value in asked.items():
        if value is None:
            continue
        if name not in plugin.generate_options:
            raise MedSynthError(f"Model '{plugin.id}' does not take --{name}; it is for stylegan2d models.")
        options[name] = Path(value) if name == "like" else value
    return options


def _watch(writer: SetWriter, world: World, total: int, progress: Callable[[int, int], None] | None) -> AbstractContextManager:
    """Rank 0 of several workers reports the cases every worker has journalled; a single worker reports its own."""
    if progress is None or world.size == 1 or world.rank != 0:
        return nullcontext()
    return JournalWatch(writer.journal.count, total, progress)
