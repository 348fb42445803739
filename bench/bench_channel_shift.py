"""Channel models under domain shift: false-positive tumour on healthy heads, Dice and CT numbers on shifted cases.

What issue 22 asks the seg and mr2ct models to hold, measured for one pair of models per run (run it once
with today's shipped models and once with the candidates; the rows are comparable):

- healthy real head: the MNI152 2009 T1 template from nilearn's wheel (brain-extracted; the wheel has no
  with-skull version), at 1 mm, resampled to 2 and 3 mm and to 5 mm slices on each axis: tumour ml (T1 only);
- healthy phantom heads (fresh seeds, skull on) at 2, 3, 5 mm axial slices and 7 mm (beyond the 1-6 mm
  randomisation range), T1 only and all four sequences: tumour ml;
- phantom cases with a tumour (fresh seeds, skull on) at 2, 3, 5 mm slices: whole-tumour Dice with all four
  sequences and with T1 only, and at 3 mm for every subset of the sequences;
- mr2ct: mean HU in brain, CSF, cortical bone and air (truth: the phantom's tissue fractions) and the mean
  absolute error over the head on the 3 mm cases, T1 only and all four, with skull and brain-extracted;
- ``masked``: the healthy and tumour rows (T1 only and all four) again, skull on but with a brain mask on the
  thick-slice grid, as ``medsynth add-channel`` uses the case's ``_mask`` (input zero outside it, labels kept
  inside): the phantom's own brain mask, i.e. a perfect skull stripping (what ``medsynth prepare`` aims at).

``--n4``: every input goes through N4 bias-field correction first, as ``medsynth add-channel`` does by default for
seg (``addchannel.model_inputs``: the same function, fitted inside the brain mask for the ``masked`` rows).

Shifted volumes come from one 1 mm rendering per case: a Gaussian slice profile of FWHM the slice thickness,
then every n-th slice (what a thick-slice acquisition integrates). Cases are cached in bench/out/shift_cases.

    PYTHONPATH=engine:. .venv/bin/python bench/bench_channel_shift.py --label before --seg seg-phantom --ct mr2ct-phantom
    (--parts real,healthy / dice / subsets / ct in parallel processes, then --summarise --label before)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))

CACHE = ROOT / "bench" / "out" / "shift_cases"
SEQUENCES = ("t1", "t1ce", "t2", "flair")
TUMOUR_SEED, HEALTHY_SEED = 8_800_000, 8_900_000
#: condition -> slice spacing (mm) per axis, from the 1 mm rendering.
PHANTOM_SHIFTS = {"2 mm slices": (1, 1, 2), "3 mm slices": (1, 1, 3), "5 mm slices": (1, 1, 5)}
BEYOND = {"7 mm slices": (1, 1, 7)}
MNI_SHIFTS = {"1 mm": (1, 1, 1), "2 mm": (2, 2, 2), "3 mm": (3, 3, 3), "5 mm axial": (1, 1, 5), "5 mm sagittal": (5, 1, 1), "5 mm coronal": (1, 5, 1)}
PARTS = ("real", "healthy", "dice", "subsets", "ct", "masked")
#: region code -> name, for the CT numbers.
REGIONS = {1: "brain", 2: "CSF", 3: "bone", 4: "air"}


def thick(array: np.ndarray, affine: np.ndarray, steps: tuple[int, int, int], label: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every ``steps``-th voxel per axis after a Gaussian slice profile (FWHM = the new spacing); labels: nearest."""
    out = array
    if not label:
        out = array.astype(np.float32)
        for axis, step in enumerate(steps):
            if step > 1:
                out = ndimage.gaussian_filter1d(out, np.sqrt(step**2 - 1.0) / 2.355, axis=axis, mode="nearest")
    start = [(s - 1) // 2 for s in steps]
    out = out[start[0] :: steps[0], start[1] :: steps[1], start[2] :: steps[2]]
    new = affine.copy()
    new[:3, :3] = affine[:3, :3] * np.array(steps)
    new[:3, 3] = (affine @ np.r_[start, 1.0])[:3]
    return out, new


def render_case(seed: int, tumour: bool) -> dict[str, np.ndarray]:
    """One fresh phantom subject at 1 mm, skull on, cached: sequences, seg, ct, brain mask, CT regions."""
    path = CACHE / f"{'tumour' if tumour else 'healthy'}_{seed}.npz"
    if path.is_file():
        return dict(np.load(path))
    from medsynth_engine.phantom import AtlasLoader, Grid, draw_subject, render
    from medsynth_engine.phantom.tissues import TISSUE_INDEX

    atlas = AtlasLoader().get()
    params = draw_subject(seed, atlas, tumour=tumour)
    grid = Grid.centred((192, 224, 192), (1.0, 1.0, 1.0), atlas.brain_centre_mm + np.asarray(params.translation_mm))
    arrays = render(params, atlas, grid, (*SEQUENCES, "seg", "ct", "tissues"), skull_strip=False)
    tissues = arrays.pop("tissues")
    regions = np.zeros(grid.shape, dtype=np.uint8)
    regions[tissues[TISSUE_INDEX["white_matter"]] + tissues[TISSUE_INDEX["grey_matter"]] > 0.95] = 1
    regions[tissues[TISSUE_INDEX["csf"]] > 0.95] = 2
    regions[tissues[TISSUE_INDEX["cortical_bone"]] > 0.8] = 3
    regions[tissues[TISSUE_INDEX["air"]] > 0.99] = 4
    case = {**arrays, "brain": tissues[-1] > 0.5, "regions": regions, "affine": grid.affine}
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.npz")
    np.savez_compressed(partial, **case)
    os.replace(partial, path)
    return case


def mni_t1() -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib
    from medsynth_engine.phantom.atlas import nilearn_data_dir

    image = nib.load(str(nilearn_data_dir() / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"))
    return np.asarray(image.dataobj, dtype=np.float32), image.affine


def tumour_ml(seg: np.ndarray, affine: np.ndarray) -> float:
    return float((seg > 0).sum() * abs(np.linalg.det(affine[:3, :3])) / 1000.0)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    a, b = pred > 0, truth > 0
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * (a & b).sum() / total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="name of this run in the output (before, after...)")
    parser.add_argument("--seg", default="seg-phantom")
    parser.add_argument("--ct", default="mr2ct-phantom")
    parser.add_argument("--tumour-cases", type=int, default=4)
    parser.add_argument("--healthy-cases", type=int, default=6)
    parser.add_argument("--healthy-seed", type=int, default=HEALTHY_SEED, help=f"first healthy draw_subject seed (default {HEALTHY_SEED}: the benchmark's)")
    parser.add_argument("--tumour-seed", type=int, default=TUMOUR_SEED, help=f"first tumour draw_subject seed (default {TUMOUR_SEED}); other seeds "
                        "make a validation set to choose a checkpoint on, apart from the cases the benchmark reports")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="where the models run: cpu (default) or cuda")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)} (run parts in parallel processes)")
    parser.add_argument("--n4", action="store_true", help="N4-correct every input first, as add-channel does for seg (the seg rows only)")
    parser.add_argument("--summarise", action="store_true", help="merge this label's part files and print the summary")
    args = parser.parse_args()
    if args.summarise:
        merged: dict = {}
        for part in sorted(args.out.glob(f"channel_shift_{args.label}*.json")):
            for key, value in json.loads(part.read_text()).items():
                if isinstance(value, dict):  # per condition: keep the part that measured more cases
                    known = merged.setdefault(key, {})
                    known.update({k: v for k, v in value.items() if k not in known or len(str(v)) > len(str(known[k]))})
                else:
                    merged[key] = value
        print(json.dumps(summary(merged), indent=1))
        return
    parts = set(args.parts.split(","))

    import torch
    from medsynth_engine.addchannel import model_inputs, resolve_channel_model

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    seg_model = resolve_channel_model("seg", args.seg)
    ct_model = resolve_channel_model("ct", args.ct)
    started = time.time()
    results: dict = {"label": args.label, "seg": seg_model.id, "ct": ct_model.id, "healthy_seed": args.healthy_seed, "tumour_seed": args.tumour_seed,
                     "n4": args.n4, "n4_seconds": 0.0, "healthy_real": {}, "healthy_phantom": {}, "dice": {}, "ct_hu": {}}
    prepared: dict = {}  # (case id, steps, skull, masked) -> the four inputs as the model sees them (N4 is per sequence)

    def to_model(arrays: dict, affine: np.ndarray, brain: np.ndarray | None) -> dict:
        t = time.perf_counter()
        out = model_inputs(arrays, affine, brain, n4=args.n4)
        results["n4_seconds"] = round(results["n4_seconds"] + (time.perf_counter() - t if args.n4 else 0.0), 1)
        return out

    def segment(case: dict, steps, sequences, skull: bool = True, masked: bool = False) -> tuple[np.ndarray, np.ndarray]:
        key = (id(case), steps, skull, masked)
        if key not in prepared:
            prepared.clear()  # one case and shift at a time: the subsets of the sequences reuse it
            arrays = {}
            for name in SEQUENCES:
                image = case[name] * (1 if skull else case["brain"])
                arrays[name], affine = thick(image, case["affine"], steps)
            brain = thick(case["brain"], case["affine"], steps, label=True)[0] > 0 if masked else None
            prepared[key] = (to_model(arrays, affine, brain), affine, brain, case)  # the case held: its id stays unique
        arrays, affine, brain, _ = prepared[key]
        seg = seg_model.predict({k: arrays[k] for k in sequences}, affine, device=device)
        if brain is not None:
            seg[~brain] = 0
        return seg, affine

    t1, affine = mni_t1()
    for name, steps in MNI_SHIFTS.items() if "real" in parts else ():
        image, grid = thick(t1, affine, steps)
        seg = seg_model.predict(to_model({"t1": image}, grid, None), grid, device=device)
        results["healthy_real"][f"MNI152 T1, brain-extracted, {name}"] = round(tumour_ml(seg, grid), 2)
        print(f"MNI {name}: {results['healthy_real'][f'MNI152 T1, brain-extracted, {name}']} ml", flush=True)

    masks = ((False,) if "healthy" in parts else ()) + ((True,) if "masked" in parts else ())
    for i in range(args.healthy_cases if masks else 0):
        case = render_case(args.healthy_seed + i, tumour=False)
        for (name, steps), masked, inputs in itertools.product({**PHANTOM_SHIFTS, **BEYOND}.items(), masks, (("t1",), SEQUENCES)):
            seg, grid = segment(case, steps, inputs, masked=masked)
            key = f"{name}, skull on{' + brain mask' if masked else ''}, {'T1 only' if inputs == ('t1',) else 'all four'}"
            results["healthy_phantom"].setdefault(key, []).append(round(tumour_ml(seg, grid), 2))
        print(f"healthy case {i}: done ({time.time() - started:.0f} s)", flush=True)

    subsets = [c for n in range(1, 5) for c in itertools.combinations(SEQUENCES, n)]
    for i in range(args.tumour_cases if parts & {"dice", "subsets", "ct", "masked"} else 0):
        case = render_case(args.tumour_seed + i, tumour=True)
        for name, steps in PHANTOM_SHIFTS.items() if "masked" in parts else ():
            truth, _ = thick(case["seg"], case["affine"], steps, label=True)
            for inputs in (SEQUENCES, ("t1",)):
                seg, grid = segment(case, steps, inputs, masked=True)
                results["dice"].setdefault(f"{name}, skull on + brain mask, {'+'.join(inputs)}", []).append(round(dice(seg, truth), 3))
        for name, steps in PHANTOM_SHIFTS.items():
            runs = [SEQUENCES, ("t1",)] if "dice" in parts else []
            if "subsets" in parts and name == "3 mm slices":
                runs += [s for s in subsets if s not in runs]
            for inputs in runs:
                seg, grid = segment(case, steps, inputs)
                truth, _ = thick(case["seg"], case["affine"], steps, label=True)
                results["dice"].setdefault(f"{name}, skull on, {'+'.join(inputs)}", []).append(round(dice(seg, truth), 3))
        for skull, inputs in itertools.product((True, False), (("t1",), SEQUENCES)) if "ct" in parts else ():
            arrays, grid = {}, None
            for name in inputs:
                arrays[name], grid = thick(case[name] * (1 if skull else case["brain"]), case["affine"], (1, 1, 3))
            hu = ct_model.predict(arrays, grid, device=device).astype(np.float32)
            regions, _ = thick(case["regions"], case["affine"], (1, 1, 3), label=True)
            truth_hu, _ = thick(case["ct"], case["affine"], (1, 1, 3), label=True)
            key = f"3 mm slices, {'T1 only' if inputs == ('t1',) else 'all four'}, {'skull on' if skull else 'brain-extracted'}"
            row = results["ct_hu"].setdefault(key, {"mae_head": [], **{n: [] for n in REGIONS.values()}})
            head = regions != 4
            row["mae_head"].append(round(float(np.abs(hu - truth_hu)[head].mean()), 1))
            for code, region in REGIONS.items():
                row[region].append(round(float(hu[regions == code].mean()), 1))
        print(f"tumour case {i}: done ({time.time() - started:.0f} s)", flush=True)

    results["seconds"] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"channel_shift_{args.label}_{'-'.join(p for p in PARTS if p in parts)}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(summary(results), indent=1))
    print(f"wrote {path}")


def summary(results: dict) -> dict:
    """Means over cases; the worst case for the false-positive volumes (the target is per case)."""
    return {
        "healthy_real_ml": results.get("healthy_real", {}),
        "healthy_phantom_ml_max": {k: max(v) for k, v in results.get("healthy_phantom", {}).items()},
        "dice_mean": {k: round(float(np.mean(v)), 3) for k, v in results.get("dice", {}).items()},
        "dice_per_case": results.get("dice", {}),
        "ct_hu_mean": {k: {r: round(float(np.mean(v)), 1) for r, v in row.items()} for k, row in results.get("ct_hu", {}).items()},
    }


if __name__ == "__main__":
    main()
