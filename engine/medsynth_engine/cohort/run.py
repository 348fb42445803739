"""``medsynth generate --cohort`` / ``--balance``: a set whose cases meet each stratum's constraints.

Labels first: every case's tumour comes from the phantom's tumour model drawn inside its stratum
(``draw.draw_in_stratum``). The phantom renders the whole case; a mask-conditioned model (ldm3d) renders
the images for the phantom's label map of that case. Each written label map is measured
(``attributes.realised_attributes``) and checked against its stratum; a miss (rare: the volume solver works on
a box, the check on the written map) draws that case again from the next seeded stream, at most
``MAX_ATTEMPTS`` times. Impossible strata are refused before anything is written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from MedSynthLib.conventions import LABEL_CHANNEL

from ..casewriting import case_seed, check_case, set_arguments, set_manifest, writing_errors
from ..device import select_device
from ..diskspace import case_bytes
from ..errors import MedSynthError
from ..nifti_io import write_nifti
from ..phantom.atlas import Atlas
from ..phantom.render import render
from ..registry import ModelRegistry, SynthCase
from ..setwriter import SetWriter
from .attributes import realised_attributes, violations
from .balance import balanced_cohort
from .draw import check_feasible, draw_in_stratum, subject_grid
from .spec import CohortSpec, Stratum, parse_cohort, read_cohort

if TYPE_CHECKING:
    from ..generate import GenerateRequest

__all__ = ["generate_cohort_set", "check_cohort_request", "load_spec", "MAX_ATTEMPTS"]

MAX_ATTEMPTS = 6


def check_cohort_request(request: GenerateRequest) -> None:
    """Refuse combinations a cohort cannot take (called by ``GenerateRequest.validate``)."""
    if request.cohort is not None and request.balance is not None:
        raise MedSynthError("Give either --cohort or --balance, not both.")
    if request.mask is not None:
        raise MedSynthError("A cohort draws its own tumour label maps; leave out --mask.")
    if request.audit_against is not None:
        raise MedSynthError("Cohort sets cannot be audited while generated yet; run medsynth audit on the written set.")
    if not request.tumour:
        raise MedSynthError("--no-tumour and a cohort disagree; give the cohort a stratum with 'tumour: none' instead.")


def load_spec(request: GenerateRequest) -> CohortSpec:
    """The cohort a request asks for: its file, or ``--balance`` over ``n`` cases."""
    if isinstance(request.cohort, dict):
        return parse_cohort(request.cohort)
    if request.cohort is not None:
        return read_cohort(Path(request.cohort))
    return balanced_cohort(str(request.balance), request.n)


def _atlas(registry: Any, plugin: Any) -> Atlas:
    loader = getattr(plugin, "atlas", None) or getattr(registry.get("phantom"), "atlas", None)
    if loader is None:
        raise MedSynthError("Cohorts need the phantom's tumour model, which this installation lacks; reinstall MedSynth.")
    return loader.get()


def generate_cohort_set(
    request: GenerateRequest,
    registry: ModelRegistry,
    progress: Callable[[int, int], None] | None = None,
    resumed: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the cohort's cases as one set; the manifest carries the cohort, and each case its stratum and attributes.

    Case ``i`` depends on the run seed, ``i`` and its stratum only, so an interrupted cohort run resumes like any
    other (``request.resume``): the journal records the cohort, and a different cohort is refused."""
    spec = load_spec(request)
    request.n = spec.total
    plugin = registry.generator(request.model)
    phantom = plugin.card.id == "phantom"
    if not phantom and not getattr(plugin, "supports_mask", False):
        raise MedSynthError(f"Model '{plugin.id}' draws its own tumours and cannot follow a cohort; use phantom or a mask-conditioned model (ldm3d).")
    shape = tuple(request.shape or plugin.card.shape)
    spacing = tuple(request.spacing or plugin.card.spacing)
    plugin.check_request(channels=request.channels, shape=shape, spacing=spacing)
    atlas = _atlas(registry, plugin)
    for stratum in spec.strata:
        check_feasible(stratum, atlas, shape, spacing)
    device = select_device(request.device)
    manifest = set_manifest(request, plugin, shape, spacing)
    manifest["parameters"]["cohort"] = "file" if request.cohort is not None else f"balance:{request.balance}"
    manifest["cohort"] = spec.to_dict()
    arguments = {**set_arguments(request, plugin, manifest["parameters"]), "cohort": manifest["cohort"]}
    writer = SetWriter(
        request.out, request.layout, request.channels, workers=request.workers, arguments=arguments,
        resume=request.resume, discard=request.discard, id_key=f"generate:{request.seed}",
        cases=spec.total, case_bytes=case_bytes(shape, request.channels),  # refused before the first case if it cannot fit
    )
    with writing_errors(request.out, writer), writer:
        done = len(writer.finished)
        if done and resumed:
            resumed(done, spec.total)
        index = 0
        for stratum in spec.strata:
            for _ in range(stratum.count):
                if index not in writer.finished:
                    seed = case_seed(request.seed, index)
                    case, attributes = _make_case(plugin, phantom, atlas, stratum, seed, request.channels, shape, spacing, device)
                    check_case(case.arrays, request.channels, shape, plugin.id)
                    writer.add(case, seed, index, extra={"stratum": stratum.name, "attributes": attributes})
                    done += 1
                    if progress:
                        progress(done, spec.total)
                index += 1
        return writer.commit(manifest)


def _make_case(
    plugin: Any, phantom: bool, atlas: Atlas, stratum: Stratum, seed: int, channels: tuple[str, ...], shape: tuple, spacing: tuple, device: Any
) -> tuple[SynthCase, dict[str, Any]]:
    missed: list[str] = []
    for attempt in range(MAX_ATTEMPTS):
        params, draws = draw_in_stratum(seed, atlas, stratum, shape, spacing, attempt)
        if draws.get("unreachable"):
            missed = ["no core radius reaches the drawn volume at the drawn site(s) with the foci kept apart"]
            continue
        grid = subject_grid(params, atlas, shape, spacing)
        wanted = channels if phantom else ()
        arrays = render(params, atlas, grid, tuple(dict.fromkeys((*wanted, LABEL_CHANNEL))), device=device)
        attributes = realised_attributes(arrays[LABEL_CHANNEL], grid.affine, params, atlas)
        missed = violations(attributes, stratum)
        if missed:
            continue
        record = {"subject": params.to_dict(), "cohort_draws": draws}
        if phantom:
            return SynthCase(arrays={c: arrays[c] for c in channels}, affine=grid.affine, params=record), attributes
        return _learned_case(plugin, arrays[LABEL_CHANNEL], seed, channels, shape, spacing, device, record), attributes
    raise MedSynthError(
        f"Stratum '{stratum.name}' could not be met for the case with seed {seed} after {MAX_ATTEMPTS} draws "
        f"({'; '.join(missed)}); widen its ranges. Nothing was written."
    )


def _learned_case(
    plugin: Any, codes: np.ndarray, seed: int, channels: tuple[str, ...], shape: tuple, spacing: tuple, device: Any, record: dict[str, Any]
) -> SynthCase:
    """The model renders the images for the phantom's label map (voxel for voxel on the model's own grid)."""
    from ..data.preprocess import grid_affine

    if not codes.any():
        case = plugin.generate(seed=seed, channels=channels, shape=shape, spacing=spacing, tumour=False, device=device)
    else:
        with tempfile.TemporaryDirectory(prefix="medsynth-cohort-") as folder:
            mask = Path(folder) / "labels.nii.gz"
            write_nifti(mask, codes, grid_affine(shape, spacing))
            case = plugin.generate(seed=seed, channels=channels, shape=shape, spacing=spacing, tumour=True, device=device, mask=mask)
    case.params = {**case.params, "labels_from": "phantom", **record}
    return case
