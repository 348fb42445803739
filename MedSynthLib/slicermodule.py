"""What Slicer's module list shows for the extension's two scripted modules (MedSynth, MedSynthReaderStudy).

One place for what both modules' ``ScriptedLoadableModule`` classes set alike: the category, which is the
extension's (``EXTENSION_CATEGORY`` in CMakeLists.txt, so the module is where the Extensions Manager lists it), the
contributors and no module dependencies. Each module passes its own title and texts, marked for translation there.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CATEGORY", "CONTRIBUTORS", "PRIVACY_NOTES", "describe_module", "register_terminology"]

CATEGORY = "Segmentation"
CONTRIBUTORS = ("MedSynth contributors",)

PRIVACY_NOTES = """
<p><b>Privacy.</b> Generation and fine-tuning run in the MedSynth engine on this computer (or on the engine
you connect to by URL); no image, parameter or model leaves it, and nothing is downloaded at run time. A local
engine listens on 127.0.0.1 only and every request carries its token. <i>Set up...</i> downloads torch and the
engine's pinned requirements once, from PyPI and download.pytorch.org, into the engine's own environment (the engine
itself ships with the extension); Slicer's Python gets nothing.</p>
<p>Exported sets are anonymised: NIfTI header free-text fields are cleared, case ids are random, and the
manifest records only the model and generation parameters. Synthetic images can still resemble the training
data: before sharing a model fine-tuned on patient data, run <code>medsynth evaluate</code> (memorisation audit).</p>
"""


def describe_module(parent: Any, title: str, help_text: str, acknowledgement: str) -> None:
    """Fill Slicer's module description (``parent``) the same way for every module of the extension."""
    from slicer.i18n import translate

    parent.title = title
    parent.categories = [translate("qSlicerAbstractCoreModule", CATEGORY)]
    parent.dependencies = []
    parent.contributors = list(CONTRIBUTORS)
    parent.helpText = help_text
    parent.acknowledgementText = acknowledgement


def register_terminology(path: str) -> None:
    """Offer the extension's segment terminology (MedSynthBraTS.term.json) in the Segment Editor's lists."""
    import slicer

    terminologies = getattr(slicer.modules, "terminologies", None)  # absent outside Slicer's application
    if terminologies is not None:
        terminologies.logic().LoadTerminologyFromFile(path)
