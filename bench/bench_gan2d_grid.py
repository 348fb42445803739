"""dcgan2d's grid artefact: transposed convolutions (the poster's) against resize-then-convolve (its fix), in one run.

Both variants train on the same phantom FLAIR slices with the same seed and steps; then 64 samples of each
(and the untrained generators) are measured by ``dcgan2d.spectrum.stride_peaks``: the power at the stride
periods (2 and 4 pixels) over the median of the neighbouring frequencies, 1 meaning no peak. Real training
slices are measured the same way; the table prints each figure and its ratio to the real slices'.

    nice -n 10 .venv/bin/python bench/bench_gan2d_grid.py [--steps 100] [--resolution 64] [--width 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--samples", type=int, default=64)
    args = parser.parse_args()

    import torch
    from medsynth_engine.data.preprocess import PreprocessSpec
    from medsynth_engine.generate import GenerateRequest, generate_set
    from medsynth_engine.modelfile import load_model_folder
    from medsynth_engine.models.dcgan2d.network import DCGANConfig, Generator
    from medsynth_engine.models.dcgan2d.spectrum import stride_peaks
    from medsynth_engine.models.slices2d.slices import load_slices
    from medsynth_engine.registry import default_registry
    from medsynth_engine.training.finetune import FinetuneRequest, run_finetune

    res, spacing = args.resolution, 192.0 / args.resolution
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gan2d-") as scratch:
        work = Path(scratch)
        data = generate_set(
            GenerateRequest(model="phantom", n=args.cases, seed=7, out=work / "data", channels=("flair",), shape=(res,) * 3,
                            spacing=(spacing,) * 3, device="cpu"),
            default_registry(),
        )
        real = load_slices(data, PreprocessSpec(shape=(res,) * 3, spacing=(spacing,) * 3), 48, channels=("flair",)).images
        rows.append(("real slices", stride_peaks(real.numpy()), None))
        z = torch.randn(args.samples, 128, generator=torch.Generator().manual_seed(1))
        for mode in ("transposed", "resize"):
            config = DCGANConfig(resolution=res, width=args.width, image_channels=["flair"], upsample=mode)
            torch.manual_seed(1)
            with torch.no_grad():
                rows.append((f"{mode}, untrained", stride_peaks(Generator(config).eval()(z).numpy()), None))
            started = time.monotonic()
            out = run_finetune(FinetuneRequest.make(
                model="dcgan2d", data=data, out=work / mode, resolution=res, spacing=spacing, width=args.width, steps=args.steps,
                batch_size=8, checkpoint_every=args.steps, log_every=args.steps, seed=1, upsample=mode, critic_steps=1,
            ))
            seconds = time.monotonic() - started
            card, tensors = load_model_folder(out)
            generator = Generator(DCGANConfig.from_dict(card.architecture)).eval()
            generator.load_state_dict({k[10:]: v for k, v in tensors.items() if k.startswith("generator.")})
            with torch.no_grad():
                rows.append((f"{mode}, {args.steps} steps", stride_peaks(generator(z).numpy()), seconds))
    real_peaks = rows[0][1]
    print(f"dcgan2d grid artefact at {res}x{res}, width {args.width}, {args.cases} phantom subjects (FLAIR), batch 8\n")
    print("| images | peak at period 2 | x real | peak at period 4 | x real | training time |")
    print("|---|---|---|---|---|---|")
    for name, peaks, seconds in rows:
        took = f"{seconds:.0f} s" if seconds is not None else ""
        print(f"| {name} | {peaks[2]:.2f} | {peaks[2] / real_peaks[2]:.2f} | {peaks[4]:.2f} | {peaks[4] / real_peaks[4]:.2f} | {took} |")


if __name__ == "__main__":
    main()
