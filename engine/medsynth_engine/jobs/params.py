"""The parameters each job kind takes, re-exported from their kind modules (``jobs/kinds/<kind>.py``).

Each kind owns its params; this module keeps the names importable from one place for older callers.
"""

from __future__ import annotations

from .kinds.add_channel import AddChannelParams
from .kinds.add_tumour import AddTumourParams
from .kinds.export import ExportParams
from .kinds.finetune import FinetuneParams
from .kinds.generate import GenerateParams
from .schema import validation_sentence

__all__ = [
    "GenerateParams", "FinetuneParams", "ExportParams", "AddChannelParams", "AddTumourParams", "validation_sentence",
]
