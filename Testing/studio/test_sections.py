"""MedSynth.ui's group boxes moved into collapsible sections (MedSynthLib.sections), driven under PyQt5 on the real .ui.

ctkCollapsibleButton is not available outside Slicer; the stand-in below has exactly the two calls the helper makes on
it (``setText``, ``setCollapsed``, both ctkCollapsibleButton setters) on top of a real container widget.
"""

from __future__ import annotations

from pathlib import Path

from PyQt5 import QtWidgets, uic

from MedSynthLib.sections import EXPANDED, SECTION_GROUPS, make_collapsible

UI = Path(__file__).resolve().parents[2] / "MedSynth" / "Resources" / "UI" / "MedSynth.ui"


class CollapsibleStandIn(QtWidgets.QGroupBox):
    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self.setTitle(text)

    def setCollapsed(self, collapsed: bool) -> None:  # noqa: N802
        self.collapsed = collapsed


def test_every_group_moves_into_a_section_in_place(qtbot):
    panel = uic.loadUi(str(UI))
    qtbot.addWidget(panel)
    layout = panel.layout()
    groups = {name: getattr(panel, name) for name in SECTION_GROUPS}
    titles = {name: group.title() for name, group in groups.items()}
    places = {name: layout.indexOf(group) for name, group in groups.items()}
    sections = make_collapsible(panel, groups, CollapsibleStandIn, QtWidgets.QVBoxLayout)
    assert list(sections) == list(SECTION_GROUPS)
    for name, section in sections.items():
        assert layout.indexOf(section) == places[name]  # same order; the job status first
        assert groups[name].parent() is section and groups[name].title() == "" and groups[name].isFlat()
        assert section.title() == titles[name] and section.collapsed == (name not in EXPANDED)
    assert places["jobGroup"] == 0 and not sections["jobGroup"].collapsed
    assert sections["generateGroup"].isAncestorOf(panel.generateButton)  # the widgets travel with their group
