"""What finished jobs made, read from the files the engine wrote: the case to show, the loss log, the mosaic."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .requests import InputError, case_folders

__all__ = [
    "result_to_load", "first_case_dir", "read_loss_log", "LossLog", "latest_mosaic", "loss_series", "download_result",
    "default_cache_dir",
]

_MOSAIC = re.compile(r"mosaic_step(\d+)\.png$")


def result_to_load(job: dict[str, Any]) -> tuple[str, Any] | None:
    """What a succeeded job made that the panel shows: ("case", folder) or ("files", [channel files]); else None."""
    if not job or job.get("state") != "succeeded":
        return None
    result = job.get("result") or {}
    if job.get("kind") == "generate":
        return "case", first_case_dir(job["output_dir"])
    if job.get("kind") == "add-tumour" and result.get("case"):
        return "case", Path(result["case"])
    if job.get("kind") == "add-channel":
        files = [Path(p) for p in result.get("written", []) if str(p).endswith((".nii.gz", ".nii"))]
        return ("files", files) if files else None
    return None


def default_cache_dir() -> Path:
    """Where results of an engine connected by URL are downloaded (``$MEDSYNTH_CACHE_DIR``, else ~/.medsynth/cache)."""
    return Path(os.environ.get("MEDSYNTH_CACHE_DIR") or Path.home() / ".medsynth" / "cache").expanduser()


def _remote_relative(path: str, output_dir: str) -> str | None:
    """``path`` (the engine's absolute path) relative to the job's output folder on the engine's machine."""
    root, target = output_dir.rstrip("/\\").replace("\\", "/"), str(path).replace("\\", "/")
    return target[len(root) + 1:] if target.startswith(root + "/") else None


def download_result(client: Any, job: dict[str, Any], cache_dir: str | os.PathLike) -> dict[str, Any]:
    """The job with what the panel shows downloaded through ``client`` into ``cache_dir/<job id>`` (an engine on
    another machine: its paths mean nothing here), paths rewritten to the local copies.

    Only what is shown is fetched: the manifest and the first case of a generated set, the new case of add-tumour,
    the written files of add-channel that lie in the job's folder, every case of a prepare job. Each file lands through a temporary name.
    """
    remote_root = str(job.get("output_dir") or "")
    local_root = Path(cache_dir) / str(job["id"])
    files = client.files(job["id"])
    wanted: list[str] = []
    result = dict(job.get("result") or {})
    if job.get("kind") == "generate":
        if "manifest.json" in files:
            client.download(job["id"], "manifest.json", local_root / "manifest.json")
        first = first_case_dir(local_root).name if (local_root / "manifest.json").is_file() else None
        first = first or next((f.split("/")[0] for f in files if "/" in f), None)
        wanted = [f for f in files if first and f.startswith(first + "/")]
    elif job.get("kind") == "add-tumour" and result.get("case"):
        folder = _remote_relative(result["case"], remote_root)
        wanted = [f for f in files if folder and f.startswith(folder + "/")]
        result["case"] = str(local_root / folder) if folder else result["case"]
    elif job.get("kind") == "prepare":  # every prepared case is shown, with its mask and QC
        cases = set(result.get("cases") or [])
        wanted = [f for f in files if f.split("/")[0] in cases or f in ("prepare.html", "prepare.json")]
    elif job.get("kind") == "add-channel":
        relative = [_remote_relative(p, remote_root) for p in result.get("written", [])]
        wanted = [r for r in relative if r in files]
        result["written"] = [str(local_root / r) for r in wanted]
    for name in wanted:
        client.download(job["id"], name, local_root / name)
    return {**job, "output_dir": str(local_root), "result": result}


def first_case_dir(set_dir: str | os.PathLike) -> Path:
    """The folder of the first case of a BraTS-style set (from its manifest, else the first case sub-folder)."""
    set_dir = Path(set_dir)
    manifest = set_dir / "manifest.json"
    if manifest.is_file():
        try:
            cases = json.loads(manifest.read_text())["cases"]
            files = cases[0]["files"]
            return set_dir / Path(next(iter(files.values()))).parent
        except (OSError, ValueError, KeyError, IndexError, TypeError, StopIteration):
            pass
    cases = case_folders(set_dir) if set_dir.is_dir() else []
    if not cases:
        raise InputError(f"{set_dir} holds no case folder to show.")
    return cases[0]


_LOG_FIELDS = ("step", "stage", "alpha", "time")


def _loss_row(line: str | bytes) -> tuple[int, dict[str, float]] | None:
    try:
        row = json.loads(line)
        step = int(row["step"])
    except (ValueError, KeyError, TypeError):
        return None  # a line being written right now, or not a loss row
    return step, {k: float(v) for k, v in row.items() if k not in _LOG_FIELDS and isinstance(v, (int, float))}


def read_loss_log(path: str | os.PathLike) -> list[tuple[int, dict[str, float]]]:
    """Every logged step of a fine-tune's ``loss.jsonl`` as (step, {loss name: value}); unreadable lines are skipped."""
    rows: dict[int, dict[str, float]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    for row in filter(None, map(_loss_row, lines)):
        rows[row[0]] = row[1]
    return sorted(rows.items())


class LossLog:
    """A fine-tune's ``loss.jsonl`` followed as it grows: each :meth:`read_new` reads only the bytes appended since
    the previous call, so following a long run costs O(new rows) per poll instead of re-reading the whole log."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._offset = 0
        self._last_step: int | None = None

    def read_new(self) -> list[tuple[int, dict[str, float]]]:
        """Complete rows appended since the last call, in order; steps at or below one already returned are
        skipped (a resumed run logs again from its checkpoint)."""
        try:
            with open(self.path, "rb") as log:
                if log.seek(0, os.SEEK_END) < self._offset:
                    self._offset = 0  # the log was replaced
                log.seek(self._offset)
                data = log.read()
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        rows = []
        for row in filter(None, map(_loss_row, data[: end + 1].splitlines())):
            if self._last_step is None or row[0] > self._last_step:
                rows.append(row)
                self._last_step = row[0]
        return rows


def latest_mosaic(files: list[str]) -> str | None:
    """The sample mosaic with the highest step among a job's files (``samples/mosaic_step<N>.png``)."""
    best: tuple[int, str] | None = None
    for name in files:
        match = _MOSAIC.search(name)
        if match and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), name)
    return best[1] if best else None


def loss_series(losses: list[tuple[int, dict[str, float]]]) -> dict[str, tuple[list[int], list[float]]]:
    """Per loss name, (steps, values): what the loss chart plots."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for step, values in losses:
        for name, value in values.items():
            steps, ys = series.setdefault(name, ([], []))
            steps.append(step)
            ys.append(value)
    return series
