"""The journal of a set being written: what lets an interrupted batch run continue instead of starting again.

A set is written into one hidden temporary folder beside its target ``OUT``, always named ``.OUT.partial``:

- ``set/``: the set as it will be published; renamed to ``OUT`` in one step when it is complete.
- ``journal/run.json``: the arguments that decide the set's bytes (a resumed run must repeat them) and the key
  the case ids derive from.
- ``journal/cases/<index>.json``: one record per finished case (id, seed, files with their SHA-256, parameters).

Every record is its own file, written under a temporary name and renamed, so a record is complete or absent
whatever kills the run, and several writers (processes or nodes sharing the folder) never contend for one file.
A case without a record, or whose files no longer match their checksums, is discarded and made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from .errors import MedSynthError

__all__ = [
    "RunStopped", "Journal", "temporary_folder", "is_temporary", "leftovers", "clean", "case_id", "file_sha256",
    "differences", "resume_hint", "verify", "new_id_key", "continued_message",
]

JOURNAL_FORMAT = "medsynth-set-journal"
#: Hidden folders a set writer makes beside ``OUT``: this one, and those of earlier versions (random suffixes).
_TEMPORARY = re.compile(r"^\..+\.(partial|partial-[0-9a-f]+|audit-[0-9a-f]+)$")
#: How each argument is named to the user when a resumed run differs from the interrupted one.
_OPTION_NAMES = {
    "kind": "job kind", "software": "MedSynth version", "model": "--model", "weights_sha256": "model weights",
    "n": "-n", "seed": "--seed", "channels": "--channels", "layout": "--layout", "shape": "--shape",
    "spacing": "--spacing", "tumour": "--no-tumour (tumour)", "mask_sha256": "--mask file", "source": "--source",
    "source_manifest_sha256": "source set", "audit_against": "--audit-against", "audit_threshold": "--audit-threshold",
}


class RunStopped(Exception):
    """A run stopped on request (cancel, engine shutdown): its temporary folder is kept so it can be resumed."""


def temporary_folder(out: Path) -> Path:
    """The hidden folder where the set for ``out`` is written and journalled."""
    out = Path(out).absolute()
    return out.parent / f".{out.name}.partial"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is, or lies inside, a set writer's hidden temporary folder (never a set)."""
    return any(_TEMPORARY.match(part) for part in Path(path).absolute().parts)


def leftovers(out: Path) -> list[Path]:
    """Every temporary folder an unfinished run into ``out`` left beside it (this version's and older ones)."""
    out = Path(out).absolute()
    if not out.parent.is_dir():
        return []
    prefix = f".{out.name}."
    return sorted(p for p in out.parent.iterdir() if p.name.startswith(prefix) and _TEMPORARY.match(p.name) and p.is_dir())


def clean(out: Path) -> list[tuple[Path, int]]:
    """Remove what unfinished runs into ``out`` left; returns each folder removed with its count of finished cases."""
    removed = []
    for folder in leftovers(out):
        finished = len(Journal(folder / "journal").entries()) if (folder / "journal").is_dir() else 0
        shutil.rmtree(folder)
        removed.append((folder, finished))
    return removed


def case_id(key: str, index: int) -> str:
    """The id of case ``index`` of the run whose id key is ``key``: meaningless, yet the same in every run.

    A keyed 40-bit permutation (a four-round Feistel network over SHA-256), so the ids of one run never
    collide, show no order, and each worker can name its cases without asking the others.
    """
    if not 0 <= index < 2**40:
        raise MedSynthError(f"Case index {index} is out of range.")
    left, right = index >> 20, index & 0xFFFFF
    for round_ in range(4):
        digest = hashlib.sha256(f"{key}:{round_}:{right}".encode()).digest()
        left, right = right, left ^ (int.from_bytes(digest[:4], "big") & 0xFFFFF)
    return f"ms-{(left << 20) | right:010x}"


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two runs' arguments, each as 'NAME was X, now Y'."""
    found = []
    for name in sorted(set(before) | set(now), key=lambda n: (n not in _OPTION_NAMES, n)):
        if before.get(name) != now.get(name):
            found.append(f"{_OPTION_NAMES.get(name, name)} was {_show(before.get(name))}, now {_show(now.get(name))}")
    return found


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "not given" if value is None else str(value)


def resume_hint(out: Path) -> str:
    """One sentence saying what an interrupted run into ``out`` kept and how to continue or drop it."""
    folder = temporary_folder(out)
    finished = len(Journal(folder / "journal").entries()) if (folder / "journal").is_dir() else 0
    if not folder.is_dir():
        return "nothing was written."
    return (
        f"{finished} finished case(s) are kept in {folder}: run the same command with --resume to continue, "
        f"or with --discard (or medsynth clean {out}) to drop them."
    )


def continued_message(kept: int, total: int) -> str:
    """What a job's log and message say when it continues an interrupted run (the panel shows it)."""
    return f"Continued from case {kept + 1} of {total}: {kept} case(s) were already complete and verified."


class Journal:
    """The ``journal/`` folder of a temporary set folder: the run's arguments and one record per finished case."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.cases = self.folder / "cases"

    def start(self, arguments: dict[str, Any], id_key: str) -> None:
        """Begin a new journal for a run with these arguments."""
        self.cases.mkdir(parents=True)
        _write_atomically(self.folder / "run.json", {"format": JOURNAL_FORMAT, "version": 1, "arguments": arguments, "id_key": id_key})

    def run(self) -> dict[str, Any]:
        """The record of the run (arguments and id key); refuses a folder that holds no readable journal."""
        path = self.folder / "run.json"
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError):
            run = None
        if not isinstance(run, dict) or run.get("format") != JOURNAL_FORMAT or not isinstance(run.get("arguments"), dict):
            raise MedSynthError(
                f"{self.folder.parent} holds no readable journal, so it cannot be resumed; remove it with --discard or medsynth clean."
            )
        return run

    def check(self, arguments: dict[str, Any], out: Path) -> dict[str, Any]:
        """The run's record, if ``arguments`` are those of the interrupted run; else one sentence naming the difference."""
        run = self.run()
        found = differences(run["arguments"], arguments)
        if found:
            raise MedSynthError(
                f"Cannot resume the interrupted run into {out} with different arguments ({'; '.join(found)}); "
                "repeat its arguments, or start again with --discard."
            )
        return run

    def record(self, entry: dict[str, Any]) -> None:
        """Record one finished case (``index``, ``id``, ``seed``, ``files``, ``sha256``, ``params``)."""
        _write_atomically(self.cases / f"{int(entry['index']):07d}.json", entry)

    def forget(self, index: int) -> None:
        (self.cases / f"{index:07d}.json").unlink(missing_ok=True)

    def count(self) -> int:
        """How many cases are recorded (cheaper than reading them: a multi-process run's progress polls it)."""
        return sum(1 for _ in self.cases.glob("*.json")) if self.cases.is_dir() else 0

    def entries(self) -> dict[int, dict[str, Any]]:
        """Every finished case's record, by index; unreadable records (there should be none) count as unfinished."""
        found: dict[int, dict[str, Any]] = {}
        if not self.cases.is_dir():
            return found
        for path in self.cases.glob("*.json"):
            try:
                entry = json.loads(path.read_text())
                found[int(entry["index"])] = entry
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found


def verify(set_dir: Path, entry: dict[str, Any]) -> bool:
    """Whether every file of a recorded case is still there with the bytes it was written with."""
    sums = entry.get("sha256")
    if not isinstance(sums, dict) or set(sums) != set(entry.get("files", {}).values()):
        return False
    return all(file_sha256(set_dir / rel) == digest for rel, digest in sums.items())


def new_id_key() -> str:
    return secrets.token_hex(16)


def _write_atomically(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
