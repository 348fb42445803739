"""A reader's session of a blinded reader study (``medsynth reader-study``): no Qt, no torch, stdlib only.

The panel (Slicer module or studio) shows ``session.current`` one case at a time and calls
``session.record("real" | "synthetic", confidence)``; every answer is saved at once (temporary file and
rename), so closing the panel loses nothing and reopening continues where the reader stopped. At the end
``score(session, key)`` compares the answers with the key that the study's organiser kept apart.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ANSWERS", "CONFIDENCE", "StudyCase", "ReaderStudyError", "ReaderSession", "score", "describe_score"]

ANSWERS = ("real", "synthetic")
CONFIDENCE = range(1, 6)  # 1 guess ... 5 certain
STUDY_FILE = "study.json"
STUDY_FORMAT = "medsynth-reader-study"


class ReaderStudyError(Exception):
    """A problem with the study folder, the answers or the key, as one sentence."""


@dataclass(frozen=True)
class StudyCase:
    id: str
    files: dict[str, Path]  # channel -> absolute path


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReaderStudyError(f"{path} does not exist; {what}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ReaderStudyError(f"{path} is not readable JSON; {what}.") from None
    if not isinstance(data, dict):
        raise ReaderStudyError(f"{path} is not a JSON object; {what}.")
    return data


def _write_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ReaderSession:
    """One reader going through one study, in the study's (shuffled) order."""

    def __init__(self, study: Path | str, reader: str, responses: Path | str | None = None) -> None:
        self.study = Path(study)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", reader or ""):
            raise ReaderStudyError("The reader's name may use letters, digits, '.', '_' and '-' only (up to 64).")
        self.reader = reader
        meta = _read_json(self.study / STUDY_FILE, "choose the folder that medsynth reader-study wrote")
        if meta.get("format") != STUDY_FORMAT or not isinstance(meta.get("cases"), list) or not meta["cases"]:
            raise ReaderStudyError(f"{self.study} is not a MedSynth reader study (its study.json lists no cases).")
        self.instructions = str(meta.get("instructions", ""))
        self.cases = [StudyCase(str(c["id"]), {ch: self.study / rel for ch, rel in c["files"].items()}) for c in meta["cases"]]
        self.responses_path = Path(responses) if responses else self.study / f"responses-{reader}.json"
        self.answers: dict[str, dict[str, Any]] = {}
        if self.responses_path.exists():
            saved = _read_json(self.responses_path, "move it away to start again")
            known = {c.id for c in self.cases}
            self.answers = {k: v for k, v in saved.get("answers", {}).items() if k in known}
        self._shown = time.monotonic()

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def answered(self) -> int:
        return len(self.answers)

    @property
    def finished(self) -> bool:
        return self.answered == self.total

    @property
    def current(self) -> StudyCase | None:
        """The first case not answered yet (None when finished)."""
        return next((c for c in self.cases if c.id not in self.answers), None)

    def record(self, answer: str, confidence: int) -> StudyCase | None:
        """Save the answer for the current case and return the next one (None when finished)."""
        case = self.current
        if case is None:
            raise ReaderStudyError("Every case is answered already; score the study.")
        if answer not in ANSWERS:
            raise ReaderStudyError(f"The answer must be 'real' or 'synthetic', not '{answer}'.")
        if confidence not in CONFIDENCE:
            raise ReaderStudyError(f"The confidence must be 1 (guess) to 5 (certain), not {confidence}.")
        now = time.monotonic()
        self.answers[case.id] = {"answer": answer, "confidence": int(confidence), "seconds": round(now - self._shown, 1)}
        self._shown = now
        _write_json(self.responses_path, {"format": f"{STUDY_FORMAT}-responses", "reader": self.reader, "answers": self.answers})
        return self.current


def score(session: ReaderSession, key: Path | str) -> dict[str, Any]:
    """Accuracy of the answers against the key: overall, per truth and per confidence level (answered cases only)."""
    data = _read_json(Path(key), "give the answer key that medsynth reader-study wrote beside the study folder")
    truths = {k: v.get("truth") for k, v in data.get("cases", {}).items()} if isinstance(data.get("cases"), dict) else {}
    missing = [c.id for c in session.cases if c.id not in truths]
    if not truths or missing:
        raise ReaderStudyError(f"The key {key} does not belong to this study (it lacks {', '.join(missing[:3]) or 'every case'}).")
    rows = [(truths[k], v["answer"], v["confidence"]) for k, v in session.answers.items()]

    def accuracy(items: list[tuple[str, str, int]]) -> float | None:
        return sum(t == a for t, a, _ in items) / len(items) if items else None

    return {
        "reader": session.reader,
        "answered": len(rows),
        "total": session.total,
        "accuracy": accuracy(rows),
        "by_truth": {t: {"n": len(r), "accuracy": accuracy(r)} for t in ANSWERS for r in [[x for x in rows if x[0] == t]]},
        "by_confidence": {str(c): {"n": len(r), "accuracy": accuracy(r)} for c in CONFIDENCE for r in [[x for x in rows if x[2] == c]] if r},
        "confusion": {f"{t}->{a}": sum(1 for x in rows if x[0] == t and x[1] == a) for t in ANSWERS for a in ANSWERS},
        "chance": 0.5,
    }


def describe_score(result: dict) -> str:
    """One line for the panel: overall accuracy, per truth, and chance."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f}%"

    by = result["by_truth"]
    return (
        f"Accuracy {pct(result['accuracy'])} on {result['answered']} of {result['total']} case(s) "
        f"(real {pct(by['real']['accuracy'])}, synthetic {pct(by['synthetic']['accuracy'])}; chance 50%)."
    )
