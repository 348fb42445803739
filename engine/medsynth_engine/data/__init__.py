"""Training data: find cases in BraTS-style, nnU-Net v2 raw or plain NIfTI folders, validate, preprocess."""

from .layouts import Case, find_cases
from .preprocess import PreprocessSpec, preprocess_case
from .training_set import TrainingSet, load_training_set
from .validate import CaseProblem, validate_case

__all__ = [
    "Case",
    "find_cases",
    "CaseProblem",
    "validate_case",
    "PreprocessSpec",
    "preprocess_case",
    "TrainingSet",
    "load_training_set",
]
