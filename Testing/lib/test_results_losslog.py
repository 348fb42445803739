"""A fine-tune's loss log followed as it grows: each read returns only what was appended (O(new rows) per poll)."""

from __future__ import annotations

import json

from MedSynthLib.results import LossLog


def _row(step: int, g: float) -> str:
    return json.dumps({"step": step, "stage": 8, "alpha": 1.0, "g": g, "time": 1.0}) + "\n"


def test_each_read_returns_the_new_complete_rows_only(tmp_path):
    path = tmp_path / "loss.jsonl"
    log = LossLog(path)
    assert log.read_new() == []  # not written yet
    path.write_text(_row(1, 2.0) + _row(2, 1.5) + '{"step": 3, "g"')  # the third line is being written
    assert log.read_new() == [(1, {"g": 2.0}), (2, {"g": 1.5})]
    assert log.read_new() == []
    with open(path, "a") as out:
        out.write(' : 1.25, "time": 1.0}\n' + _row(4, 1.0))
    assert log.read_new() == [(3, {"g": 1.25}), (4, {"g": 1.0})]


def test_a_resumed_run_logs_again_from_its_checkpoint_and_old_steps_are_not_repeated(tmp_path):
    path = tmp_path / "loss.jsonl"
    path.write_text(_row(1, 2.0) + _row(2, 1.5) + _row(3, 1.2))
    log = LossLog(path)
    assert [step for step, _ in log.read_new()] == [1, 2, 3]
    with open(path, "a") as out:
        out.write(_row(2, 1.5) + _row(3, 1.2) + _row(4, 1.1))  # resumed from the step-2 checkpoint
    assert log.read_new() == [(4, {"g": 1.1})]


def test_a_replaced_log_is_read_from_its_start(tmp_path):
    path = tmp_path / "loss.jsonl"
    path.write_text(_row(1, 2.0) + _row(2, 1.5))
    log = LossLog(path)
    log.read_new()
    path.write_text(_row(5, 0.5))  # shorter than what was read: a new file
    assert log.read_new() == [(5, {"g": 0.5})]
