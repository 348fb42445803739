"""Validity benchmark: is each shipped 3D generator's synthetic set useful and faithful, against the phantom?

One command, a fixed protocol and fixed seeds:
1. a real pool of fresh phantom cases (64^3 at 3 mm; generate seed 7100) and, per generator, a synthetic set
   (the phantom itself with another seed as the reference: more cases of the very same distribution);
2. per generator, ``medsynth evaluate`` without TSTR (MS-SSIM, PRDC with its real-vs-real control, per-class
   tumour statistics, memorisation audit against the real pool);
3. TSTR for all generators at once (``run_tstr_sets``): per seed, the real (A) and control (B) segmenters are
   trained once and shared, then synthetic and real + synthetic per generator; two-level bootstrap intervals.
Prints one markdown table (paste it into bench/results/validity.md with the machine and its load) and writes
the full numbers as JSON; ``--write-cards`` records each shipped model's row in its card (``metrics.validity``).

    nice -n 10 python bench/bench_validity.py --json /tmp/validity.json            # the recorded protocol
    nice -n 10 python bench/bench_validity.py --quick --json /tmp/validity-quick.json  # a smoke run, minutes
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from medsynth_engine.casewriting import case_seed
from medsynth_engine.data.preprocess import PreprocessSpec, preprocess_case
from medsynth_engine.evaluate.run import EvaluateRequest, run_evaluation
from medsynth_engine.evaluate.sets import iter_cases, open_set
from medsynth_engine.evaluate.tstr import TstrSettings, run_tstr_sets
from medsynth_engine.evaluate.tumour_stats import SIZE_KEYS
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.modelfile import CARD_FILE, write_atomic
from medsynth_engine.registry import default_registry
from medsynth_engine.weights import WEIGHTS_DIR

CHANNELS = ("t1", "t1ce", "t2", "flair")
GENERATORS = ("phantom", "l2i3d-phantom", "ldm3d-phantom", "pgan3d-phantom")
REAL_SEED, SYNTHETIC_SEED = 7100, 7200
GRID, SPACING = 64, 3.0
PROTOCOLS = {
    "full": {"real": 80, "synthetic": 80, "tstr_synthetic": 30, "steps": 1000, "seeds": 3, "learning_rate": 1e-2},
    "quick": {"real": 16, "synthetic": 8, "tstr_synthetic": 8, "steps": 40, "seeds": 1, "learning_rate": 1e-2},
}


def _generate(model: str, n: int, seed: int, out: Path, grid: int = GRID, spacing: float = SPACING) -> float:
    """Generate a set (kept when ``out`` already holds the same complete set, continued when a killed run left it
    half-written: a rerun with ``--work``); ``model`` is an
    id or a model folder; the phantom is generated on ``grid``^3 at ``spacing`` mm, a learned model on its own grid."""
    started = time.perf_counter()
    manifest = out / "manifest.json"
    if manifest.is_file():
        kept = json.loads(manifest.read_text())
        parameters = kept.get("parameters", {})
        plugin = default_registry().generator(model)
        same_model = kept.get("model", {}).get("id") == plugin.card.id and kept.get("model", {}).get("weights_sha256") == plugin.weights_sha256()
        same_grid = model != "phantom" or parameters.get("shape") == [grid] * 3
        if same_model and same_grid and parameters.get("n") == n and parameters.get("seed") == seed:
            return 0.0
        shutil.rmtree(out)
    own_grid = model == "phantom"
    generate_set(
        GenerateRequest(
            model=model,
            n=n,
            seed=seed,
            out=out,
            channels=(*CHANNELS, "seg"),
            shape=(grid,) * 3 if own_grid else None,
            spacing=(spacing,) * 3 if own_grid else None,
            resume=(out.parent / f".{out.name}.partial").exists(),  # an interrupted run: continue its set
        ),
        default_registry(),
    )
    return time.perf_counter() - started


def _tstr_arrays(folder: Path, first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The set on the TSTR grid; ``first``: only the run's cases 0..first-1 (by their seeds), so the TSTR data of a
    larger set are exactly those of a set of ``first`` cases with the same seed (and its cached trainings)."""
    spec = PreprocessSpec(shape=(GRID,) * 3, spacing=(SPACING,) * 3)
    case_set = open_set(folder, "set")
    indices = None
    if first is not None:
        manifest = json.loads((folder / "manifest.json").read_text())
        seeds = {case_seed(manifest["parameters"]["seed"], i) for i in range(first)}
        keep = {c["id"] for c in manifest["cases"] if c["seed"] in seeds}
        indices = [i for i, case in enumerate(case_set.cases) if case.id in keep]
    images, labels = [], []
    for _, case in iter_cases(case_set, (*CHANNELS, "seg"), indices):
        out, _ = preprocess_case(case.arrays, case.affine, spec)
        images.append(np.stack([out[c] for c in CHANNELS]).astype(np.float32))
        labels.append(out["seg"].astype(np.uint8))
    return np.stack(images), np.stack(labels)


def _row(name: str, m: dict) -> dict:
    """The validity row of one generator, as the table, the JSON and the cards hold it (tumour sizes in ml for
    volumes, in mm^2 for slices: ``SIZE_KEYS``)."""
    size = SIZE_KEYS[m.get("spatial_dims", 3)]
    volumes = m[f"tumour_{size}"]
    presence = m["tumour_statistics"]["synthetic"]
    return {
        "generator": name,
        "ms_ssim_synthetic": round(m["ms_ssim_synthetic"], 3),
        "ms_ssim_real": round(m["ms_ssim_real"], 3),
        f"tumour_{size}_synthetic": [round(volumes[k]["synthetic_mean"]) for k in ("NCR", "ED", "ET")],
        f"tumour_{size}_real": [round(volumes[k]["real_mean"]) for k in ("NCR", "ED", "ET")],
        "presence_rate_synthetic": [presence[k]["presence_rate"] for k in ("NCR", "ED", "ET")],
        "presence_rate_real": [m["tumour_statistics"]["real"][k]["presence_rate"] for k in ("NCR", "ED", "ET")],
        **{k: round(m[k], 3) for k in ("precision", "recall", "density", "coverage")},
        "prdc_control": {k: round(v, 3) for k, v in m["prdc"]["control"].items()},
        "memorised_fraction": m["memorised_fraction"],
        "dice_synthetic": m["dice_synthetic"],
        "dice_real": m["dice_real"],
        "dice_control": m["dice_control"],
        "dice_real_plus_synthetic": m.get("dice_real_plus_synthetic"),
        **{k: m.get(k) for k in ("dice_ratio", "dice_ratio_ci", "control_ratio", "control_ratio_ci", "real_plus_synthetic_ratio", "real_plus_synthetic_ratio_ci")},
    }


def _table(rows: list[dict]) -> str:
    head = (
        "| synthetic set | MS-SSIM syn vs real | tumour ml NCR/ED/ET syn vs real | presence NCR/ED/ET syn vs real | P / R / D / C (control) "
        "| Dice syn / real (mean; WT) | dice_ratio [95 %] | control ratio [95 %] | real+syn / real [95 %] | memorised |\n|" + "---|" * 10
    )
    lines = [head]
    for r in rows:
        c = r["prdc_control"]
        lines.append(
            f"| {r['generator']} | {r['ms_ssim_synthetic']} vs {r['ms_ssim_real']} "
            f"| {'/'.join(map(str, r['tumour_volume_ml_synthetic']))} vs {'/'.join(map(str, r['tumour_volume_ml_real']))} "
            f"| {'/'.join(f'{v:.2f}' for v in r['presence_rate_synthetic'])} vs {'/'.join(f'{v:.2f}' for v in r['presence_rate_real'])} "
            f"| {r['precision']} / {r['recall']} / {r['density']} / {r['coverage']} ({c['precision']} / {c['recall']} / {c['density']} / {c['coverage']}) "
            f"| {r['dice_synthetic']['mean']:.3f} / {r['dice_real']['mean']:.3f}; {r['dice_synthetic']['WT']:.3f} / {r['dice_real']['WT']:.3f} "
            f"| {r['dice_ratio']} {r['dice_ratio_ci']} | {r['control_ratio']} {r['control_ratio_ci']} "
            f"| {r['real_plus_synthetic_ratio'] if r['real_plus_synthetic_ratio'] is not None else 'not run'} {r['real_plus_synthetic_ratio_ci'] or ''} "
            f"| {r['memorised_fraction']} |"
        )
    return "\n".join(lines)


def _write_card(row: dict, protocol: str, settings: dict, script: str = "bench/bench_validity.py") -> None:
    """Record ``row`` as the shipped model's ``metrics.validity``, naming the command and protocol that measured it."""
    path = WEIGHTS_DIR / row["generator"] / CARD_FILE
    card = json.loads(path.read_text())
    ran = ", ".join(f"{k} {v}" for k, v in settings.items())
    card.setdefault("metrics", {})["validity"] = row | {"protocol": f"{script} ({protocol}: {ran}); bench/results/validity.md"}
    write_atomic(path, (json.dumps(card, indent=2) + "\n").encode())


def _evaluate(folder: Path, real_dir: Path, report: Path, request: EvaluateRequest) -> dict:
    """``medsynth evaluate``'s metrics of one set, read from ``report`` when it was evaluated since both sets were made
    (a rerun with ``--work``)."""
    kept = report / "metrics.json"
    if kept.is_file() and kept.stat().st_mtime > max((folder / "manifest.json").stat().st_mtime, (real_dir / "manifest.json").stat().st_mtime):
        return json.loads(kept.read_text())
    shutil.rmtree(report, ignore_errors=True)
    return json.loads((run_evaluation(request) / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke protocol (16 real, 8 synthetic, 40 steps, 1 seed)")
    parser.add_argument("--generators", default=",".join(GENERATORS), help="comma-separated generator ids (default: all shipped 3D)")
    parser.add_argument("--steps", type=int, help="override the protocol's segmenter steps")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--work", type=Path, help="folder for the generated sets and the TSTR score cache; a rerun with the same folder trains only what changed")
    parser.add_argument("--write-cards", action="store_true", help="record each shipped model's row in its card")
    parser.add_argument("--seeds", type=int, help="override the protocol's number of TSTR seeds")
    parser.add_argument("--seed-base", type=int, default=0, help="first TSTR seed (split a run over processes: --seeds 1 --seed-base K, "
                        "then one run with all seeds and the same --work reads every training from the cache)")
    parser.add_argument("--real-plus-synthetic", default=None, help="comma-separated generators whose real + synthetic model is trained (default: all)")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the sets and keep the reports in --work (a split run; no TSTR)")
    parser.add_argument("--tstr-only", action="store_true", help="train and cache the TSTR models only (a split run; no table)")
    parser.add_argument("--device", default="cpu", help="where the TSTR segmenters train: cpu (default) or cuda (a lent GPU: the 3-seed protocol "
                        "at 2,000 steps is minutes there; scores are cached under the same keys whatever the device)")
    args = parser.parse_args()
    protocol_name = "quick" if args.quick else "full"
    protocol = dict(PROTOCOLS[protocol_name])
    if args.steps:
        protocol["steps"] = args.steps
    if args.seeds:
        protocol["seeds"] = args.seeds
    generators = [g for g in args.generators.split(",") if g]
    work = args.work or Path(tempfile.mkdtemp(prefix="medsynth-validity-"))
    timings: dict[str, float] = {}
    started = time.perf_counter()
    real_dir = work / "real"
    timings["generate real"] = _generate("phantom", protocol["real"], REAL_SEED, real_dir)
    sets = {}
    for name in generators:
        sets[name] = work / name
        timings[f"generate {name}"] = _generate(name, protocol["synthetic"], SYNTHETIC_SEED, sets[name])
    settings = TstrSettings(steps=protocol["steps"], seeds=protocol["seeds"], seed=args.seed_base, learning_rate=protocol["learning_rate"],
                            device=args.device)
    plus = args.real_plus_synthetic.split(",") if args.real_plus_synthetic is not None else None
    n = protocol["tstr_synthetic"]  # TSTR trains on the first n synthetic cases (case i is the same whatever the set's size)
    if args.tstr_only:
        run_tstr_sets(_tstr_arrays(real_dir), {name: _tstr_arrays(folder, n) for name, folder in sets.items()}, settings,
                      cache=work / "tstr-cache", real_plus_synthetic=plus)
        print(f"TSTR seeds {args.seed_base}..{args.seed_base + protocol['seeds'] - 1} cached in {work / 'tstr-cache'}")
        return
    metrics = {}
    for name, folder in sets.items():
        t0 = time.perf_counter()
        report = work / f"report-{name}"
        metrics[name] = _evaluate(folder, real_dir, report, EvaluateRequest(synthetic=folder, real=real_dir, out=report, channels=CHANNELS, grid=GRID))
        timings[f"evaluate {name}"] = time.perf_counter() - t0
    if args.evaluate_only:
        print("evaluated: " + ", ".join(metrics))
        return
    t0 = time.perf_counter()
    tstr = run_tstr_sets(_tstr_arrays(real_dir), {name: _tstr_arrays(folder, n) for name, folder in sets.items()}, settings,
                         cache=work / "tstr-cache", real_plus_synthetic=plus)
    timings["tstr (all generators)"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    rows = [_row(name, metrics[name] | tstr[name]) for name in generators]
    print(f"protocol {protocol_name}: {protocol}; TSTR {tstr[generators[0]]['tstr']['network']}")
    print(_table(rows))
    print("wall seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    if args.json:
        args.json.write_text(json.dumps({"protocol": protocol_name, "settings": protocol, "rows": rows, "tstr": tstr, "timings_s": timings}, indent=2))
    if args.write_cards:
        for row in rows:
            if (WEIGHTS_DIR / row["generator"] / CARD_FILE).is_file():
                _write_card(row, protocol_name, protocol)


if __name__ == "__main__":
    main()
