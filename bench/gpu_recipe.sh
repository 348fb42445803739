#!/usr/bin/env bash
# The one call to make when a GPU machine is lent (device tool), from the repository root:
#   run(command="bash bench/gpu_recipe.sh", carry=[".whl"], timeout_s=600)
# The machine cannot reach PyPI: wheels the engine needs beyond what the machine has (monai, nibabel, SimpleITK,
# nilearn, safetensors, ...; see /work/.library/device/README.md for the download line) travel in .whl/.
# Everything lands in $OUT: model/ (weights, card, samples/ mosaics), timings.json, validity.json, log.txt.
set -euo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
SITE=/tmp/medsynth-site
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
fi
# The engine itself, installed so its model families' entry points exist (no dependencies fetched).
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" . 2>&1 | tail -2
export PYTHONPATH="$SITE:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt" || true
python3 bench/gpu_recipe.py --out "$OUT/run" --budget-s "${BUDGET_S:-540}" "$@" 2>&1 | tee "$OUT/log.txt"
