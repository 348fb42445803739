"""Does N4 bias correction of the input remove seg-phantom's remaining false positives? (a first check, issue 22)

The shipped seg-phantom labels tens of ml of oedema in the two healthy benchmark heads whose rendered bias field
is strongest (bench/results/add_channel.md). This runs the project's own N4 (``prepare.pipeline._n4``, what
``medsynth prepare --n4`` applies) on each sequence of a few ``bench_channel_shift`` cases at 3 mm slices, skull on,
all four sequences, and compares tumour ml (healthy heads) and whole-tumour Dice (tumour cases) with and without it.

    PYTHONPATH=engine:bench .venv/bin/python bench/bench_n4_input.py [--seg seg-phantom]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

CASES = ((8900003, False), (8900005, False), (8900000, False), (8800001, True), (8800003, True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seg", default="seg-phantom")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import SimpleITK as sitk
    import torch
    from bench_channel_shift import SEQUENCES, dice, render_case, thick, tumour_ml
    from medsynth_engine.addchannel import resolve_channel_model
    from medsynth_engine.prepare.pipeline import _n4

    torch.set_num_threads(args.threads)
    model = resolve_channel_model("seg", args.seg)
    rows = []
    for seed, tumour in CASES:
        case = render_case(seed, tumour=tumour)
        raw, corrected, seconds = {}, {}, 0.0
        for name in SEQUENCES:
            raw[name], affine = thick(case[name], case["affine"], (1, 1, 3))
            image = sitk.GetImageFromArray(raw[name])
            image.SetSpacing([float(s) for s in np.abs(np.diag(affine)[:3])][::-1])
            started = time.perf_counter()
            corrected[name] = sitk.GetArrayFromImage(_n4(image))
            seconds += time.perf_counter() - started
        row = {"seed": seed, "tumour": tumour, "n4_seconds": round(seconds, 1)}
        for label, arrays in (("raw", raw), ("n4", corrected)):
            seg = model.predict(arrays, affine, device=torch.device("cpu"))
            if tumour:
                row[f"dice_{label}"] = round(dice(seg, thick(case["seg"], case["affine"], (1, 1, 3), label=True)[0]), 3)
            else:
                row[f"ml_{label}"] = round(tumour_ml(seg, affine), 2)
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
