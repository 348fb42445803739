"""2D validity benchmark: is each shipped 2D generator's set of slices useful and faithful, against phantom slices?

The 3D benchmark (``bench_validity.py``) on slices, with the same code wherever it can be the same:
1. a real pool of fresh 3D phantom subjects (generate seed 7100) on the shipped 2D models' training grid
   (128^3 at 1.5 mm), each cut into its ``slices_per_case`` axial slices with the most head and tumour, as the 2D
   training and ``medsynth evaluate`` cut them (``evaluate.sliced``);
2. per generator a synthetic set of 2D slices (seed 7200): a 2D model (a shipped id or a model folder), or the
   ``phantom-slices`` reference, slices of fresh phantom subjects cut the same way: the very same distribution,
   so its row is the ceiling a generator can reach;
3. per generator ``medsynth evaluate`` without TSTR (MS-SSIM, PRDC with its real-vs-real control, per-class
   tumour statistics with each class's presence, the 2D memorisation audit against every head slice of the real
   pool) and, in the full protocol, the 2D audit of each learned generator against its own training subjects (the
   phantom subjects its card's recipe names; 16 subjects of seed 2026 when it names none);
4. TSTR for all generators at once (``run_tstr_sets`` with a 2D U-Net): per seed the real pool's subjects split
   into held-out test subjects and two disjoint training sets (real A and the control B, whole subjects on each
   side), synthetic slices as many as A; two-level bootstrap intervals as in 3D.
Prints one markdown table and writes the full numbers as JSON; ``--write-cards`` records each shipped model's row
in its card (``metrics.validity``, with ``"spatial_dims": 2``). Sets, reports and TSTR scores are kept in ``--work``.

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_validity2d.py --work W --json v2d.json      # the recorded protocol
    nice -n 10 python bench/bench_validity2d.py --quick --json /tmp/v2d-quick.json              # a smoke run, minutes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_validity import CHANNELS, REAL_SEED, SYNTHETIC_SEED, _evaluate, _generate, _row, _write_card
from medsynth_engine.audit2d import audit_set
from medsynth_engine.data.preprocess import PreprocessSpec
from medsynth_engine.errors import MedSynthError
from medsynth_engine.evaluate.planar import plane, preprocess_plane
from medsynth_engine.evaluate.run import EvaluateRequest
from medsynth_engine.evaluate.sets import iter_cases, open_set
from medsynth_engine.evaluate.sliced import Slicing, slice_planes
from medsynth_engine.evaluate.tstr import TstrSettings, run_tstr_sets
from medsynth_engine.modelfile import CARD_FILE
from medsynth_engine.models.slices2d.output import slice_affine
from medsynth_engine.nifti_io import write_nifti
from medsynth_engine.registry import default_registry
from medsynth_engine.weights import WEIGHTS_DIR, model_folder

REFERENCE = "phantom-slices"
GENERATORS = (REFERENCE, "dcgan2d-phantom", "stylegan2d-phantom")
TRAINING_SEED = 2026  # the shipped 2D models' training subjects: medsynth generate --model phantom -n 16 --seed 2026
SCRIPT = "bench/bench_validity2d.py"
LABELLED = (*CHANNELS, "seg")
PROTOCOLS = {
    "full": {"subjects": 24, "slices_per_case": 48, "synthetic": 432, "pool_grid": 128, "pool_spacing": 1.5, "grid": 64,
             "tstr_grid": 64, "tstr_spacing": 3.0, "patch": 64, "steps": 500, "seeds": 3, "learning_rate": 1e-2,
             "training_subjects": 16},
    "quick": {"subjects": 8, "slices_per_case": 8, "synthetic": 32, "pool_grid": 128, "pool_spacing": 1.5, "grid": 64,
              "tstr_grid": 64, "tstr_spacing": 3.0, "patch": 64, "steps": 40, "seeds": 1, "learning_rate": 1e-2,
              "training_subjects": 0},
}


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (generation workers): the cost on an unloaded core."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _slicing(protocol: dict) -> Slicing:
    """How every 3D phantom set of the run is cut: the pool's cube, the protocol's slices per subject."""
    grid, spacing = protocol["pool_grid"], protocol["pool_spacing"]
    return Slicing(PreprocessSpec(shape=(grid,) * 3, spacing=(spacing,) * 3), protocol["slices_per_case"])


def _phantom_slices(protocol: dict, out: Path) -> float:
    """The reference set: fresh phantom subjects (seed 7200) cut into slices as the real pool is, written as single-slice
    NIfTI cases on each subject's intensity scale (as a 2D model writes them), under a temporary name, then renamed."""
    started = time.perf_counter()
    slicing = _slicing(protocol)
    subjects = math.ceil(protocol["synthetic"] / slicing.per_volume)
    volumes = out.parent / f"{out.name}-volumes"
    made = _generate("phantom", subjects, SYNTHETIC_SEED, volumes, protocol["pool_grid"], protocol["pool_spacing"])
    recipe = {"volumes": json.loads((volumes / "manifest.json").read_text())["parameters"], "slices_per_case": slicing.per_case,
              "n": protocol["synthetic"]}
    if made == 0.0 and (out / "manifest.json").is_file() and json.loads((out / "manifest.json").read_text()).get("recipe") == recipe:
        return 0.0
    tmp = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    cases = []
    case_set = open_set(volumes, "reference")
    for _, case in iter_cases(case_set, LABELLED):
        for k, (arrays, spacing) in enumerate(slice_planes(case, slicing)):
            if len(cases) == protocol["synthetic"]:
                break
            name = f"{case.id}-s{k:02d}"
            affine = slice_affine(arrays["t1"].shape, spacing, slicing.spec.spacing[2])
            (tmp / name).mkdir(parents=True)
            for channel, array in arrays.items():
                write_nifti(tmp / name / f"{name}_{channel}.nii.gz", array[..., None].astype(np.uint8 if channel == "seg" else np.float32), affine)
            cases.append({"id": name, "subject": case.id})
    (tmp / "manifest.json").write_text(json.dumps({"format": "medsynth-phantom-slices", "recipe": recipe, "cases": cases}, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return time.perf_counter() - started


def _training_subjects(name: str, protocol: dict) -> tuple[int, int]:
    """(subjects, seed) of the phantom set a 2D generator was trained on, from its card's recipe; the shipped models'
    16 subjects of seed 2026 when the card records no phantom recipe."""
    card = json.loads((model_folder(name) / CARD_FILE).read_text())  # checked to exist before: main's check_request
    data = (card.get("recipe") or {}).get("data") or {}
    if data.get("model") == "phantom" and isinstance(data.get("n"), int) and isinstance(data.get("seed"), int):
        return data["n"], data["seed"]
    return protocol["training_subjects"], TRAINING_SEED


def _tstr_real(folder: Path, slicing: Slicing, spec: PreprocessSpec) -> tuple[tuple[np.ndarray, np.ndarray], list[str]]:
    """The real pool's slices on the TSTR grid and each slice's subject (the 3D case it was cut from)."""
    images, labels, subjects = [], [], []
    for _, case in iter_cases(open_set(folder, "real"), LABELLED):
        for arrays, spacing in slice_planes(case, slicing):
            out = preprocess_plane(arrays, spacing, spec)
            images.append(np.stack([out[c] for c in CHANNELS]).astype(np.float32))
            labels.append(out["seg"].astype(np.uint8))
            subjects.append(case.id)
    return (np.stack(images), np.stack(labels)), subjects


def _tstr_synthetic(folder: Path, spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """A 2D set's slices on the TSTR grid."""
    case_set = open_set(folder, "synthetic")
    images, labels = [], []
    for index, case in iter_cases(case_set, LABELLED):
        out = preprocess_plane(*plane(case, case_set, index), spec)
        images.append(np.stack([out[c] for c in CHANNELS]).astype(np.float32))
        labels.append(out["seg"].astype(np.uint8))
    return np.stack(images), np.stack(labels)


def _training_audit(folder: Path, training: Path | None, report: Path) -> float | None:
    """Fraction of a learned generator's slices the 2D audit flags against the shipped models' training subjects
    (kept in ``report`` for a rerun with ``--work``); None when not run."""
    if training is None:
        return None
    kept = report / "audit-training.json"
    if kept.is_file() and kept.stat().st_mtime > max((folder / "manifest.json").stat().st_mtime, (training / "manifest.json").stat().st_mtime):
        return json.loads(kept.read_text())["memorised_fraction"]
    fraction = audit_set(folder, training, channels=CHANNELS).memorised_fraction
    report.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps({"memorised_fraction": fraction}))
    return fraction


def _cell(values: list, digits: int = 2) -> str:
    return "/".join(f"{v:.{digits}f}" for v in values)


def _table(rows: list[dict]) -> str:
    """The markdown table of bench/results/validity.md's 2D section."""
    columns = ("synthetic slices", "MS-SSIM syn vs real", "presence NCR/ED/ET syn vs real", "P / R / D / C (control)",
               "memorised (pool; training)", "WT Dice syn vs real", "dice_ratio [95 %]", "control ratio [95 %]")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        prdc = _cell([r[k] for k in ("precision", "recall", "density", "coverage")], 3).replace("/", " / ")
        control = _cell(list(r["prdc_control"].values()), 3).replace("/", " / ") if r["prdc_control"] else "none"
        training = "not run" if r["memorised_fraction_training"] is None else f"{r['memorised_fraction_training']:.3f}"
        cells = (r["generator"], f"{r['ms_ssim_synthetic']} vs {r['ms_ssim_real']}",
                 f"{_cell(r['presence_rate_synthetic'])} vs {_cell(r['presence_rate_real'])}", f"{prdc} ({control})",
                 f"{r['memorised_fraction']:.3f}; {training}", f"{r['dice_synthetic']['WT']:.3f} vs {r['dice_real']['WT']:.3f}",
                 f"{r['dice_ratio']} {r['dice_ratio_ci']}", f"{r['control_ratio']} {r['control_ratio_ci']}")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke protocol (8 subjects x 8 slices, 32 synthetic slices, 40 steps, 1 seed)")
    parser.add_argument("--generators", default=",".join(GENERATORS),
                        help=f"comma-separated 2D model ids or model folders, and {REFERENCE} (default: {','.join(GENERATORS)})")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--work", type=Path, help="folder for the sets, reports and the TSTR score cache; a rerun with the same folder redoes only what changed")
    parser.add_argument("--write-cards", action="store_true", help="record each shipped model's row in its card (metrics.validity)")
    parser.add_argument("--seed-base", type=int, default=0, help="first TSTR seed")
    parser.add_argument("--real-plus-synthetic", default="", help="comma-separated generators whose real + synthetic model is also trained (default: none)")
    parser.add_argument("--device", default="cpu", help="where the TSTR segmenters train: cpu (default) or cuda")
    for key, value in PROTOCOLS["full"].items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), help=f"override the protocol's {key} (full: {value})")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    protocol_name = "quick" if args.quick else "full"
    protocol = PROTOCOLS[protocol_name] | {k: getattr(args, k) for k in PROTOCOLS["full"] if getattr(args, k) is not None}
    generators = [g for g in args.generators.split(",") if g]
    for name in generators:  # before anything is generated: an unknown model or one short of the protocol's channels
        if name != REFERENCE:
            plugin = default_registry().generator(name)
            plugin.check_request(channels=LABELLED, shape=plugin.card.shape, spacing=plugin.card.spacing)
    work = args.work or Path(tempfile.mkdtemp(prefix="medsynth-validity2d-"))
    work.mkdir(parents=True, exist_ok=True)
    grid, spacing = protocol["pool_grid"], protocol["pool_spacing"]
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(what: str, started: float, cpu_started: float) -> None:
        timings[what], cpu[what] = time.perf_counter() - started, _cpu_seconds() - cpu_started

    started, cpu_started = time.perf_counter(), _cpu_seconds()
    real_dir = work / "real"
    _generate("phantom", protocol["subjects"], REAL_SEED, real_dir, grid, spacing)
    subjects_of = {name: _training_subjects(name, protocol) for name in generators if name != REFERENCE}
    trainings: dict[tuple[int, int], Path] = {}
    if protocol["training_subjects"]:
        for subjects in set(subjects_of.values()):
            default = subjects == (protocol["training_subjects"], TRAINING_SEED)
            trainings[subjects] = work / ("training" if default else f"training-n{subjects[0]}-seed{subjects[1]}")
            _generate("phantom", subjects[0], subjects[1], trainings[subjects], grid, spacing)
    timed("generate real pool and training subjects", started, cpu_started)
    sets, metrics, audits = {}, {}, {}
    for name in generators:
        t0, c0 = time.perf_counter(), _cpu_seconds()
        sets[name] = work / Path(name).name
        if name == REFERENCE:
            _phantom_slices(protocol, sets[name])
        else:
            _generate(name, protocol["synthetic"], SYNTHETIC_SEED, sets[name])
        report = work / f"report-{Path(name).name}"
        request = EvaluateRequest(synthetic=sets[name], real=real_dir, out=report, channels=CHANNELS, grid=protocol["grid"],
                                  slices_per_case=protocol["slices_per_case"])
        metrics[name] = _evaluate(sets[name], real_dir, report, request)
        audits[name] = None if name == REFERENCE else _training_audit(sets[name], trainings.get(subjects_of[name]), work / f"audit-{Path(name).name}")
        timed(f"generate and evaluate {name}", t0, c0)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    tstr_spec = PreprocessSpec(shape=(protocol["tstr_grid"],) * 2, spacing=(protocol["tstr_spacing"],) * 2)
    real, subjects = _tstr_real(real_dir, _slicing(protocol), tstr_spec)
    settings = TstrSettings(steps=protocol["steps"], seeds=protocol["seeds"], seed=args.seed_base, learning_rate=protocol["learning_rate"],
                            patch=protocol["patch"], device=args.device)
    tstr = run_tstr_sets(real, {name: _tstr_synthetic(folder, tstr_spec) for name, folder in sets.items()}, settings,
                         cache=work / "tstr-cache", real_plus_synthetic=[g for g in args.real_plus_synthetic.split(",") if g], subjects=subjects)
    timed(f"tstr ({len(generators)} generators, {protocol['seeds']} seeds)", t0, c0)
    timed("total", started, cpu_started)
    rows = [_row(name, metrics[name] | tstr[name]) | {"spatial_dims": 2, "memorised_fraction_training": audits[name]} for name in generators]
    print(f"protocol {protocol_name}: {protocol}; TSTR {tstr[generators[0]]['tstr']['network']}")
    print(_table(rows))
    print("wall seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print("CPU seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()))
    if args.json:
        args.json.write_text(json.dumps({"protocol": protocol_name, "settings": protocol, "rows": rows, "tstr": tstr,
                                         "timings_s": timings, "cpu_s": cpu}, indent=2))
    if args.write_cards:
        for row in rows:
            if (WEIGHTS_DIR / row["generator"] / CARD_FILE).is_file():
                _write_card(row, protocol_name, protocol, script=SCRIPT)


if __name__ == "__main__":
    try:
        main()
    except MedSynthError as exc:  # a generator that cannot make the protocol's channels, an unknown id: one sentence
        print(f"bench_validity2d: {exc}", file=sys.stderr)
        sys.exit(2)
