#!/usr/bin/env bash
# The one call to make when a GPU machine is lent (device tool), from the repository root:
#   run(command="bash bench/gpu_recipe.sh", carry=[".whl"], timeout_s=600)
# The machine cannot reach PyPI: wheels the engine needs beyond what the machine has (monai, nibabel, SimpleITK,
# nilearn, safetensors, ...; see /work/.library/device/README.md for the download line) travel in .whl/.
# Everything lands in $OUT: model/ (weights, card, samples/ mosaics), timings.json, validity.json, log.txt.
set -euo pipefail
source bench/gpu_env.sh
python3 bench/gpu_recipe.py --out "$OUT/run" --budget-s "${BUDGET_S:-540}" "$@" 2>&1 | tee "$OUT/log.txt"
