"""Run real MedSynth commands in child processes that SIGKILL themselves at a named kill point, and check what they left.

Each child runs the command's own ``main`` (``medsynth`` or ``medsynth-engine``) with ``MEDSYNTH_KILL_AT`` set, so
the kill happens where the code calls ``killpoint(...)``, with no cleanup of any kind. The children are forked from
a forkserver that has imported torch and the engine once (``preload``), so a kill costs the command's work, not
20 s of imports on a loaded machine. ``published_files_intact`` is the check after each kill: every file a user can
see (no component starting with a dot) is whole.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

from medsynth_engine.killpoint import ENV

__all__ = ["KILLED", "Commands", "published_files_intact", "visible_files"]

#: The exit code multiprocessing reports for a child ended by SIGKILL.
KILLED = -9


def _preload() -> list[str]:
    """What every child needs, imported once in the forkserver: torch, both commands, each family's trainer and loader."""
    from medsynth_engine.registry import default_registry

    modules = ["torch", "medsynth_engine.cli", "medsynth_engine.engine_cli", "medsynth_engine.training.finetune", "medsynth_engine.server"]
    for family in default_registry().families():
        for ref in (family.trainer.train if family.trainer else None, family.load):
            if isinstance(ref, str) and ":" in ref:
                modules.append(ref.partition(":")[0])
    return modules


def _child(program: str, argv: list[str], point: str | None, log: str) -> None:
    import torch

    torch.set_num_threads(1)
    if point:
        os.environ[ENV] = point
    else:
        os.environ.pop(ENV, None)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    if program == "medsynth":
        from medsynth_engine.cli import main
    else:
        from medsynth_engine.engine_cli import main
    sys.exit(main(argv))


class Commands:
    """Starts ``medsynth`` / ``medsynth-engine`` children (one forkserver for all of them); their output goes to ``logs``."""

    def __init__(self, logs: Path) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(_preload())
        self.logs = Path(logs)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def start(self, argv: list[str], point: str | None = None, program: str = "medsynth") -> tuple[multiprocessing.Process, Path]:
        self.count += 1
        log = self.logs / f"{self.count:03d}-{(point or 'whole').replace(':', '-')}.log"
        process = self.context.Process(target=_child, args=(program, argv, point, str(log)), daemon=False)
        process.start()
        return process, log

    def run(self, argv: list[str], point: str | None = None, timeout: float = 240) -> tuple[int, str]:
        """Run ``medsynth ARGV`` to its end (or its kill); returns the exit code (``KILLED``) and its output."""
        return self.run_together([(argv, point)], timeout)[0]

    def run_together(self, runs: list[tuple[list[str], str | None]], timeout: float = 240) -> list[tuple[int, str]]:
        """Run independent ``medsynth`` commands side by side (one per core); returns each one's code and output."""
        started = [(argv, point, *self.start(argv, point)) for argv, point in runs]
        deadline = time.monotonic() + timeout
        results = []
        for argv, point, process, log in started:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                for _, _, other, _ in started:
                    other.kill()
                raise AssertionError(f"medsynth {' '.join(argv)} ({point}) did not end within {timeout} s; see {log}")
            results.append((process.exitcode, log.read_text()))
        return results

    def engine(self, state: Path, allow: Path, point: str | None = None, timeout: float = 60) -> tuple[multiprocessing.Process, str]:
        """A ``medsynth-engine serve`` child on loopback; returns it with its URL once it listens."""
        process, log = self.start(["serve", "--state-dir", str(state), "--allow-dir", str(allow), "--device", "cpu"], point, "medsynth-engine")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in log.read_text().splitlines() if log.exists() else []:
                if line.startswith("{") and '"url"' in line:
                    return process, json.loads(line)["url"]
            if process.exitcode is not None:
                raise AssertionError(f"the engine ended ({process.exitcode}) before listening: {log.read_text()}")
            time.sleep(0.05)
        process.kill()
        raise AssertionError(f"the engine did not listen within {timeout} s; see {log}")


def visible_files(folder: Path) -> list[Path]:
    """The files under ``folder`` a user sees: none of their path components (below ``folder``) starts with a dot."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def published_files_intact(folder: Path) -> list[Path]:
    """Check that every visible file under ``folder`` is whole (NIfTI, JSON, JSON lines, safetensors, PNG, model
    folders); returns them. A half-written file, a temporary under a visible name or a model whose card does not
    match its weights fails."""
    from medsynth_engine.modelfile import CARD_FILE, load_model_folder
    from medsynth_engine.nifti_io import read_nifti
    from safetensors.torch import load_file

    files = visible_files(folder)
    for path in files:
        name = path.name
        assert not any(mark in name for mark in (".partial", ".tmp", ".next")), f"{path} is a temporary under a visible name"
        if name.endswith((".nii.gz", ".nii")):
            read_nifti(path)
        elif name.endswith(".jsonl"):
            for line in path.read_text().splitlines():
                json.loads(line)
        elif name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".safetensors"):
            load_file(str(path))
        elif name.endswith(".png"):
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG") and data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82"), f"{path} is not a whole PNG"
        if name == CARD_FILE:
            load_model_folder(path.parent)
    return files
