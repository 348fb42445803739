"""Which sequence a series is (t1, t1ce, t2, flair or unknown), from its headers, with a stated confidence.

Two independent kinds of evidence are weighed: the names people give (SeriesDescription, ProtocolName,
SequenceName, in the spellings of several vendors and languages) and the physics the scanner records
(inversion time, TR/TE, scanning sequence, contrast agent). Both agreeing gives high confidence; one alone
gives less; disagreement is resolved towards the name at low confidence, so the QC report asks for a look.
A user's map file (series description, series number or file name -> sequence) overrides everything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import MedSynthError

__all__ = ["Classification", "classify_headers", "classify_name", "load_sequence_map", "SEQUENCES"]

SEQUENCES = ("t1", "t1ce", "t2", "flair")
_FLAIR = re.compile(r"flair|tirm|dark[ _-]?fluid|fluid[ _-]?att|t2[ _-]?fl(?!ash)|\bt2f\b|\bda[ _-]?fl|irfse.*t2|t2.*\bir\b")
_CONTRAST = re.compile(
    r"\+ ?c\b|\bc\+|\bce\b|\bt1c\b|t1ce|\bgd\b|gad|gado|post|contrast|kontrast|\bkm\b|mit[ _-]?km|\bcm\b|"
    r"contraste|\bmdc\b|\bpc\b|enhanc|dotarem|gadovist|magnevist|multihance|prohance|clariscan"
)
_PRE = re.compile(r"\bpre\b|pre[ _-]?(contrast|gd|km)|nativ|native|sans|ohne[ _-]?km|\bsin\b")
_T1 = re.compile(r"t1|mprage|mp[ _-]?rage|spgr|bravo|\btfe\b|t1[ _-]?tfe|flash|vibe|\bir[ _-]?fspgr|mpr\b|3d[ _-]?t1|\bt1n\b")
_T2 = re.compile(r"t2|\btse\b|\bfse\b|\bspace\b|cube|\bt2w\b|\bdrive\b|haste")


@dataclass(frozen=True)
class Classification:
    """A sequence name, how sure (0-1), the evidence in words (console only: it quotes header values) and its basis.

    ``basis`` (name+timing, name, timing, map or none) says what kind of evidence it was without quoting any
    header, so it may be written into the output's QC.
    """

    sequence: str
    confidence: float
    evidence: str
    basis: str = "none"


def classify_name(text: str) -> tuple[str, str] | None:
    """(sequence, evidence) from a description, protocol or file name; None when the name says nothing."""
    name = text.lower().replace("_", " ")
    if not name.strip():
        return None
    if _FLAIR.search(name):
        return "flair", "name says FLAIR"
    if _T1.search(name):
        if _CONTRAST.search(name) and not _PRE.search(name):
            return "t1ce", "name says T1 with contrast"
        return "t1", "name says T1"
    if _T2.search(name):
        return "t2", "name says T2"
    if _CONTRAST.search(name) and not _PRE.search(name):
        return "t1ce", "name says contrast"
    return None


def _physics(headers: dict) -> tuple[str, str] | None:
    tr = headers.get("RepetitionTime") or 0.0
    te = headers.get("EchoTime") or 0.0
    ti = headers.get("InversionTime") or 0.0
    scanning = " ".join(headers.get("ScanningSequence") or []) if isinstance(headers.get("ScanningSequence"), list) else str(headers.get("ScanningSequence") or "")
    agent = str(headers.get("ContrastBolusAgent") or "").strip()
    inversion = ti > 0 or "IR" in scanning.upper().split()
    if inversion and ti >= 1500 and tr >= 4000:
        return "flair", f"inversion time {ti:.0f} ms with TR {tr:.0f} ms (fluid nulled)"
    if tr and te and tr >= 2000 and te >= 60 and not (inversion and ti < 1500):
        return "t2", f"long TR {tr:.0f} ms and TE {te:.0f} ms"
    t1_like = (tr and te and tr < 1000 and te < 30) or (inversion and 300 <= ti < 1500 and te < 10)
    if t1_like:
        if agent:
            return "t1ce", "T1 timing with a contrast agent recorded"
        return "t1", f"short TR {tr:.0f} ms and TE {te:.0f} ms" if not inversion else f"T1 inversion recovery (TI {ti:.0f} ms)"
    return None


def classify_headers(headers: dict) -> Classification:
    """Classify one DICOM series from the header values ``dicom.HEADER_FIELDS`` collects."""
    text = " ".join(str(headers.get(k) or "") for k in ("SeriesDescription", "ProtocolName", "SequenceName"))
    by_name = classify_name(text)
    by_physics = _physics(headers)
    if by_name and by_physics:
        if by_name[0] == by_physics[0]:
            return Classification(by_name[0], 0.95, f"{by_name[1]}; {by_physics[1]}", "name+timing")
        if {by_name[0], by_physics[0]} == {"t1", "t1ce"}:
            # Contrast agents are often left out of the header, and "post" is often left out of the name.
            return Classification("t1ce", 0.8, f"{by_name[1]}; {by_physics[1]}", "name+timing")
        return Classification(by_name[0], 0.5, f"{by_name[1]}, but {by_physics[1]} suggests {by_physics[0]}", "name, timing disagrees")
    if by_name:
        return Classification(by_name[0], 0.7, by_name[1], "name")
    if by_physics:
        return Classification(by_physics[0], 0.6, by_physics[1], "timing")
    return Classification("unknown", 0.0, "neither the name nor the timing identifies it")


def load_sequence_map(path: Path | None) -> dict[str, str]:
    """A user's overrides: JSON object of series description, series number, series UID or file name -> sequence."""
    if path is None:
        return {}
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MedSynthError(f"The sequence map {path} does not exist.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise MedSynthError(f"The sequence map {path} is not a JSON file.") from None
    if not isinstance(data, dict):
        raise MedSynthError(f"The sequence map {path} must be a JSON object such as {{\"AX T1 POST\": \"t1ce\"}}.")
    allowed = (*SEQUENCES, "ignore")
    mapping = {}
    for key, value in data.items():
        if str(value).lower() not in allowed:
            raise MedSynthError(f"The sequence map {path} maps '{key}' to '{value}'; use one of {', '.join(allowed)}.")
        mapping[str(key).strip().lower()] = str(value).lower()
    return mapping


def mapped(mapping: dict[str, str], *keys: object) -> str | None:
    """The map's sequence for the first of ``keys`` it names (case-insensitive), else None."""
    for key in keys:
        if key is not None and str(key).strip().lower() in mapping:
            return mapping[str(key).strip().lower()]
    return None
