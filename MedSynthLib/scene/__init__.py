"""The bridge between NIfTI files and an MRML scene: a case folder in, volume and segmentation nodes out, and back.

Files, not pixels, cross the boundary between the engine and Slicer: the engine writes NIfTI (RAS affines). A case
is read with SimpleITK (the ITK reader behind Slicer's storage nodes, so geometry is exactly as File > Add Data
gives it) off the GUI thread (``reading``) and made into nodes in small steps on it (``building``); single
channel files and saved nodes go through Slicer's own storage nodes. The label channel becomes a
Segmentation node whose segments carry the BraTS names, codes and colours of :mod:`MedSynthLib.conventions`.

Needs Slicer's MRML (3D Slicer itself, or PyPI ``slicer-core``), and the SimpleITK and numpy Slicer ships.
"""

from __future__ import annotations

from .building import CT_PRESETS, CaseBuilder, apply_ct_preset, load_case
from .cases import _segmentation_to_labelmap, case_channel_files, save_nodes
from .channels import load_channel, save_channel_inputs, write_tumour_mask
from .nodes import (
    CASE_ATTRIBUTE,
    CHANNEL_ATTRIBUTE,
    LABEL_TAG,
    MR_CHANNELS,
    LoadedCase,
    SceneError,
    remove_node,
    segment_codes,
)

__all__ = [
    "SceneError", "LoadedCase", "CaseBuilder", "case_channel_files", "load_case", "remove_node", "save_nodes", "segment_codes",
    "CT_PRESETS", "apply_ct_preset", "load_channel", "save_channel_inputs", "write_tumour_mask",
    "CASE_ATTRIBUTE", "CHANNEL_ATTRIBUTE", "LABEL_TAG", "MR_CHANNELS", "_segmentation_to_labelmap",
]
