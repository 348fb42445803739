"""ldm3d sampling speed and memory: seconds per volume at 64^3 and 128^3 by DDIM steps, fp32 against bf16.

Uses the shipped ldm3d-phantom architecture (autoencoder widths, UNet widths, 4 latent channels; latents 1/2 of
the side, or 1/N with ``--latent-downsample N``) at each grid size, with random weights: timing does not depend
on the weights' values. One volume per call (batch 1), the full sampler
(``sample_volumes``: DDIM loop through MONAI's LatentDiffusionInferer, then the decoder). Every measurement
runs in a fresh subprocess so its peak resident memory is its own. Ratios are bf16 / fp32 in the same run.

    .venv/bin/python bench/bench_ldm3d.py [--threads N] [--steps 5,10,25,50] [--sizes 64,128] [--latent-downsample 2|4]
    .venv/bin/python bench/bench_ldm3d.py --steps-study [--seeds 4]
    .venv/bin/python bench/bench_ldm3d.py --contrast [--model FOLDER] [--seeds 4] [--guidance 1,3,6]

``--steps-study`` picks the default number of sampling steps by quality per second: with the shipped
weights, 4 seeds (conditioned on nothing, then on one training-like mask) are sampled at 2-50 DDIM steps and
compared with the same seeds at 100 steps (DDIM with eta 0 converges to one sample per seed as steps grow):
mean absolute difference of the image channels in [-1, 1] units, and seconds per volume.

``--contrast`` asks whether a drawn tumour shows: ``evaluate.tumour_contrast`` (mean intensity in a tumour class
- mean in the same region mirrored to the other hemisphere, over the SD of the head's intensities), per
sequence, for oedema (ED, code 2) and enhancing tumour (ET, code 4). Three rows
of references and results: the phantom's own tumours on fresh phantom cases at the model's grid (the truth the
model learnt from), those cases passed through the model's autoencoder (what its latents can carry), and
samples drawn from two outlines, 24 and 46 mm across (made into core/rim/oedema by ``structure_from_outline``), at
each guidance, with the share of head voxels within 12 mm of the outline that come out air-dark in every sequence
(an artifact of strong guidance).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(size: int, steps: int, mode: str, threads: int, downsample: int | None = None) -> dict:
    import torch
    from medsynth_engine.modelfile import read_card
    from medsynth_engine.models.ldm3d.network import (
        LDMConfig,
        autoencoder_widths,
        build_autoencoder,
        build_unet,
        unconditional,
    )
    from medsynth_engine.models.ldm3d.plugin import sample_volumes
    from medsynth_engine.weights import shipped_folder

    torch.set_num_threads(threads)
    card = read_card(shipped_folder("ldm3d-phantom"))
    config = LDMConfig.from_dict({**card.architecture, "resolution": size})
    if downsample:  # the autoencoder's levels for latents 1/downsample of the side (as finetune --latent-downsample)
        config.ae_channels = autoencoder_widths(config.ae_channels[0], downsample)
    torch.manual_seed(0)
    autoencoder, unet = build_autoencoder(config).eval(), build_unet(config).eval()
    condition = unconditional(1, config.latent_resolution)
    device = torch.device("cpu")
    amp = mode == "bf16"
    base = _peak_mb()
    sample_volumes(config, autoencoder, unet, condition, 0, 1, device, amp=amp)  # warm-up
    start = time.perf_counter()
    sample_volumes(config, autoencoder, unet, condition, 1, steps, device, amp=amp)
    seconds = time.perf_counter() - start
    return {"size": size, "steps": steps, "mode": mode, "seconds": seconds, "peak_mb": _peak_mb(), "peak_over_start_mb": _peak_mb() - base}


def steps_study(seeds: int, threads: int) -> None:
    import numpy as np
    import torch
    from medsynth_engine.models.ldm3d.network import condition_from_codes, unconditional
    from medsynth_engine.models.ldm3d.plugin import LDM3DModel, sample_volumes
    from medsynth_engine.weights import shipped_folder

    torch.set_num_threads(threads)
    model = LDM3DModel(shipped_folder("ldm3d-phantom"))
    config, device = model.config, torch.device("cpu")
    codes = torch.zeros((1, *(config.resolution,) * 3), dtype=torch.uint8)
    c = config.resolution // 2
    codes[0, c + 2 : c + 12, c - 5 : c + 5, c - 5 : c + 5] = 2
    codes[0, c + 4 : c + 10, c - 3 : c + 3, c - 3 : c + 3] = 4
    conditions = [unconditional(1, config.latent_resolution), condition_from_codes(codes, config.latent_resolution)]
    k = len(config.image_channels)

    def run(steps: int, seed: int, cond: torch.Tensor) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        out = sample_volumes(config, model.autoencoder, model.unet, cond, seed, steps, device)
        return out[0, :k].numpy(), time.perf_counter() - start

    reference = {(s, i): run(100, s, cond)[0] for s in range(seeds) for i, cond in enumerate(conditions)}
    print(f"model {model.id}, {config.resolution}^3, {threads} thread(s); reference: 100 DDIM steps")
    print("| steps | s/volume | mean abs diff to 100 steps ([-1, 1] units) |")
    print("|---|---|---|")
    for steps in (2, 5, 10, 15, 25, 50):
        diffs, times = [], []
        for s in range(seeds):
            for i, cond in enumerate(conditions):
                sample, seconds = run(steps, s, cond)
                diffs.append(float(np.abs(sample - reference[(s, i)]).mean()))
                times.append(seconds)
        print(f"| {steps} | {np.mean(times):.2f} | {np.mean(diffs):.4f} |", flush=True)


def _figure(path: Path, rows: list[tuple[str, dict, object]], channels=("t1ce", "flair", "t2")) -> None:
    """Axial slices through each row's tumour, one column per sequence, the label map's outline in yellow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots(len(rows), len(channels), figsize=(2.2 * len(channels), 2.3 * len(rows)), squeeze=False)
    for r, (title, arrays, codes) in enumerate(rows):
        z = int(np.argwhere(codes > 0)[:, 2].mean())
        for c, channel in enumerate(channels):
            ax = axes[r][c]
            image = np.asarray(arrays[channel], dtype=float)[:, :, z].T
            low, high = np.percentile(arrays[channel], [1, 99.5])
            ax.imshow(image, cmap="gray", origin="lower", vmin=low, vmax=high)
            ax.contour((codes[:, :, z] > 0).T, levels=[0.5], colors="yellow", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(title, fontsize=7)
            if r == 0:
                ax.set_title(channel, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def contrast_study(model_path: str | None, seeds: int, guidances: list[float], threads: int, cases: int, figure: Path | None = None) -> None:
    import tempfile

    import numpy as np
    import torch
    from medsynth_engine.addtumour import structure_from_outline
    from medsynth_engine.data.preprocess import PreprocessSpec
    from medsynth_engine.data.training_set import load_training_set
    from medsynth_engine.evaluate.tumour_contrast import contrast_table
    from medsynth_engine.generate import GenerateRequest, generate_set
    from medsynth_engine.models.ldm3d.plugin import LDM3DModel
    from medsynth_engine.registry import default_registry
    from medsynth_engine.weights import shipped_folder

    torch.set_num_threads(threads)
    model = LDM3DModel(Path(model_path) if model_path else shipped_folder("ldm3d-phantom"))
    config, r, sp = model.config, model.config.resolution, float(model.card.spacing[0])
    k = len(config.image_channels)
    header = "| | FLAIR ED | FLAIR ET | T2 ED | T2 ET | T1ce ED | T1ce ET |"
    print(f"model {model.folder.name} ({r}^3 at {sp:g} mm, latents {config.latent_resolution}^3), {threads} thread(s)")
    print(header + "\n|---|---|---|---|---|---|---|")
    fmt = lambda label, rows: print(f"| {label} | " + " | ".join(f"{x:.2f}" for x in np.nanmean(np.asarray(rows, dtype=float), 0)) + " |", flush=True)  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        folder = generate_set(
            GenerateRequest(model="phantom", n=cases, seed=4242, out=Path(tmp) / "truth", shape=(r,) * 3, spacing=(sp,) * 3, workers=1),
            default_registry(),
        )
        data = load_training_set(folder, PreprocessSpec(shape=(r,) * 3, spacing=(sp,) * 3), channels=tuple(config.channels))
    codes = data.labels.numpy()
    images = data.images.numpy()
    names = list(config.image_channels)
    truth = [contrast_table(dict(zip(names, images[i], strict=True)), codes[i]) for i in range(len(data))]
    fmt(f"phantom cases ({len(data)}), their own seg", truth)
    with torch.no_grad():
        x = data.batch(torch.arange(len(data))) * 1.0
        x[:, k:] = x[:, k:] * 2.0 - 1.0
        recon = torch.cat([model.autoencoder.reconstruct(x[i : i + 1]) for i in range(len(data))]).numpy()
    fmt("the same cases through the autoencoder", [contrast_table(dict(zip(names, recon[i, :k], strict=True)), codes[i]) for i in range(len(data))])

    if not model.has_diffusion:
        print("(autoencoder stage only: no samples)")
        return
    from medsynth_engine.models.ldm3d.network import condition_from_codes
    from medsynth_engine.models.ldm3d.plugin import sample_volumes
    from scipy import ndimage

    g = np.indices((r,) * 3)
    pictures = []
    for radius_mm, where in ((12.0, (0.65, 0.5, 0.55)), (23.0, (0.62, 0.55, 0.55))):
        centre = np.array([r * w for w in where])
        drawn = structure_from_outline(((g - centre[:, None, None, None]) ** 2).sum(0) * sp**2 <= radius_mm**2, (sp,) * 3)
        shell = ndimage.binary_dilation(drawn > 0, iterations=max(1, round(12.0 / sp))) & (drawn == 0)
        condition = condition_from_codes(torch.from_numpy(drawn)[None].repeat(seeds, 1, 1, 1), config.latent_resolution)
        for guidance in guidances:
            model.config.guidance = guidance
            out = sample_volumes(config, model.autoencoder, model.unet, condition, 11, config.default_steps, torch.device("cpu")).numpy()
            rows, air, physical = [], [], [model.to_physical(volume) for volume in out]
            for i in range(seeds):
                dark = (out[i, :k] < -0.6).all(0)  # every sequence in the bottom fifth of its range: air-like
                head = ndimage.binary_fill_holes(ndimage.binary_closing(~dark, iterations=2))
                air.append((dark & shell & head).sum() / max((shell & head).sum(), 1))
                rows.append(contrast_table(physical[i], drawn))
            fmt(f"drawn outline {2 * radius_mm:g} mm across, guidance {guidance:g}: {100 * np.mean(air):.1f}% air-dark voxels in the 12 mm around it", rows)
            if guidance == guidances[-1] or guidance == model.card.architecture.get("guidance"):
                pictures.append((f"{2 * radius_mm:g} mm outline\nguidance {guidance:g}", physical[0], drawn))
    if figure is not None:
        truth_case = dict(zip(names, images[0], strict=True))
        _figure(figure, [("phantom case\n(its own tumour)", truth_case, codes[0]), *pictures])
        print(f"figure: {figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", default="5,10,25,50")
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--latent-downsample", type=int, default=None, help="latents 1/N of the side (default: the shipped model's)")
    parser.add_argument("--steps-study", action="store_true")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--contrast", action="store_true")
    parser.add_argument("--model", default=None, help="--contrast: an ldm3d model folder (default: the shipped one)")
    parser.add_argument("--guidance", default="1,3,6")
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--figure", type=Path, default=None, help="--contrast: write slices of the last seed's samples here (PNG)")
    args = parser.parse_args()
    if args.contrast:
        contrast_study(args.model, args.seeds, [float(g) for g in args.guidance.split(",")], args.threads, args.cases, args.figure)
        return
    if args.steps_study:
        steps_study(args.seeds, args.threads)
        return
    if args.child:
        size, steps, mode = args.child.split(":")
        print(json.dumps(child(int(size), int(steps), mode, args.threads, args.latent_downsample)))
        return
    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} thread(s), torch {torch.__version__}, CUDA: {torch.cuda.is_available()}")
    print("| grid | steps | fp32 s/volume | bf16 s/volume | bf16/fp32 time | fp32 peak MB | bf16 peak MB |")
    print("|---|---|---|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        for steps in map(int, args.steps.split(",")):
            rows = {}
            for mode in ("fp32", "bf16"):
                run = subprocess.run(
                    [sys.executable, __file__, "--child", f"{size}:{steps}:{mode}", "--threads", str(args.threads)]
                    + (["--latent-downsample", str(args.latent_downsample)] if args.latent_downsample else []),
                    capture_output=True, text=True, check=True,
                )
                rows[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            f, b = rows["fp32"], rows["bf16"]
            print(
                f"| {size}^3 | {steps} | {f['seconds']:.2f} | {b['seconds']:.2f} | {b['seconds'] / f['seconds']:.2f} | "
                f"{f['peak_mb']:.0f} | {b['peak_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
