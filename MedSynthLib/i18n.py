"""``_()``, the translation marker of every text MedSynthLib shows: Slicer's ``tr`` inside Slicer, the text elsewhere.

Inside 3D Slicer, ``MedSynth.py`` has imported ``slicer.i18n`` before any of this runs; ``_`` then asks the
application to translate the text in the context of the calling file, named as Slicer names it
(``slicer.i18n.getContext``: ``MedSynthLib.controller``), so Qt's lupdate finds the texts and the user's language
applies. A translation that lost a ``{placeholder}`` is ignored, as ``slicer.i18n.tr`` does. In medsynth-studio and
in scripts nothing imported ``slicer.i18n`` and ``_`` returns the text unchanged; this module never imports slicer.
Texts with values are written ``_("{n} cases").format(n=n)``, never as f-strings (the key must be constant).
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["_"]

_PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")
_CONTEXTS: dict[str, str] = {}


def _context(source_file: str) -> str:
    """Slicer's translation context of a source file: ``<package>.<module>`` inside a package, else ``<module>``."""
    if source_file not in _CONTEXTS:
        folder, name = os.path.split(source_file)
        name = name[:-3] if name.endswith(".py") else name
        in_package = os.path.isfile(os.path.join(folder, "__init__.py"))
        _CONTEXTS[source_file] = f"{os.path.basename(folder)}.{name}" if in_package else name
    return _CONTEXTS[source_file]


def _(text: str) -> str:
    """``text`` in the user's language inside Slicer; unchanged outside it."""
    i18n = sys.modules.get("slicer.i18n")
    if i18n is None:
        return text
    translated = i18n.translate(_context(sys._getframe(1).f_code.co_filename), text)
    if set(_PLACEHOLDER.findall(text)) != set(_PLACEHOLDER.findall(translated)):
        return text
    return translated
