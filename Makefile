# MedSynth: `make demo` and `make test` set everything up on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3.10 || command -v python3)
# Slicer 5.8's Python, for Testing/slicer/test_python39.py (pyenv's when there is no python3.9 on PATH).
PYTHON39 ?= $(shell (python3.9 -c 'import sys' 2>/dev/null && command -v python3.9) || ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.9*/bin/python3.9 2>/dev/null | tail -n 1)
VENV39 := .venv-py39
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# Test workers: one per core of the CI machine (2); each takes whole files (module fixtures are built once).
TEST_WORKERS ?= 2
DEMO_OUT ?= demo-output/set-$(shell date +%Y%m%d-%H%M%S)
# The torch build make setup installs: auto (nvidia-smi decides), cpu, cu126, cu128 or cu130.
MEDSYNTH_TORCH ?= auto

.PHONY: setup py39 demo test test-fast lint bench clean

setup: $(STAMP)

# A changed MEDSYNTH_TORCH sets the environment up again, with the build it names.
$(VENV)/.torch-$(MEDSYNTH_TORCH):
	@mkdir -p $(VENV) && rm -f $(VENV)/.torch-* && touch $@

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml $(VENV)/.torch-$(MEDSYNTH_TORCH)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	# torch first and pinned: the CUDA build the NVIDIA driver runs (nvidia-smi), else the CPU build;
	# MEDSYNTH_TORCH=cpu|cu126|cu128|cu130 overrides (MedSynthLib/enginesetup/torchpick.py, Slicer's table).
	# torch alone from PyTorch's index; its dependencies come with the requirements, from the usual index.
	@torch_args="$$($(PY) -m MedSynthLib.enginesetup.torchpick)" && $(PY) -m pip install --quiet $$torch_args
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	# deepbet for its skull-strip weights only: --no-deps keeps its GUI/CLI dependencies (unused) out of the environment.
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The Slicer side's tests under Python 3.9 (no Python 3.9 here: test_python39.py says so and skips that part).
py39: $(VENV39)/.setup-stamp

$(VENV39)/.setup-stamp: Testing/requirements-py39.txt
	@if [ -n "$(PYTHON39)" ]; then \
	  $(PYTHON39) -m venv $(VENV39) && $(VENV39)/bin/python -m pip install --quiet -r Testing/requirements-py39.txt && touch $@; \
	else echo "No Python 3.9 found (set PYTHON39=...): the Slicer 5.8 compatibility test will be skipped."; fi

demo: setup
	$(VENV)/bin/medsynth generate --model phantom -n 3 --seed 7 --channels t1,t1ce,t2,flair,seg,ct --out $(DEMO_OUT)

test: setup py39
	bash Testing/install-system-deps.sh
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

# The suite without the tests marked slow (real engines, training steps, rendered sets): a couple of minutes.
test-fast: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check engine MedSynthLib MedSynth Testing bench

bench: setup
	$(PY) bench/bench_export.py

clean:
	rm -rf $(VENV) $(VENV39) build *.egg-info
