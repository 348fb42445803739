"""Tissue properties and MR signal equations of the phantom.

Relaxation times are approximate 3 T literature values: normal brain from Wansapura et al., JMRI 1999
(WM T1 832 ms / T2 80 ms, GM 1331 / 110 ms); CSF, fat and bone from Stanisz et al., MRM 2005 and common
tables; tumour compartments are plausible values within ranges reported for gliomas (vasogenic oedema and
necrosis carry more free water: longer T1 and T2). Oedema's T2 (200 ms) makes it clearly hyperintense on FLAIR
(about 1.9x white matter, 1.5x grey) and T2 (2.5x white matter), as peritumoural oedema is defined: the BraTS
oedema label is the FLAIR/T2-hyperintense region around the tumour (at 160 ms, 1.3x grey matter on FLAIR, a
segmenter trained on the phantom could not tell oedema in grey matter from the cortex). Proton densities are relative to pure water. CT numbers
are textbook Hounsfield units. None of these is fitted to a scanner: the phantom reproduces contrast
ordering and the qualitative look of each sequence, not any vendor's exact intensities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TISSUES", "Tissue", "SEQUENCES", "Sequence", "signal", "GADOLINIUM_R1_PER_MM_S"]


@dataclass(frozen=True)
class Tissue:
    """One tissue class: relaxation (ms), relative proton density, and CT number (HU)."""

    name: str
    t1_ms: float
    t2_ms: float
    pd: float
    hu: float


#: Order matters: the renderer's tissue-fraction tensor uses this index order.
TISSUES: tuple[Tissue, ...] = (
    Tissue("white_matter", 832.0, 80.0, 0.69, 29.0),
    Tissue("grey_matter", 1331.0, 110.0, 0.80, 37.0),
    Tissue("csf", 3700.0, 1500.0, 1.00, 8.0),
    Tissue("oedema", 1550.0, 200.0, 0.86, 20.0),
    Tissue("enhancing_tumour", 1600.0, 125.0, 0.85, 38.0),
    Tissue("necrosis", 2400.0, 260.0, 0.92, 16.0),
    Tissue("cortical_bone", 300.0, 1.0, 0.05, 1400.0),
    Tissue("marrow", 380.0, 120.0, 0.70, 550.0),
    Tissue("scalp", 500.0, 80.0, 0.85, -40.0),
    Tissue("air", 1.0e4, 1.0, 0.0, -1000.0),
)
TISSUE_INDEX = {t.name: i for i, t in enumerate(TISSUES)}

#: Longitudinal relaxivity of gadolinium contrast agents at 3 T, about 4 /mM/s (gadobutrol ~ 5).
GADOLINIUM_R1_PER_MM_S = 4.0


@dataclass(frozen=True)
class Sequence:
    """Acquisition parameters of one sequence (times in ms, flip in degrees)."""

    name: str
    kind: str  # "spgr" spoiled gradient echo, "fse" fast spin echo, "flair" inversion recovery FSE
    tr: float
    te: float
    flip_deg: float = 90.0


SEQUENCES: dict[str, Sequence] = {
    "t1": Sequence("t1", "spgr", tr=10.0, te=4.0, flip_deg=15.0),
    "t1ce": Sequence("t1ce", "spgr", tr=10.0, te=4.0, flip_deg=15.0),
    "t2": Sequence("t2", "fse", tr=4000.0, te=100.0),
    "flair": Sequence("flair", "flair", tr=9000.0, te=120.0),
}


def signal(seq: Sequence, t1: torch.Tensor, t2: torch.Tensor, pd: torch.Tensor, ti_ms: float = 0.0) -> torch.Tensor:
    """Steady-state magnitude signal of a tissue with the given T1, T2 (ms) and proton density.

    - spgr: PD sin(a) (1 - E1) / (1 - cos(a) E1) exp(-TE/T2), E1 = exp(-TR/T1)
    - fse: PD (1 - exp(-TR/T1)) exp(-TE/T2)
    - flair: PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2); TI nulls the CSF T1 given by the caller.
    """
    t2_decay = torch.exp(-seq.te / t2)
    if seq.kind == "spgr":
        a = torch.tensor(seq.flip_deg * torch.pi / 180.0, dtype=t1.dtype, device=t1.device)
        e1 = torch.exp(-seq.tr / t1)
        return pd * torch.sin(a) * (1.0 - e1) / (1.0 - torch.cos(a) * e1) * t2_decay
    if seq.kind == "fse":
        return pd * (1.0 - torch.exp(-seq.tr / t1)) * t2_decay
    if seq.kind == "flair":
        return pd * torch.abs(1.0 - 2.0 * torch.exp(-ti_ms / t1) + torch.exp(-seq.tr / t1)) * t2_decay
    raise ValueError(f"unknown sequence kind {seq.kind}")


def flair_null_ti(seq: Sequence, t1_csf_ms: float) -> float:
    """Inversion time that nulls a tissue with T1 = ``t1_csf_ms`` at repetition time TR."""
    import math

    return t1_csf_ms * math.log(2.0 / (1.0 + math.exp(-seq.tr / t1_csf_ms)))
