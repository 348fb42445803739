# MedSynth: `make demo` and `make test` set everything up on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3.10 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
DEMO_OUT ?= demo-output/set-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	# torch first and pinned: a CPU build where that is what is on offer, never an unasked-for CUDA download.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/medsynth generate --model phantom -n 3 --seed 7 --channels t1,t1ce,t2,flair,seg,ct --out $(DEMO_OUT)

test: setup
	bash Testing/install-system-deps.sh
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check engine MedSynthLib MedSynth Testing bench

bench: setup
	$(PY) bench/bench_export.py

clean:
	rm -rf $(VENV) build *.egg-info
