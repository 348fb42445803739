"""Procedural multi-sequence brain phantom with tumours: the embedded default data source of MedSynth."""

from .atlas import Atlas, AtlasLoader
from .params import SubjectParams, TumourParams, draw_subject
from .render import WM_REFERENCE, Grid, render

__all__ = ["Atlas", "AtlasLoader", "Grid", "SubjectParams", "TumourParams", "WM_REFERENCE", "draw_subject", "render"]
