"""What the MedSynth module's Logic does besides Slicer's settings: engine calls and scene work, never waiting.

Each ``xxxJob`` method reads the parameters and the MRML scene (on the GUI thread) and returns the engine call,
which the panel runs on the worker thread (:meth:`PanelLogic.inBackground`); the plain methods run both at once,
for scripts. ``parameters`` is the module's parameter node (any object with its attributes). ``MedSynthLogic``
(MedSynth/MedSynth.py) mixes this in beside ``ScriptedLoadableModuleLogic``. Needs Slicer's MRML, imports no Qt.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .background import BackgroundCalls
from .controller import InputError, PanelController, result_to_load
from .credentials import CredentialStore, resolve_credential
from .i18n import _
from .lossplot import LossPlot
from .scene import (
    CASE_ATTRIBUTE,
    CaseBuilder,
    LoadedCase,
    load_case,
    save_channel_inputs,
    save_nodes,
    write_tumour_mask,
)
from .scene.display import show_case, show_channel_nodes
from .scene.reading import CaseArrays, read_case_arrays, read_files_arrays

__all__ = ["PanelLogic"]


class PanelLogic:
    """The engine link (start, connect, poll, shutdown), the jobs and loading their results into ``slicer.mrmlScene``."""

    POLL_S = 0.5

    def __init__(self) -> None:
        self.controller = PanelController()
        self.background = BackgroundCalls()
        self._polling, self._nextPoll = False, 0.0
        self.lossPlot: LossPlot | None = None
        self.loadedCases: list[LoadedCase] = []
        self._building: list[tuple[str, CaseBuilder]] = []  # results being made into nodes, one node per tick
        self._foldersAsked: set[str] = set()  # case folders showCaseFolder is loading or has loaded

    @property
    def scene(self) -> Any:
        import slicer  # Slicer's, or PyPI slicer-core's in tests

        return slicer.mrmlScene

    def inBackground(self, work, done=None, failed=None) -> None:
        """Run ``work()`` (engine start, HTTP) on the worker thread; ``done``/``failed`` run later in :meth:`tick`."""
        self.background.call(work, done, failed)

    def tick(self) -> dict | None:
        """One GUI timer tick, never waiting: finished background calls report, the next node of a result being
        loaded is made, a poll of the followed job is queued (at most one at a time, every ``POLL_S``); returns the
        job that has just ended (once), else None."""
        self.background.drain()
        self._buildStep()
        now = time.monotonic()
        if self.controller.tracker.active and not self._polling and now >= self._nextPoll:
            self._polling, self._nextPoll = True, now + self.POLL_S
            self.background.call(self.controller.poll, self._polled, self._pollFailed)
        return self.controller.take_finished()

    def _polled(self, job) -> None:
        self._polling = False

    def _pollFailed(self, exc: BaseException) -> None:
        self._polling = False
        self.controller.error = str(exc)

    def connect(self, url: str, tokenOrFile: str = "") -> dict:
        """Connect to a running engine; ``tokenOrFile`` is its token file's path or the token itself, or empty for
        the token saved for ``url`` (MedSynthLib.credentials: the user's 0600 file, never the scene)."""
        return self.connectJob(url, tokenOrFile)()

    def connectJob(self, url: str, tokenOrFile: str = ""):
        store = CredentialStore()
        token = resolve_credential(tokenOrFile) or store.token(url)
        if not token:
            raise InputError(_(
                "No token is saved for {url}; paste the engine's token or the path of its token file (engine.token "
                "in the engine's state folder)."
            ).format(url=url.strip() or _("this engine")))

        def connect() -> dict:
            health = self.controller.connect(url, token=token)
            store.save(url, token)
            return health

        return connect

    def shutdown(self) -> str:
        """Stop an engine started here unless a job runs; says what happened."""
        process = self.controller.session.process
        if process is None:
            return ""
        if self.controller.stop_engine():
            return "The MedSynth engine was stopped."
        return f"The MedSynth engine keeps running (pid {process.pid}) to finish its {self.controller.tracker.kind} job."

    # -- jobs: each xxxJob reads the scene and the parameters (GUI thread) and returns the engine call, which the
    # panel runs on the worker thread (inBackground); the plain methods run both at once, for scripts.

    def generate(self, parameters: Any, model: str) -> dict:
        return self.generateJob(parameters, model)()

    def generateJob(self, parameters: Any, model: str, cohort: dict | None = None):
        """``cohort``: the Cohort section's strata (MedSynthLib.cohorteditor); its counts replace ``count``."""
        inputs = {"model": model, "count": parameters.count, "seed": parameters.seed, "channels": parameters.channels,
                  "tumour": parameters.tumour, "voxel_size": parameters.voxelSize, "truncation": parameters.truncation}
        if cohort is not None:
            inputs["cohort"] = cohort
        return lambda: self.controller.generate(**inputs)

    def progressJob(self, params: dict):
        """A ``progress`` job (MedSynthLib.progressionpanel.progress_params); the series is shown by the section."""
        return lambda: self.controller.progress(**params)

    def showCaseFolder(self, caseDir) -> None:
        """Show the case of ``caseDir`` in the views: at once when it is in the scene, else loaded on the worker
        thread (once) and shown when built."""
        name = Path(caseDir).name
        loaded = next((c for c in reversed(self.loadedCases) if c.case_id == name), None)
        if loaded is not None:
            show_case(loaded)
        elif name not in self._foldersAsked:
            self._foldersAsked.add(name)
            self.inBackground(lambda: ("case", read_case_arrays(Path(caseDir))), self._startBuilding, self._loadFailed)

    def finetune(self, parameters: Any, model: str) -> dict:
        return self.finetuneJob(parameters, model)()

    def finetuneJob(self, parameters: Any, model: str):
        inputs = {"data": parameters.dataFolder, "model": model, "channels": parameters.finetuneChannels,
                  "steps": parameters.steps}
        return lambda: self.controller.finetune(**inputs)

    def export(self, parameters: Any) -> dict:
        return self.exportJob(parameters)()

    def exportJob(self, parameters: Any):
        inputs = {"out": parameters.exportFolder, "layout": parameters.layout, "channels": parameters.exportChannels,
                  "audit_against": parameters.exportAuditAgainst}
        return lambda: self.controller.export(**inputs)

    def poll(self) -> dict | None:
        """Poll the followed job now (waits on the engine: scripts, not the GUI); returns the job that just ended."""
        self.controller.poll()
        return self.controller.take_finished()

    @staticmethod
    def _caseName(volumeNode) -> str:
        return volumeNode.GetAttribute(CASE_ATTRIBUTE) or volumeNode.GetName()

    def addChannel(self, channel: str, volumeNode, model: str | None = None) -> dict:
        """Save ``volumeNode`` (with its case's other MR sequences) where the engine reads it, submit add-channel.

        When the job succeeds, :meth:`loadResult` shows the new segmentation or CT.
        """
        return self.addChannelJob(channel, volumeNode, model)()

    def addChannelJob(self, channel: str, volumeNode, model: str | None = None):
        reason = self.controller.channel_tool_reason(channel, volumeNode.GetName() if volumeNode else None)
        if reason:
            raise InputError(reason)
        caseDir = self.controller.input_folder(self._caseName(volumeNode))
        save_channel_inputs(volumeNode, caseDir, self.scene)
        return lambda: self.controller.add_channel(channel, caseDir, model)

    def _tumourMask(self, segmentationNode, segmentId, asLabels: bool, reference=None):
        """The drawn tumour written as a NIfTI mask for the engine: (path, whether it is an outline)."""
        if segmentationNode is None or (not asLabels and not segmentId):
            raise InputError(_("Select the drawn tumour: a segmentation and one of its segments."))
        path = self.controller.input_folder("tumour").parent / "tumour-mask.nii.gz"
        outline = write_tumour_mask(segmentationNode, path, None if asLabels else segmentId, reference, self.scene)
        return path, outline

    def generateWithTumour(self, parameters: Any, model: str, segmentationNode, segmentId) -> dict:
        """A new case whose tumour is the drawn one (a mask-conditioned model such as ldm3d-phantom)."""
        return self.generateWithTumourJob(parameters, model, segmentationNode, segmentId)()

    def generateWithTumourJob(self, parameters: Any, model: str, segmentationNode, segmentId):
        reason = self.controller.tumour_reason("generate", segmentId or ("all" if parameters.tumourLabels else None))
        if reason:
            raise InputError(reason)
        mask, outline = self._tumourMask(segmentationNode, segmentId, parameters.tumourLabels)
        seed = parameters.tumourSeed
        return lambda: self.controller.generate_with_tumour(mask=mask, outline=outline, model=model, seed=seed)

    def addTumour(self, parameters: Any, model: str, segmentationNode, segmentId, volumeNode) -> dict:
        """The drawn tumour added to the case of ``volumeNode`` (voxels change only within the margin)."""
        return self.addTumourJob(parameters, model, segmentationNode, segmentId, volumeNode)()

    def addTumourJob(self, parameters: Any, model: str, segmentationNode, segmentId, volumeNode):
        segment = segmentId or ("all" if parameters.tumourLabels else None)
        reason = self.controller.tumour_reason("add", segment, volumeNode.GetName() if volumeNode else None)
        if reason:
            raise InputError(reason)
        mask, outline = self._tumourMask(segmentationNode, segmentId, parameters.tumourLabels, reference=volumeNode)
        caseDir = self.controller.input_folder(self._caseName(volumeNode))
        save_channel_inputs(volumeNode, caseDir, self.scene)
        inputs = {"case_dir": caseDir, "mask": mask, "outline": outline, "model": model, "seed": parameters.tumourSeed,
                  "margin_mm": parameters.tumourMargin, "steps": parameters.tumourSteps or None}
        return lambda: self.controller.add_tumour(**inputs)

    @staticmethod
    def readResult(job: dict) -> tuple[str, CaseArrays] | None:
        """What a succeeded job made, read into memory ("case" or "files", the arrays); safe on the worker thread."""
        what = result_to_load(job)
        if what is None:
            return None
        kind, value = what
        return kind, read_case_arrays(Path(value)) if kind == "case" else read_files_arrays(value)

    def loadResult(self, job: dict):
        """Show what a succeeded job made now (scripts): a generated or tumour-added case (its LoadedCase), or the
        new seg/CT channel's node(s)."""
        read = self.readResult(job)
        if read is None:
            return None
        builder = CaseBuilder(read[1], self.scene)
        while not builder.done:
            builder.step()
        return self._show(read[0], builder.loaded)

    def loadResultInSteps(self, job: dict) -> None:
        """Show what a succeeded job made without holding the GUI thread: the files are read on the worker thread,
        then :meth:`tick` makes one node per tick; a failure lands in the panel's error line."""
        self.inBackground(lambda: self.readResult(job), self._startBuilding, self._loadFailed)

    def loadCaseInSteps(self, read) -> None:
        """``read()`` (a :class:`CaseArrays`) on the worker thread, then shown as a case, one node per tick."""
        self.inBackground(lambda: ("case", read()), self._startBuilding, self._loadFailed)

    def prepareJob(self, parameters: Any, studyUids: list[str] | None = None, dicomDatabase: Any = None):
        """The Prepare section's engine call: a folder, or studies of Slicer's DICOM database (MedSynthLib.prepare_section)."""
        from .prepare_section import prepare_job

        return prepare_job(self, parameters, studyUids, dicomDatabase)

    def stopLoading(self) -> None:
        """Drop the results still being made into nodes (the scene is closing), removing what was made of them."""
        for _kind, builder in self._building:
            builder.abort()
        self._building = []

    def _startBuilding(self, read: tuple[str, CaseArrays] | None) -> None:
        if read is not None:  # after any result still being built: each is finished in turn
            self._building.append((read[0], CaseBuilder(read[1], self.scene)))

    def _loadFailed(self, exc: BaseException) -> None:
        self.controller.error = str(exc)

    def _buildStep(self) -> None:
        if not self._building:
            return
        kind, builder = self._building[0]
        try:
            loaded = builder.step()
        except BaseException:
            self._building.pop(0)
            raise
        if loaded is not None:
            self._building.pop(0)
            self._show(kind, loaded)

    def _show(self, kind: str, loaded: LoadedCase):
        if kind == "case":
            self.loadedCases.append(loaded)
            show_case(loaded)
            return loaded
        show_channel_nodes(loaded.nodes)
        return loaded.nodes

    # -- scene ------------------------------------------------------------------------------------------

    def loadCase(self, caseDir, show: bool = True) -> LoadedCase:
        """Load a case folder as volume nodes and a BraTS segmentation, and show it in the slice views."""
        loaded = load_case(Path(caseDir), self.scene)
        self.loadedCases.append(loaded)
        if show:
            show_case(loaded)
        return loaded

    @staticmethod
    def saveNodes(nodes, caseDir) -> dict:
        """Write volume/segmentation nodes as a BraTS-style case folder the engine can read (fine-tune data)."""
        import slicer

        return save_nodes(nodes, Path(caseDir), slicer.mrmlScene)

    def updateLossPlot(self, losses) -> Any:
        """Add the rows of ``losses`` not plotted yet to the loss chart (its own scene, see MedSynthLib.lossplot);
        returns the plot view node that shows it."""
        if self.lossPlot is None:
            self.lossPlot = LossPlot()
        self.lossPlot.update(losses)
        return self.lossPlot.view
