"""Which folders a job may read from or write to, and safe joins for file downloads.

A token holder must not be able to make the engine read or overwrite arbitrary files, so every path in
job parameters has to lie under one of the allowed folders (the state folder and the user's home by
default; ``--allow-dir`` replaces the home).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MedSynthError
from .spec import Forbidden

__all__ = ["PathPolicy", "safe_join"]


class PathPolicy:
    def __init__(self, allowed: list[Path]) -> None:
        self.allowed = [Path(p).expanduser().resolve() for p in allowed]

    def check(self, path: str | Path, what: str) -> Path:
        """The absolute, resolved ``path`` if it lies under an allowed folder, else Forbidden (or MedSynthError)."""
        if "\x00" in str(path):
            raise MedSynthError(f"The {what} path contains a NUL character.")
        given = Path(os.path.expanduser(str(path)))
        if not given.is_absolute():
            raise MedSynthError(f"The {what} path '{path}' must be absolute (the engine's working folder is not yours).")
        resolved = given.resolve()
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.allowed):
            roots = ", ".join(str(r) for r in self.allowed)
            raise Forbidden(f"The {what} path {resolved} is outside the folders this engine may use ({roots}).")
        return resolved


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative`` for an existing file that stays inside ``root`` after resolving links, else MedSynthError."""
    root = Path(root).resolve()
    if "\x00" in relative or relative.startswith(("/", "\\")) or Path(relative).is_absolute():
        raise MedSynthError("The file path must be relative to the job's output folder.")
    try:
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or target == root:
            raise MedSynthError("The file path leaves the job's output folder; only the job's own files can be fetched.")
        if not target.is_file():
            raise FileNotFoundError(relative)
    except OSError:  # a name too long for the file system, a loop of links: no such file either
        raise FileNotFoundError(relative) from None
    return target
