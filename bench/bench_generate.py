"""Benchmark: how fast synthetic cases come out, each ratio measured against its reference in the same run.

Sections (``--sections``, default all, in this order):
  renderer: the phantom renderer of this checkout against the one it replaced (b56a298's ``phantom`` package,
            extracted from git into a temporary folder and imported from there), on the same full-size
            176 x 208 x 176 case with t1, t1ce, t2, flair, seg and ct; renders interleaved, after one warm-up each;
            also how far the two cases differ voxel by voxel.
  engine:   cold ``medsynth generate -n 1`` (a fresh process: interpreter, imports, atlas, render, write) against
            the same request as a ``generate`` job on a real engine process that has run one job already
            (timed from POST /jobs until the job reads succeeded), interleaved.
  processes: cases per hour of ``medsynth generate -n N --nproc K`` for K = 1 and 2 (full-size cases, the
            default channels), interleaved, each a fresh command as a user runs it.
More sections add a function to ``SECTIONS``: it gets the parsed arguments and a scratch folder and returns the
Markdown lines for bench/results/generate.md.

Usage: nice -n 15 python bench/bench_generate.py [--sections renderer,engine,processes] [--repeats 3] [--device cpu]
       [--cases 6]
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "generate.md"
REFERENCE_COMMIT = "b56a298"
CHANNELS = ("t1", "t1ce", "t2", "flair", "seg", "ct")
SEED = 11
_REFERENCE_FILES = ("errors.py", "phantom/__init__.py", "phantom/atlas.py", "phantom/fields.py", "phantom/params.py",
                    "phantom/render.py", "phantom/tissues.py")


def _reference_phantom(folder: Path):
    """b56a298's phantom package, as the importable package ``medsynth_reference.phantom``."""
    package = folder / "medsynth_reference"
    (package / "phantom").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in _REFERENCE_FILES:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{REFERENCE_COMMIT}:engine/medsynth_engine/{name}"],
                                capture_output=True, text=True)
        if source.returncode != 0:
            raise SystemExit(f"Cannot read {name} at {REFERENCE_COMMIT} from git in {REPO}: {source.stderr.strip()}")
        (package / name).write_text(source.stdout)
    sys.path.insert(0, str(folder))
    return importlib.import_module("medsynth_reference.phantom")


def _timed(call: Callable[[], object]) -> tuple[float, float, object]:
    start, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - start, time.process_time() - cpu, result


def renderer_section(args: argparse.Namespace, scratch: Path) -> list[str]:
    import torch
    from medsynth_engine import phantom as new
    from medsynth_engine.device import select_device

    old = _reference_phantom(scratch / "reference")
    device = select_device(args.device)
    atlases = {"old": old.AtlasLoader().get(), "new": new.AtlasLoader().get()}

    def case(version: str):
        module, atlas = (old, atlases["old"]) if version == "old" else (new, atlases["new"])
        params = module.draw_subject(SEED, atlas, tumour=True)
        grid = module.Grid.centred((176, 208, 176), (1.0, 1.0, 1.0), atlas.brain_centre_mm + np.asarray(params.translation_mm))
        kwargs = {"device": device} if version == "new" else {}
        return lambda: module.render(params, atlas, grid, CHANNELS, **kwargs)

    calls = {version: case(version) for version in ("old", "new")}
    times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    outputs = {version: calls[version]() for version in calls}  # warm-up, kept for the comparison
    for _ in range(args.repeats):
        for version in ("old", "new"):
            wall, cpu, _ = _timed(calls[version])
            times[version].append((wall, cpu))
    wall = {v: statistics.median(t[0] for t in times[v]) for v in times}
    best = {v: min(t[0] for t in times[v]) for v in times}
    cpu = {v: statistics.median(t[1] for t in times[v]) for v in times}
    lines = [
        f"Full-size case (176 x 208 x 176 at 1 mm, seed {SEED}, tumour, channels {','.join(CHANNELS)}), device {device}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; {args.repeats} interleaved renders each after one warm-up:",
        "",
        "| renderer | wall, median (s) | wall, best (s) | CPU, median (s, all threads) | renders (s) |",
        "|---|---|---|---|---|",
        f"| b56a298 (numpy-era) | {wall['old']:.2f} | {best['old']:.2f} | {cpu['old']:.2f} | {[round(t[0], 2) for t in times['old']]} |",
        f"| this checkout | {wall['new']:.2f} | {best['new']:.2f} | {cpu['new']:.2f} | {[round(t[0], 2) for t in times['new']]} |",
        "",
        f"**Renderer speed-up: {wall['old'] / wall['new']:.1f}x wall (medians), {best['old'] / best['new']:.1f}x wall (best runs), "
        f"{cpu['old'] / cpu['new']:.1f}x CPU.**",
        "",
        "Voxel-by-voxel difference between the two cases (same seed):",
        "",
        f"| channel | max abs difference | voxels off by 1 (of {np.prod(outputs['new']['t1'].shape):,}) | voxels off by more |",
        "|---|---|---|---|",
    ]
    for name in CHANNELS:
        diff = np.abs(outputs["old"][name].astype(np.int32) - outputs["new"][name].astype(np.int32))
        lines.append(f"| {name} | {int(diff.max())} | {int((diff == 1).sum())} | {int((diff > 1).sum())} |")
    flips = int(np.sum((outputs["old"]["t1"] > 0) != (outputs["new"]["t1"] > 0)))
    lines += ["", f"Differences over 1 in MR channels are skull-stripping decisions that flipped (brain fraction within "
              f"float rounding of 0.5): {flips} voxel(s) of the T1 mask here."]
    return lines


def _cli_case(out: Path, device: str) -> list[str]:
    command = [sys.executable, "-m", "medsynth_engine.cli", "generate", "--quiet", "--device", device, "--out", str(out)]
    return command + ["--model", "phantom", "-n", "1", "--seed", str(SEED), "--channels", ",".join(CHANNELS)]


def engine_section(args: argparse.Namespace, scratch: Path) -> list[str]:
    from MedSynthLib.launcher import EngineProcess

    request = {"model": "phantom", "n": 1, "seed": SEED, "channels": list(CHANNELS), "device": args.device}
    # The launcher drops PYTHONPATH (for Slicer); keep it, so the engine runs this checkout's code.
    engine = EngineProcess.start(sys.executable, state_dir=scratch / "state", device=args.device,
                                 extra_args=["--allow-dir", str(scratch)], timeout=300, env=dict(os.environ))
    client = engine.client(timeout=120)

    def warm(out: Path) -> float:
        start = time.perf_counter()
        job = client.wait(client.submit("generate", {**request, "out": str(out)})["id"], poll=0.05, timeout=1800)
        if job["state"] != "succeeded":
            raise SystemExit(f"The engine's generate job failed: {job.get('error')}")
        return time.perf_counter() - start

    def cold(out: Path) -> float:
        start = time.perf_counter()
        subprocess.run(_cli_case(out, args.device), check=True, capture_output=True)
        return time.perf_counter() - start

    try:
        first = warm(scratch / "warm-up")
        cold_s, warm_s = [], []
        for i in range(args.repeats):  # interleaved, so both see the same background load
            cold_s.append(cold(scratch / f"cold-{i}"))
            warm_s.append(warm(scratch / f"warm-{i}"))
    finally:
        engine.stop()
    ratio = statistics.median(cold_s) / statistics.median(warm_s)
    return [
        f"The same request (phantom, n 1, seed {SEED}, full size, channels {','.join(CHANNELS)}, device {args.device}); "
        f"medians of {args.repeats} interleaved runs; the engine's first job (atlas load, first render) took {first:.2f} s:",
        "",
        "| path | seconds | runs |",
        "|---|---|---|",
        f"| cold `medsynth generate -n 1` | {statistics.median(cold_s):.2f} | {[round(s, 2) for s in cold_s]} |",
        f"| warm engine `generate` job | {statistics.median(warm_s):.2f} | {[round(s, 2) for s in warm_s]} |",
        "",
        f"**Warm engine vs cold CLI: {ratio:.2f}x.**",
    ]


def processes_section(args: argparse.Namespace, scratch: Path) -> list[str]:
    def run(nproc: int, out: Path) -> float:
        command = [sys.executable, "-m", "medsynth_engine.cli", "generate", "--quiet", "--device", args.device,
                   "--out", str(out), "--model", "phantom", "-n", str(args.cases), "--seed", str(SEED), "--nproc", str(nproc)]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start

    seconds: dict[int, list[float]] = {1: [], 2: []}
    for i in range(args.repeats):  # interleaved, so both see the same background load
        for nproc in seconds:
            seconds[nproc].append(run(nproc, scratch / f"nproc{nproc}-{i}"))
    rate = {k: args.cases * 3600 / statistics.median(v) for k, v in seconds.items()}
    return [
        f"`medsynth generate --model phantom -n {args.cases} --seed {SEED} --nproc K` (full-size cases, default channels, "
        f"device {args.device}), whole commands as a user runs them (imports and atlas included), medians of "
        f"{args.repeats} interleaved runs on {os.cpu_count()} cores:",
        "",
        "| processes | seconds | cases per hour | runs (s) |",
        "|---|---|---|---|",
        *(f"| {k} | {statistics.median(v):.1f} | {rate[k]:.0f} | {[round(s, 1) for s in v]} |" for k, v in seconds.items()),
        "",
        f"**2 processes vs 1: {rate[2] / rate[1]:.2f}x the cases per hour.**",
    ]


#: Section name -> function(args, scratch folder) -> Markdown lines; run in this order.
SECTIONS: dict[str, Callable[[argparse.Namespace, Path], list[str]]] = {
    "renderer": renderer_section,
    "engine": engine_section,
    "processes": processes_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    parser.add_argument("--cases", type=int, default=6, help="cases per run of the processes section")
    args = parser.parse_args()
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"Unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}.")
    sections = _read_sections()
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        for name in names:
            print(f"== {name}", flush=True)
            folder = Path(tmp) / name
            folder.mkdir()
            load = os.getloadavg()
            run = (
                f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `{' '.join(['python', 'bench/bench_generate.py', *sys.argv[1:]])}` "
                f"on {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; load average at the start "
                f"{load[0]:.1f} (other work shares this machine)."
            )
            lines = SECTIONS[name](args, folder)
            print("\n".join(lines), flush=True)
            sections[name] = [run, "", *lines]
    text = [_TITLE, "", _INTRO]
    for name in [*SECTIONS, *(n for n in sections if n not in SECTIONS)]:
        if name in sections:
            text += ["", f"## {name}", "", *sections[name]]
    partial = RESULTS.with_name(f".{RESULTS.name}.partial")
    partial.write_text("\n".join(text) + "\n")
    partial.replace(RESULTS)
    print(f"wrote {RESULTS}")


_TITLE = "# Generation speed (`bench/bench_generate.py`)"
_INTRO = ("Each section is one run of its own (it keeps the other sections of this file), its ratio measured against its "
          "reference in that same run.")


def _read_sections() -> dict[str, list[str]]:
    """The sections already in the results file, by name, so a run of some sections keeps the others."""
    sections: dict[str, list[str]] = {}
    if not RESULTS.is_file():
        return sections
    current = None
    for line in RESULTS.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {name: _strip_blank(lines) for name, lines in sections.items()}


def _strip_blank(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


if __name__ == "__main__":
    main()
