"""How a grown tumour's appearance is put into the case: the phantom's contrast model, or inpainting on real scans.

A phantom case (listed in its folder's ``manifest.json`` of a ``phantom`` set) was made by the contrast model, so
``appearance.render_growth`` paints the grown compartments with the same signal equations. Any other case (a
hospital scan, a case of a learned model) gets the add-tumour path instead: tissue pushed out of the grown core by
the mass effect (``appearance.push_tissue``), then the grown label map inpainted by a mask-conditioned model
(``addtumour.inpaint_tumour``, ldm3d) and blended within ``margin_mm``. Either way, nothing farther than
``margin_mm`` from the tumour changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from MedSynthLib.conventions import LABEL_CHANNEL

from ..errors import MedSynthError

__all__ = ["RENDERERS", "is_phantom_case", "choose_renderer", "Inpainter"]

RENDERERS = ("auto", "contrast", "inpaint")


def is_phantom_case(folder: Path) -> bool:
    """True when ``folder`` is a case of a set the phantom wrote (its parent's manifest lists it, model ``phantom``)."""
    manifest = Path(folder).parent / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("format") != "medsynth-synthetic-set":
        return False
    model = data.get("model") or {}
    cases = data.get("cases") or []
    return model.get("id") == "phantom" and any(isinstance(c, dict) and c.get("id") == Path(folder).name for c in cases)


def choose_renderer(asked: str, folder: Path) -> str:
    """``contrast`` or ``inpaint`` for ``asked`` (``auto``: contrast on phantom cases, inpaint on everything else)."""
    if asked not in RENDERERS:
        raise MedSynthError(f"Unknown renderer '{asked}'; use {', '.join(RENDERERS)}.")
    if asked != "auto":
        return asked
    return "contrast" if is_phantom_case(folder) else "inpaint"


class Inpainter:
    """Renders grown label maps into one case with a mask-conditioned model, loaded once for the whole series."""

    def __init__(self, model: str, steps: int | None, device: str | None, seed: int) -> None:
        from ..addtumour import tumour_model
        from ..device import select_device

        self.plugin = tumour_model(model)
        self.steps, self.seed = steps, seed
        self.device = select_device(device)

    @property
    def model_id(self) -> str:
        return str(self.plugin.id)

    def render(
        self, arrays: dict[str, np.ndarray], affine: np.ndarray, labels0: np.ndarray, had_seg: bool, labels: np.ndarray,
        mass_effect: float, margin_mm: float,
    ) -> dict[str, Any]:
        """The case's channels showing ``labels``: pushed by the mass effect, then inpainted (same seed every time point,
        so the texture changes only as much as the mask does)."""
        from ..addtumour import check_inside_head, inpaint_tumour
        from .appearance import push_tissue

        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        check_inside_head(labels, arrays, "the case's head")
        pushed = push_tissue(arrays, spacing, labels0, labels, mass_effect, margin_mm)
        if had_seg:
            pushed[LABEL_CHANNEL] = labels0
        written, _ = inpaint_tumour(pushed, affine, labels, self.plugin, seed=self.seed, margin_mm=margin_mm, steps=self.steps, device=self.device)
        written.pop(LABEL_CHANNEL, None)
        return written
