"""Named kill points: where a test may SIGKILL the process to prove that nothing is ever half-written.

The code calls ``killpoint("checkpoint.weights")`` at each place where a crash would be worst (between the writes
that make one result). In normal runs that is one comparison. With ``MEDSYNTH_KILL_AT=NAME`` (or ``NAME:COUNT``,
the COUNT-th time the point is reached) in the environment, the process kills itself there with SIGKILL: no
``finally``, no ``atexit``, exactly what a power cut or the OOM killer leaves. The variable is read once, at the
first point reached. ``Testing/engine/killpoints.py`` runs the real commands this way.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "killpoint", "POINTS"]

ENV = "MEDSYNTH_KILL_AT"
#: Every point the code calls, so a test (and a typo in the variable) can be checked against them.
POINTS = (
    "finetune.step", "finetune.logged", "checkpoint.weights", "checkpoint.state", "model.weights", "model.card",
    "set.case-files", "set.case-recorded", "set.manifest", "set.published",
    "add-channel.written", "add-channel.renamed", "add-tumour.written",
    "prepare.case", "prepare.written",
    "jobs.folder", "jobs.task", "jobs.created", "jobs.running", "jobs.ended",
)
_UNREAD = object()
_target: object = _UNREAD
_left = 0


def _arm() -> str | None:
    global _left
    spec = os.environ.get(ENV, "")
    if not spec:
        return None
    name, _, count = spec.partition(":")
    if name not in POINTS:
        raise ValueError(f"{ENV}={spec}: there is no kill point '{name}'; the points are {', '.join(POINTS)}.")
    _left = int(count or 1)
    return name


def killpoint(name: str) -> None:
    """SIGKILL this process if ``MEDSYNTH_KILL_AT`` names this point (and its count is reached); else nothing."""
    global _target, _left
    if _target is _UNREAD:
        _target = _arm()
    if _target is None or name != _target:
        return
    _left -= 1
    if _left <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
