"""Progress at scale: the bar and an engine job say the same numbers (cases done, cases/h, ETA); a resumed run's kept
cases are no speed; the journal watch of a multi-process run reports only growth, and the last count on leaving."""

from __future__ import annotations

import io

import medsynth_engine.progress as progress_module
from medsynth_engine.jobs.journalled import SetProgress
from medsynth_engine.jobs.spec import RunContext
from medsynth_engine.progress import JournalWatch, ProgressBar, Throughput, describe


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_and_eta_come_from_the_cases_made_in_this_run(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    fresh = Throughput()
    clock.now += 20.0
    assert fresh(4, 10) == {"elapsed_s": 20.0, "per_hour": 720.0, "eta_s": 30.0}  # 4 cases in 20 s
    resumed = Throughput()
    resumed.started_from(6)  # six cases were kept from the interrupted run
    clock.now += 10.0
    assert resumed(8, 10) == {"elapsed_s": 10.0, "per_hour": 720.0, "eta_s": 10.0}
    assert Throughput()(0, 10)["eta_s"] is None
    assert describe(4, 10, {"per_hour": 720.0, "eta_s": 30.0}) == "4/10 cases, 720 cases/h, ETA 30 s"
    assert describe(10, 10, {"per_hour": 7200.0, "eta_s": 0.0}) == "10/10 cases, 7,200 cases/h"


def test_the_bar_and_an_engine_job_report_the_same_numbers(monkeypatch, tmp_path):
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    stream = io.StringIO()
    bar = ProgressBar("Generating", stream=stream, header="Device: cpu")
    reports: list[dict] = []
    job = SetProgress(RunContext(tmp_path, reports.append, lambda line: None, lambda: False), timed=True)
    clock.now += 20.0
    bar(4, 10)
    job(4, 10)
    assert stream.getvalue().startswith("Device: cpu\n\rGenerating [############..................] 4/10   20.0s  720/h  ETA  30.0s")
    assert reports[-1]["cases_per_hour"] == 720.0 and reports[-1]["eta_s"] == 30.0
    assert reports[-1]["message"] == "case 4/10, 720 cases/h, ETA 30 s"
    bar.end_line()
    assert stream.getvalue().endswith("\n")


def test_the_journal_watch_reports_growth_only_and_the_last_count():
    counts = iter([0, 2, 2, 1, 5])
    seen: list[tuple[int, int]] = []
    with JournalWatch(lambda: next(counts), 5, lambda done, total: seen.append((done, total)), interval=3600) as watch:
        for _ in range(4):
            watch.poll()
    assert seen == [(0, 5), (2, 5), (5, 5)]  # a count that went down (a published set's journal is gone) is not reported
