"""The ``phantom`` model: procedural multi-sequence brain MRI (and CT) with tumours, from real tissue maps."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..contract import Capabilities, ModelFamily, ModelPlugin, SynthCase
from ..errors import MedSynthError
from ..modelfile import ModelCard
from ..phantom import AtlasLoader, Grid, draw_subject, render
from ..phantom.atlas import _FILES, nilearn_data_dir

__all__ = ["PhantomModel", "FAMILY", "MIN_SIDE", "MAX_SIDE", "MAX_VOXELS"]

DEFAULT_SHAPE = (176, 208, 176)
DEFAULT_SPACING = (1.0, 1.0, 1.0)
#: 2 (2026-11-30): inside the oedema, grey matter turns to oedema as white matter does (before: half of it stayed,
#: so oedema labelled in grey matter was barely visible) and oedema T2 is 200 ms (before 160): the oedema label is
#: the FLAIR/T2-hyperintense region, as BraTS defines it. Same seeds give the same anatomy and labels; oedema
#: intensities differ from version 1.
PHANTOM_VERSION = 2
MIN_SIDE, MAX_SIDE = 8, 512
MAX_VOXELS = 320**3
MIN_SPACING, MAX_SPACING = 0.25, 10.0


class PhantomModel(ModelPlugin):
    """Any grid shape and spacing; every channel; tumour on or off. Anatomy from the MNI ICBM152 2009a maps."""

    def __init__(self) -> None:
        self.atlas = AtlasLoader()
        self._sha: str | None = None
        self.card = ModelCard(
            id="phantom",
            kind="procedural",
            architecture={"name": "phantom", "version": PHANTOM_VERSION, "skull_strip_mr": True},
            channels=["t1", "t1ce", "t2", "flair", "seg", "ct"],
            shape=list(DEFAULT_SHAPE),
            spacing=list(DEFAULT_SPACING),
            training_data="None: procedural. Anatomy from the MNI ICBM152 2009a grey/white-matter maps; "
            "contrast from literature 3 T relaxation times through MR signal equations; simulated tumours.",
            licence="Apache-2.0 (code); MNI ICBM152 maps (c) 1993-2009 Louis Collins, MNI, McGill University, permissive licence",
            weights={"file": None, "source": "MNI ICBM152 2009a maps from nilearn's package data"},
        )
        self.weights_origin = "procedural; anatomy: MNI ICBM152 2009a maps in nilearn's wheel"

    def weights_sha256(self) -> str:
        """Hash of the anatomy the phantom renders from (the MNI maps), standing in for weights."""
        if self._sha is None:
            digest = hashlib.sha256(f"medsynth-phantom-v{PHANTOM_VERSION}".encode())
            folder = nilearn_data_dir()
            for name in sorted(_FILES.values()):
                digest.update(hashlib.sha256((folder / name).read_bytes()).digest())
            self._sha = digest.hexdigest()
        return self._sha

    def check_request(self, *, channels: tuple[str, ...], shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
        if len(shape) != 3 or any(not MIN_SIDE <= s <= MAX_SIDE for s in shape):
            raise MedSynthError(f"The phantom makes grids of {MIN_SIDE} to {MAX_SIDE} voxels per side, not {tuple(shape)}.")
        if int(np.prod(shape)) > MAX_VOXELS:
            raise MedSynthError(f"A {tuple(shape)} grid is too large for one case; keep it under {MAX_VOXELS:,} voxels.")
        if len(spacing) != 3 or any(not MIN_SPACING <= s <= MAX_SPACING for s in spacing):
            raise MedSynthError(f"The phantom's voxel spacing must be {MIN_SPACING} to {MAX_SPACING} mm, not {tuple(spacing)}.")
        unknown = [c for c in channels if c not in self.card.channels]
        if unknown:
            raise MedSynthError(f"The phantom cannot make channel(s) {', '.join(unknown)}.")

    def generate(
        self,
        *,
        seed: int,
        channels: tuple[str, ...],
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        tumour: bool,
        device: Any,
    ) -> SynthCase:
        atlas = self.atlas.get()
        params = draw_subject(seed, atlas, tumour=tumour)
        grid = Grid.centred(shape, spacing, atlas.brain_centre_mm + np.asarray(params.translation_mm))
        arrays = render(params, atlas, grid, channels, device=device)
        return SynthCase(arrays=arrays, affine=grid.affine, params={"subject": params.to_dict()})


FAMILY = ModelFamily(
    name="phantom",
    architecture="phantom",
    kind="procedural",
    summary="procedural multi-sequence brain MRI and CT with tumours, from the MNI ICBM152 2009a tissue maps",
    capabilities=Capabilities(dims=3),
    builtin={"phantom": "medsynth_engine.models.phantom:PhantomModel"},
)
