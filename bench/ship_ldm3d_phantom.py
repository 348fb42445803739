"""Make the shipped ``ldm3d-phantom`` folder from a trained ``medsynth finetune --model ldm3d`` run folder.

Copies the card and weights, stores the weights as float16 (halves the file; sampling upcasts to fp32 on load),
sets the id, description, limits and measured figures in the card, and writes ``mosaic.png``: two unconditional
samples and two samples conditioned on a drawn mask, at the default number of sampling steps.

    .venv/bin/python bench/ship_ldm3d_phantom.py RUN_FOLDER [--note "what the run was"] [--limits "..."] [--guidance G]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))

TARGET = ROOT / "engine" / "medsynth_engine" / "weights" / "ldm3d-phantom"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--note", default="")
    parser.add_argument("--limits", default="")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale to ship as the default")
    args = parser.parse_args()

    import torch
    from medsynth_engine.modelfile import CARD_FILE, WEIGHTS_FILE, load_model_folder, write_atomic
    from medsynth_engine.models.ldm3d.network import condition_from_codes, unconditional
    from medsynth_engine.models.ldm3d.plugin import LDM3DModel, sample_volumes
    from medsynth_engine.training.mosaic import write_mosaic
    from medsynth_engine.tumour import structure_from_outline
    from safetensors.torch import save

    card, tensors = load_model_folder(args.run)
    if "unet.conv_in.conv.weight" not in tensors:
        raise SystemExit("the run has no trained diffusion stage")
    TARGET.mkdir(parents=True, exist_ok=True)
    blob = save({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()})
    write_atomic(TARGET / WEIGHTS_FILE, blob)
    card.id = "ldm3d-phantom"
    card.weights = {
        "file": WEIGHTS_FILE,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "source": card.weights.get("source", "") + "; stored as float16 by bench/ship_ldm3d_phantom.py",
    }
    card.training_data = (
        f"{card.preprocessing['data']['cases']} simulated cases from MedSynth's phantom (medsynth generate --model phantom), "
        f"{card.shape[0]}^3 at {card.spacing[0]:g} mm; no patient data. {args.note}"
    ).strip()
    card.licence = (
        "Apache-2.0 (weights trained on procedural phantom data derived from the MNI ICBM152 2009a maps; "
        "see the phantom model's licence)"
    )
    card.metrics = {**card.metrics, "limits": args.limits}
    if args.guidance is not None:
        card.architecture["guidance"] = args.guidance
    write_atomic(TARGET / CARD_FILE, (json.dumps(card.to_dict(), indent=2) + "\n").encode())

    model = LDM3DModel(TARGET)
    config = model.config
    r = config.resolution
    grid = torch.stack(torch.meshgrid(*[torch.arange(r)] * 3, indexing="ij"))
    centre = torch.tensor([r * 0.62, r * 0.55, r * 0.55]).view(3, 1, 1, 1)
    blob_mask = ((grid - centre) ** 2).sum(0) <= (r * 0.12) ** 2
    codes = torch.from_numpy(structure_from_outline(blob_mask.numpy(), tuple(card.spacing)))[None]
    conditions = torch.cat([unconditional(2, config.latent_resolution), condition_from_codes(codes.repeat(2, 1, 1, 1), config.latent_resolution)])
    out = sample_volumes(config, model.autoencoder, model.unet, conditions, 20260101, config.default_steps, torch.device("cpu"))
    k = len(config.image_channels)
    samples = torch.cat([out[:, :k], (out[:, k:] + 1.0) / 2.0], dim=1).numpy()
    write_mosaic(TARGET / "mosaic.png", samples, k, labels=config.labels)
    print(f"wrote {TARGET}: {(TARGET / WEIGHTS_FILE).stat().st_size / 1e6:.1f} MB weights")


if __name__ == "__main__":
    main()
