"""``medsynth-studio``: the MedSynth panel as a standalone PyQt5 + VTK desktop app (no 3D Slicer needed).

It shares the panel layout (``MedSynth/Resources/UI/MedSynth.ui``) and all decisions
(:mod:`MedSynthLib.controller`) with the Slicer module, so both front ends behave the same.
"""
