"""The bridge between NIfTI files and an MRML scene: a case folder in, volume and segmentation nodes out, and back.

Files, not pixels, cross the boundary between the engine and Slicer: the engine writes NIfTI (RAS affines), and
this module reads them through Slicer's own storage nodes (ITK; LPS inside Slicer's file layer, RAS in the
nodes), so geometry is handled exactly as File > Add Data would handle it. The label channel becomes a
Segmentation node whose segments carry the BraTS names, codes and colours of :mod:`MedSynthLib.conventions`.

Needs Slicer's MRML (3D Slicer itself, or PyPI ``slicer-core``); imports nothing else beyond the standard library.
"""

from __future__ import annotations

from .cases import _segmentation_to_labelmap, case_channel_files, load_case, save_nodes
from .channels import CT_PRESETS, apply_ct_preset, load_channel, save_channel_inputs, write_tumour_mask
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
    "SceneError", "LoadedCase", "case_channel_files", "load_case", "remove_node", "save_nodes", "segment_codes",
    "CT_PRESETS", "apply_ct_preset", "load_channel", "save_channel_inputs", "write_tumour_mask",
    "CASE_ATTRIBUTE", "CHANNEL_ATTRIBUTE", "LABEL_TAG", "MR_CHANNELS", "_segmentation_to_labelmap",
]
