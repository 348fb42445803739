"""How many axial slices the 2D families take of each 3D case: their shared training option, torch-free so the
CLI can show its default (``medsynth evaluate`` slices a 3D real set the same way)."""

from __future__ import annotations

from ...contract import option

__all__ = ["DEFAULT_SLICES_PER_CASE", "SLICES_PER_CASE_OPTION"]

#: Axial slices kept per subject, as the poster kept them.
DEFAULT_SLICES_PER_CASE = 48
#: The training option both 2D families declare (``--slices-per-case``).
SLICES_PER_CASE_OPTION = option(
    DEFAULT_SLICES_PER_CASE, "axial slices kept per training subject: those with the most brain and tumour", minimum=1, maximum=4096
)
