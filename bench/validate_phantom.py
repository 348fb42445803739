"""How close is the phantom's contrast to real population-average MRI?

Renders the phantom's neutral subject (the atlas itself: no deformation, bias, noise or tumour) at 2 mm
and correlates, inside the brain, its
  - T1 with the MNI ICBM152 2009a T1 template (an average of 152 real T1 scans; nilearn's wheel);
  - FLAIR with the population-mean FLAIR of the doMAP template (swane-supplement's wheel, if installed:
    `pip install swane-supplement==0.1.2`, 62 MB, not a dependency of MedSynth).
As a reference measured in the same run, it also correlates the two real templates with each other (real
T1 vs real FLAIR): a phantom sequence should resemble its real counterpart much more than the other contrast.

Usage: python bench/validate_phantom.py
"""

from __future__ import annotations

from medsynth_engine.phantom.validate import correlations

if __name__ == "__main__":
    for name, value in correlations().items():
        print(f"{name:<48} r = {value:+.3f}")
