"""The Reader Study section: one blinded case at a time, real or synthetic and how sure, scored at the end.

A thin Qt face over :class:`MedSynthLib.reader_study.ReaderSession` (which holds all the logic and saves
every answer at once). The widget emits ``caseReady`` with the case folder to show; the window shows it in
its slice views. The answer choice is cleared for every case, so a reader must choose each time.
"""

from __future__ import annotations

from pathlib import Path

from PyQt5 import QtCore, QtWidgets

from ..reader_study import CONFIDENCE, ReaderSession, ReaderStudyError, score

__all__ = ["ReaderStudyWidget", "describe_score"]


def describe_score(result: dict) -> str:
    """One line for the panel: overall accuracy, per truth, and chance."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f}%"

    by = result["by_truth"]
    return (
        f"Accuracy {pct(result['accuracy'])} on {result['answered']} of {result['total']} case(s) "
        f"(real {pct(by['real']['accuracy'])}, synthetic {pct(by['synthetic']['accuracy'])}; chance 50%)."
    )


class ReaderStudyWidget(QtWidgets.QGroupBox):
    """Study folder and reader name; the current case; real/synthetic and confidence; the key and the score."""

    #: The folder of the case to show now.
    caseReady = QtCore.pyqtSignal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Reader Study", parent)
        self.session: ReaderSession | None = None
        form = QtWidgets.QFormLayout(self)
        self.studyEdit = QtWidgets.QLineEdit()
        self.studyEdit.setPlaceholderText("folder written by medsynth reader-study")
        self.readerEdit = QtWidgets.QLineEdit()
        self.readerEdit.setPlaceholderText("your initials, e.g. dr-a")
        self.startButton = QtWidgets.QPushButton("Start / continue")
        self.caseLabel = QtWidgets.QLabel("No study open.")
        self.realButton = QtWidgets.QRadioButton("Real")
        self.syntheticButton = QtWidgets.QRadioButton("Synthetic")
        self.answerGroup = QtWidgets.QButtonGroup(self)
        for button in (self.realButton, self.syntheticButton):
            self.answerGroup.addButton(button)
        self.confidenceSpinBox = QtWidgets.QSpinBox()
        self.confidenceSpinBox.setRange(CONFIDENCE.start, CONFIDENCE.stop - 1)
        self.confidenceSpinBox.setValue(3)
        self.confidenceSpinBox.setToolTip("1 = a guess, 5 = certain")
        self.submitButton = QtWidgets.QPushButton("Record and next")
        self.keyEdit = QtWidgets.QLineEdit()
        self.keyEdit.setPlaceholderText("answer key (the organiser's file)")
        self.scoreButton = QtWidgets.QPushButton("Score")
        self.resultLabel = QtWidgets.QLabel("")
        self.resultLabel.setWordWrap(True)
        self.errorLabel = QtWidgets.QLabel("")
        self.errorLabel.setWordWrap(True)
        self.errorLabel.setStyleSheet("color: #b00")
        answers = QtWidgets.QHBoxLayout()
        answers.addWidget(self.realButton)
        answers.addWidget(self.syntheticButton)
        answers.addWidget(QtWidgets.QLabel("confidence"))
        answers.addWidget(self.confidenceSpinBox)
        form.addRow("Study folder", self.studyEdit)
        form.addRow("Reader", self.readerEdit)
        form.addRow(self.startButton)
        form.addRow(self.caseLabel)
        form.addRow(answers)
        form.addRow(self.submitButton)
        form.addRow("Answer key", self.keyEdit)
        form.addRow(self.scoreButton)
        form.addRow(self.resultLabel)
        form.addRow(self.errorLabel)
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
