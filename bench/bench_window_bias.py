"""Does a seg model call a window's centre tumour? Healthy heads, T1 alone: tumour probability by place in the window.

A UNet trained on patches centred on tumour can learn that a patch's centre is tumour (zero padding tells it
where the centre is). Sliding-window inference then finds tumour where the image shows none, the more so with
Gaussian window weighting, which trusts window centres most. This measures both, per model, on the healthy
phantom heads of ``bench_channel_shift`` (skull on, 3 mm axial slices, T1 only: the input where nothing else
tells the network where a tumour is):

- tumour probability (NCR + ED + ET) of single 64^3 windows (stride 16 over the model grid) by distance from the
  window's centre, over head voxels only (so that window edges in the air do not make the centre look worse);
- tumour voxels labelled by sliding-window inference with Gaussian and with constant window weighting, with the
  volume where it is and rolled by 16 and 32 voxels on each axis (a model without the bias gives about the same
  counts for all six).

    PYTHONPATH=engine:bench .venv/bin/python bench/bench_window_bias.py --seg seg-phantom [--seg FOLDER ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RADII = (0, 8, 16, 24, 32)


def measure(seg: str, seeds: list[int], threads: int) -> dict:
    import torch
    from bench_channel_shift import render_case, thick
    from medsynth_engine.addchannel import resolve_channel_model
    from medsynth_engine.models.channelnet.inputs import ModelGrid, assemble
    from monai.inferers import sliding_window_inference

    torch.set_num_threads(threads)
    model = resolve_channel_model("seg", seg)
    patch = model.config.patch
    ii = np.indices((patch,) * 3) - (patch - 1) / 2
    radius = np.sqrt((ii**2).sum(0)).astype(int)
    out: dict = {"seg": model.id, "cases": {}}
    for seed in seeds:
        case = render_case(seed, tumour=False)
        image, affine = thick(case["t1"], case["affine"], (1, 1, 3))
        grid = ModelGrid.of(image, affine, model.spacing)
        array = grid.model_array()
        x = torch.from_numpy(assemble({"t1": array}))[None]
        head = array > 0.05 * float(array.max())  # the head, not the air
        row: dict = {}
        with torch.inference_mode():
            for roll in (0, 16, 32):
                xs = torch.roll(x, shifts=(roll,) * 3, dims=(2, 3, 4))
                for mode in ("gaussian", "constant"):
                    y = sliding_window_inference(xs, (patch,) * 3, 8, model.net, overlap=0.25, mode=mode)
                    row[f"voxels, {mode}, rolled {roll}"] = int((y.argmax(1) > 0).sum())
            total, count = np.zeros(radius.max() + 1), np.zeros(radius.max() + 1)
            shape = x.shape[2:]
            corners = [(a, b, c) for a in range(0, shape[0] - patch + 1, 16) for b in range(0, shape[1] - patch + 1, 16) for c in range(0, shape[2] - patch + 1, 16)]
            for a, b, c in corners:
                window = x[:, :, a : a + patch, b : b + patch, c : c + patch]
                inside = head[a : a + patch, b : b + patch, c : c + patch]
                p = torch.softmax(model.net(window), 1)[0, 1:].sum(0).numpy()
                np.add.at(total, radius[inside], p[inside])
                np.add.at(count, radius[inside], 1)
        profile = total / np.maximum(count, 1)
        row["tumour probability in the head by distance from the window centre (voxels)"] = {r: round(float(profile[r]), 3) for r in RADII}
        out["cases"][seed] = row
        print(seed, json.dumps(row), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seg", action="append", required=True, help="seg model id or folder (repeat to compare)")
    parser.add_argument("--seeds", default="8900001,8900003", help="healthy draw_subject seeds (bench_channel_shift's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "window_bias.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = [measure(seg, seeds, args.threads) for seg in args.seg]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
