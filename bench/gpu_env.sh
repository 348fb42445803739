# Sourced by the lent-GPU scripts (gpu_recipe.sh, gpu_validity.sh), from the repository root: $OUT made, the wheels
# that travel in .whl/ and the engine itself installed into a private site folder (no index, no dependencies
# fetched: the machine cannot reach PyPI) and put on PYTHONPATH, the GPU recorded in $OUT/gpu.txt.
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
