"""MedSynth Reader Study: a clinician says, case by case and blinded, whether a brain MRI is real or synthetic.

A scripted module of its own (Slicer's convention: one module class per file, named as the file), beside MedSynth in
the same extension. The study folder is written by ``medsynth reader-study``; the session logic (order, answers
saved at once, scoring against the organiser's key) is ``MedSynthLib.reader_study``, shared with medsynth-studio,
which loads the same ``Resources/UI/MedSynthReaderStudy.ui``. Only the case being read is in the scene.
"""

from __future__ import annotations

import sys
from pathlib import Path

import slicer
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

try:
    import MedSynthLib  # noqa: F401 - shipped beside this file in the extension
except ImportError:  # running from a source checkout: MedSynthLib sits one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from MedSynthLib.background import BackgroundCalls
from MedSynthLib.reader_study import ReaderSession, ReaderStudyError, describe_score, score
from MedSynthLib.scene import CaseBuilder, LoadedCase, SceneError, load_case, remove_node
from MedSynthLib.scene.display import show_case
from MedSynthLib.scene.reading import read_case_arrays
from MedSynthLib.slicermodule import describe_module


class MedSynthReaderStudy(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describe_module(self.parent, _("MedSynth Reader Study"), _(
            "A blinded reader study: open the folder written by 'medsynth reader-study', enter your initials and "
            "say for each case whether it is real or synthetic and how sure you are. Every answer is saved at once; "
            "Start / continue resumes after the last one. The organiser scores the answers with the answer key."
        ), _("Built on 3D Slicer's scripted module template."))


class MedSynthReaderStudyWidget(ScriptedLoadableModuleWidget):
    """Wires ``Resources/UI/MedSynthReaderStudy.ui`` to the logic; errors go to the panel's red line."""

    def setup(self) -> None:
        import qt

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedSynthReaderStudy.ui"))
        self.layout.addWidget(uiWidget)
        self.layout.addStretch(1)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        self.logic = MedSynthReaderStudyLogic()
        self.answerGroup = qt.QButtonGroup(uiWidget)
        self.answerGroup.addButton(self.ui.realButton)
        self.answerGroup.addButton(self.ui.syntheticButton)
        self.ui.startButton.connect("clicked()", lambda: self._guard(self.onStart))
        self.ui.submitButton.connect("clicked()", lambda: self._guard(self.onRecord))
        self.ui.scoreButton.connect("clicked()", lambda: self._guard(self.onScore))
        self.timer = qt.QTimer()  # builds the next case in the scene one node per tick (its files read on a worker)
        self.timer.setInterval(100)
        self.timer.connect("timeout()", self.onTimer)
        self.timer.start()
        self._update()

    def cleanup(self) -> None:
        self.timer.stop()

    def onTimer(self) -> None:
        if not self.logic.loading:
            return
        try:
            self.logic.tick()
        except (ReaderStudyError, SceneError) as exc:
            self.ui.errorLabel.text = str(exc)
        self._update()

    def _guard(self, action) -> None:
        self.ui.errorLabel.text = ""
        try:
            action()
        except (ReaderStudyError, SceneError) as exc:
            self.ui.errorLabel.text = str(exc)
        self._update()

    def onStart(self) -> None:
        self.logic.openReaderStudy(self.ui.studyEdit.text.strip(), self.ui.readerEdit.text.strip())
        self.logic.showStudyCaseInSteps()

    def onRecord(self) -> None:
        if self.answerGroup.checkedButton() is None:
            raise ReaderStudyError(_("Choose Real or Synthetic first."))
        answer = "real" if self.ui.realButton.checked else "synthetic"
        self.logic.recordStudyAnswer(answer, self.ui.confidenceSpinBox.value, show=False)
        self.logic.showStudyCaseInSteps()

    def onScore(self) -> None:
        self.ui.resultLabel.text = describe_score(self.logic.scoreReaderStudy(self.ui.keyEdit.text.strip()))

    def _update(self) -> None:
        session = self.logic.readerSession
        self.answerGroup.exclusive = False  # clear the choice: every case needs its own answer
        self.ui.realButton.checked = self.ui.syntheticButton.checked = False
        self.answerGroup.exclusive = True
        if session is None:
            self.ui.caseLabel.text = _("No study open.")
        elif session.finished:
            self.ui.caseLabel.text = _("All {total} case(s) answered; score with the answer key.").format(
                total=session.total)
        else:
            self.ui.caseLabel.text = _("Case {number} of {total}: {case}").format(
                number=session.answered + 1, total=session.total, case=session.current.id)
        reading = session is not None and not session.finished and self.logic.studyCase is not None
        for widget in (self.ui.realButton, self.ui.syntheticButton, self.ui.confidenceSpinBox, self.ui.submitButton):
            widget.enabled = reading
        self.ui.scoreButton.enabled = session is not None and session.answered > 0


class MedSynthReaderStudyLogic(ScriptedLoadableModuleLogic):
    """One reader's session; usable from Slicer's Python console without the widget."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.readerSession: ReaderSession | None = None
        self.studyCase: LoadedCase | None = None
        self.background = BackgroundCalls("MedSynth reader study")
        self._builder: CaseBuilder | None = None

    def openReaderStudy(self, studyDir, reader: str) -> ReaderSession:
        """Open a blinded study written by ``medsynth reader-study`` for one reader (continues after saved answers)."""
        self.readerSession = ReaderSession(Path(studyDir), reader)
        return self.readerSession

    def _session(self) -> ReaderSession:
        if self.readerSession is None:
            raise ReaderStudyError("Open a reader study first.")
        return self.readerSession

    def _currentFolder(self) -> Path | None:
        """The reader's current case folder (None when finished), after removing the previous study case."""
        case = self._session().current
        if self.studyCase is not None:
            for node in self.studyCase.nodes:
                remove_node(slicer.mrmlScene, node)
            self.studyCase = None
        return next(iter(case.files.values())).parent if case is not None else None

    def showStudyCase(self) -> LoadedCase | None:
        """Show the reader's current case now (scripts), removing the previous study case; None when finished."""
        folder = self._currentFolder()
        if folder is not None:
            self.studyCase = load_case(folder, slicer.mrmlScene)
            show_case(self.studyCase)
        return self.studyCase

    def showStudyCaseInSteps(self) -> None:
        """What the panel does: the case's files read on a worker thread, its nodes made by :meth:`tick`."""
        folder = self._currentFolder()
        if folder is not None:
            self.background.call(lambda: read_case_arrays(folder), self._build)

    def _build(self, arrays) -> None:
        self._builder = CaseBuilder(arrays, slicer.mrmlScene)

    @property
    def loading(self) -> bool:
        return self.background.busy or self._builder is not None

    def tick(self) -> None:
        """One timer tick: collect the read case, make its next node; shows it when complete."""
        self.background.drain()  # a read that failed raises here (SceneError)
        if self._builder is None:
            return
        builder, self._builder = self._builder, None
        loaded = builder.step()  # a failed step removes what it made and raises
        if loaded is None:
            self._builder = builder
        else:
            self.studyCase = loaded
            show_case(loaded)

    def recordStudyAnswer(self, answer: str, confidence: int, show: bool = True) -> LoadedCase | None:
        """Save the answer for the shown case and show the next one (``show``: now; else the caller shows it)."""
        self._session().record(answer, confidence)
        return self.showStudyCase() if show else None

    def scoreReaderStudy(self, keyFile) -> dict:
        """Accuracy of this reader's answers against the organiser's key (see MedSynthLib.reader_study.score)."""
        return score(self._session(), Path(keyFile))


class MedSynthReaderStudyTest(ScriptedLoadableModuleTest):
    """Self-test inside Slicer (Developer Tools > Reload and Test)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_NoStudyOpen()

    def test_NoStudyOpen(self):
        logic = MedSynthReaderStudyLogic()
        with self.assertRaisesRegex(ReaderStudyError, "Open a reader study first"):
            logic.showStudyCase()
        self.assertIsNone(logic.studyCase)
