"""The panel's sections as Slicer lays them out: each QGroupBox of MedSynth.ui inside a ctkCollapsibleButton.

The .ui keeps plain group boxes so that medsynth-studio (PyQt5) loads the same file; in Slicer each group moves into
a collapsible section at its place, as Slicer's own modules present their panels. The job status comes first and,
with the engine and Generate, stays open; the other sections start collapsed. No Qt import: the caller passes the
binding's classes, and only calls that PythonQt and PyQt5 share are used (:func:`read_property` for getters).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SECTION_GROUPS", "EXPANDED", "read_property", "make_collapsible"]

SECTION_GROUPS = ("jobGroup", "engineGroup", "generateGroup", "channelsGroup", "tumourGroup", "prepareGroup",
                  "finetuneGroup", "exportGroup")
SECTION_GROUPS += ("cohortGroup", "progressionGroup")  # issue 18: cohorts and disease progression, last
EXPANDED = ("jobGroup", "engineGroup", "generateGroup")


def read_property(widget: Any, name: str) -> Any:
    """A Qt property's value: an attribute in PythonQt (Slicer), a getter method in PyQt5."""
    value = getattr(widget, name)
    return value() if callable(value) else value


def make_collapsible(container: Any, groups: dict[str, Any], collapsible_class: Any, box_layout_class: Any,
                     expanded: tuple[str, ...] = EXPANDED) -> dict[str, Any]:
    """Put each group (object name -> group box, all in ``container``'s layout) into a new ``collapsible_class``
    (``ctk.ctkCollapsibleButton`` in Slicer) titled like it, at its place; returns the sections by group name."""
    layout = container.layout()
    sections = {}
    for name, group in groups.items():
        index = layout.indexOf(group)
        section = collapsible_class()
        section.setText(read_property(group, "title"))
        section.setObjectName(name.replace("Group", "CollapsibleButton"))
        layout.removeWidget(group)
        layout.insertWidget(index, section)
        box_layout_class(section).addWidget(group)
        group.setTitle("")
        group.setFlat(True)
        section.setCollapsed(name not in expanded)
        sections[name] = section
    return sections
