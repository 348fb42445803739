"""The panel's Progression section: submit a ``progress`` job for a case folder, then step through the series' time
points with a slider, each shown in the slice views.

:func:`progress_params` turns the section's fields into the job's params (one sentence per mistake);
:class:`SeriesTimeline` reads a finished series' ``manifest.json`` (time points, their case folders, the tumour's
volume); :class:`ProgressionSection` wires the widgets to both and asks the panel's logic to load and show a time
point. No Qt import; the widget calls are those PythonQt (Slicer) offers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .i18n import _
from .requests import InputError

__all__ = ["MODELS", "progress_params", "TimePoint", "SeriesTimeline", "ProgressionSection"]

MODELS = ("growth", "atrophy")


def progress_params(case: str, model: str, months: str) -> dict[str, Any]:
    """The ``progress`` job's params for a case folder, a model and comma-separated months (e.g. ``0,3,6,12``)."""
    if not case.strip():
        raise InputError("Choose the case folder to progress (a BraTS-style folder the engine can read).")
    folder = Path(case.strip()).expanduser()
    if not folder.is_dir():
        raise InputError(f"The case folder {folder} does not exist.")
    if model not in MODELS:
        raise InputError(f"Choose growth or atrophy, not '{model}'.")
    try:
        values = [float(p) for p in months.replace(" ", "").split(",") if p]
    except ValueError:
        raise InputError(f"The months '{months}' are not comma-separated numbers such as 0,3,6,12.") from None
    if not values or values != sorted(set(values)):
        raise InputError(f"The months '{months}' must increase with no repeats, e.g. 0,3,6,12.")
    return {"case": str(folder.absolute()), "model": model, "months": values}


@dataclass(frozen=True)
class TimePoint:
    month: float
    case_dir: Path
    whole_ml: float


class SeriesTimeline:
    """A written series' time points, in order, from its ``manifest.json``."""

    def __init__(self, series_dir: Path) -> None:
        manifest = Path(series_dir) / "manifest.json"
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            raise InputError(f"{manifest} cannot be read as a progression series' manifest.") from None
        self.model = str(data.get("model", ""))
        self.points = [
            TimePoint(float(tp["month"]), Path(series_dir) / tp["case"], float(tp.get("volumes", {}).get("whole_ml", 0.0)))
            for tp in data.get("time_points", [])
        ]
        if not self.points:
            raise InputError(f"{manifest} lists no time points.")

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> SeriesTimeline:
        """The series a succeeded ``progress`` job wrote (its ``output_dir``, on this machine's file system)."""
        return cls(Path((job.get("result") or {}).get("output_dir") or job["output_dir"]))

    def label(self, index: int) -> str:
        point = self.points[index]
        return _("Month {month} ({number} of {count}): whole tumour {volume} ml").format(
            month=f"{point.month:g}", number=index + 1, count=len(self.points), volume=f"{point.whole_ml:g}")


class ProgressionSection:
    """Wires the Progression section: Start submits the job (through ``submit``), a finished series fills the time
    slider, and moving the slider shows that time point (through ``show``, which loads it once and shows it)."""

    def __init__(self, ui: Any, submit: Callable[[Callable[[], dict[str, Any]]], None], show: Callable[[Path], None]) -> None:
        self.ui, self.submit, self.show = ui, submit, show
        self.timeline: SeriesTimeline | None = None
        for model in MODELS:
            ui.progressModelComboBox.addItem(model)
        ui.progressTimeSlider.setMinimum(0)
        ui.progressTimeSlider.setMaximum(0)
        ui.progressTimeSlider.enabled = False
        ui.progressTimeLabel.text = _("No series yet.")
        ui.progressButton.connect("clicked()", self.start)
        ui.progressTimeSlider.connect("valueChanged(int)", self.show_point)

    def params(self) -> dict[str, Any]:
        return progress_params(self.ui.progressCaseEdit.text, self.ui.progressModelComboBox.currentText, self.ui.progressMonthsEdit.text)

    def start(self) -> None:
        """Hands ``submit`` the way to read the params, so the panel reports a mistake in its error line."""
        self.submit(self.params)

    def series_finished(self, job: dict[str, Any]) -> None:
        """A progress job succeeded: the slider spans its time points and the first one is shown."""
        self.timeline = SeriesTimeline.from_job(job)
        slider = self.ui.progressTimeSlider
        slider.setMaximum(len(self.timeline.points) - 1)
        slider.enabled = True
        if slider.value == 0:
            self.show_point(0)
        else:
            slider.value = 0  # valueChanged shows it

    def show_point(self, index: int) -> None:
        if self.timeline is None or not 0 <= index < len(self.timeline.points):
            return
        self.ui.progressTimeLabel.text = self.timeline.label(index)
        self.show(self.timeline.points[index].case_dir)

    def update(self, reason: str) -> None:
        """Start is enabled when a job may be submitted (``reason`` empty), else says why not."""
        self.ui.progressButton.enabled = not reason
        self.ui.progressButton.toolTip = reason
