#!/usr/bin/env bash
# Train a shipped model's GPU recipe in one call of the device tool, from the repository root:
#   run(command="bash bench/gpu_ship.sh", carry=[".whl"], timeout_s=600)
# ID and RECIPE choose the model (default: stylegan2d-phantom and its GPU recipe); BUDGET_S (default 500 s: installing
# the wheels takes part of the 600 s call) bounds training plus the 2D validity row; TINY=1 rehearses it on a CPU.
# bench/gpu_ship.py says what and why. Back in $OUT: the shipped folder ($ID/: weights, card, preview.png),
# timings.json (steps reached, timings, the validity rows), validity2d.json and validity2d.md, log.txt.
set -euo pipefail
source bench/gpu_env.sh
ID=${ID:-stylegan2d-phantom}
RECIPE=${RECIPE:-engine/medsynth_engine/models/stylegan2d/phantom_recipe.json}
extra=()
if [ "${TINY:-0}" = 1 ]; then extra+=(--tiny); fi
python3 bench/gpu_ship.py --id "$ID" --recipe "$RECIPE" --out "$OUT/run" --budget-s "${BUDGET_S:-500}" "${extra[@]}" 2>&1 | tee "$OUT/log.txt"
rm -rf "$OUT/run/work/data" "$OUT/run/validity-work"  # training and benchmark sets: rebuilt from their seeds; the run folders stay
