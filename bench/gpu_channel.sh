#!/usr/bin/env bash
# Issue 22's GPU run in one call of the device tool, from the repository root:
#   run(command="bash bench/gpu_channel.sh", carry=[".whl"], timeout_s=600)
# seg-phantom continued on domain-randomised images at a GPU batch within BUDGET_S (default 500 s: installing the wheels takes part of the 600 s call), then the shift
# benchmark on the shipped model and the candidate (bench/gpu_channel.py says what and why). TINY=1 rehearses it on a
# CPU. Everything lands in $OUT: model/ (weights, card, mosaics), shift.json (rows and verdicts), timings.json, logs.
set -euo pipefail
source bench/gpu_env.sh
extra=()
if [ "${TINY:-0}" = 1 ]; then extra+=(--tiny); fi
python3 bench/gpu_channel.py --out "$OUT/run" --budget-s "${BUDGET_S:-500}" "${extra[@]}" 2>&1 | tee "$OUT/log.txt"
rm -rf "$OUT/run/pool" "$OUT/run"/pool-part*  # the pool is rebuilt from its seeds; only the model and numbers come back
