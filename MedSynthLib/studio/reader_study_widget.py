"""The Reader Study section: one blinded case at a time, real or synthetic and how sure, scored at the end.

A thin Qt face over :class:`MedSynthLib.reader_study.ReaderSession` (which holds all the logic and saves
every answer at once). The widget emits ``caseReady`` with the case folder to show; the window shows it in
its slice views. The answer choice is cleared for every case, so a reader must choose each time.
"""

from __future__ import annotations

from pathlib import Path

from PyQt5 import QtCore, QtWidgets, uic

from ..reader_study import CONFIDENCE, ReaderSession, ReaderStudyError, describe_score, score
from .panel import find_ui_file

__all__ = ["ReaderStudyWidget"]


class ReaderStudyWidget(QtWidgets.QGroupBox):
    """Study folder and reader name; the current case; real/synthetic and confidence; the key and the score."""

    #: The folder of the case to show now.
    caseReady = QtCore.pyqtSignal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Reader Study", parent)
        self.session: ReaderSession | None = None
        inner = uic.loadUi(str(find_ui_file("MedSynthReaderStudy.ui")))  # the Slicer module's layout
        QtWidgets.QVBoxLayout(self).addWidget(inner)
        for child in inner.findChildren(QtWidgets.QWidget):
            setattr(self, child.objectName(), child)
        self.answerGroup = QtWidgets.QButtonGroup(self)
        for button in (self.realButton, self.syntheticButton):
            self.answerGroup.addButton(button)
        self.confidenceSpinBox.setRange(CONFIDENCE.start, CONFIDENCE.stop - 1)
        self.startButton.clicked.connect(lambda: self._guard(self.start))
        self.submitButton.clicked.connect(lambda: self._guard(self.submit))
        self.scoreButton.clicked.connect(lambda: self._guard(self.score_study))
        self.answerGroup.buttonClicked.connect(lambda _button: self._update())
        self._update()

    def _guard(self, action) -> None:
        self.errorLabel.setText("")
        try:
            action()
        except ReaderStudyError as exc:
            self.errorLabel.setText(str(exc))
        self._update()

    def start(self) -> None:
        """Open the study for this reader, continuing after their last saved answer."""
        self.session = ReaderSession(Path(self.studyEdit.text().strip()), self.readerEdit.text().strip())
        self._show_current()

    def submit(self) -> None:
        """Record the chosen answer for the shown case and move to the next."""
        if self.session is None or self.answerGroup.checkedButton() is None:
            raise ReaderStudyError("Choose Real or Synthetic first.")
        answer = "real" if self.realButton.isChecked() else "synthetic"
        self.session.record(answer, self.confidenceSpinBox.value())
        self._show_current()

    def score_study(self) -> None:
        if self.session is None:
            raise ReaderStudyError("Start the study first.")
        self.resultLabel.setText(describe_score(score(self.session, Path(self.keyEdit.text().strip()))))

    def _show_current(self) -> None:
        self.answerGroup.setExclusive(False)
        for button in (self.realButton, self.syntheticButton):
            button.setChecked(False)
        self.answerGroup.setExclusive(True)
        case = self.session.current if self.session else None
        if case is not None:
            self.caseReady.emit(str(next(iter(case.files.values())).parent))

    def _update(self) -> None:
        session = self.session
        if session is None:
            self.caseLabel.setText("No study open.")
        elif session.finished:
            self.caseLabel.setText(f"All {session.total} case(s) answered; thank you. Score with the answer key.")
        else:
            self.caseLabel.setText(f"Case {session.answered + 1} of {session.total}: {session.current.id}")
        open_case = session is not None and not session.finished
        for widget in (self.realButton, self.syntheticButton, self.confidenceSpinBox):
            widget.setEnabled(open_case)
        self.submitButton.setEnabled(open_case and self.answerGroup.checkedButton() is not None)
        self.scoreButton.setEnabled(session is not None and session.answered > 0)
