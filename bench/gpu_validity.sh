#!/usr/bin/env bash
# The validity benchmark's full table on a lent GPU, in one call (device tool), from the repository root:
#   run(command="bash bench/gpu_validity.sh", carry=[".whl"], timeout_s=600)
# Why: on this project's 2-core CPU one 1,000-step TSTR training takes 10-17 minutes, and the spread between
# trainings at 1,000 steps (whole-tumour Dice 0.61-0.79 for real sets of one pool) asks for 2,000 steps; the 15+
# trainings of the table are hours there and minutes on one large GPU. Three processes (one per seed) share the
# GPU; the last call reads every training from the score cache and prints the table. STEPS and GENERATORS
# override; QUICK=1 rehearses the whole path on a CPU in a few minutes (the smoke protocol).
# Everything lands in $OUT: validity.json, table.md, the per-seed logs and the score cache (tstr-cache/).
set -euo pipefail
source bench/gpu_env.sh
DEVICE=$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
COMMON=(--work "$OUT/work" --generators "${GENERATORS:-phantom,l2i3d-phantom}" --device "$DEVICE")
if [ "${QUICK:-0}" = 1 ]; then COMMON+=(--quick); else COMMON+=(--steps "${STEPS:-2000}"); fi
start=$(date +%s)
# The sets first, in one process (parallel processes would race on the same set folders).
python3 bench/bench_validity.py "${COMMON[@]}" --seeds 1 --evaluate-only 2>&1 | tee "$OUT/evaluate.log"
if [ "${QUICK:-0}" = 1 ]; then seeds=0; else seeds="0 1 2"; fi
for k in $seeds; do
  python3 bench/bench_validity.py "${COMMON[@]}" --seeds 1 --seed-base "$k" --tstr-only >"$OUT/seed$k.log" 2>&1 &
done
wait
nseeds=$(echo $seeds | wc -w)
python3 bench/bench_validity.py "${COMMON[@]}" --seeds "$nseeds" --json "$OUT/validity.json" 2>&1 | tee "$OUT/table.md"
cp -r "$OUT/work/tstr-cache" "$OUT/tstr-cache"
rm -rf "$OUT/work"
echo "wall $(( $(date +%s) - start )) s on $DEVICE" | tee -a "$OUT/table.md"
