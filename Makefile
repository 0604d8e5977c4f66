# Every target sets itself up: a fresh clone needs only `make reproduce` or `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Notebooks run in this order; each reads what the previous one wrote.
NOTEBOOKS := 01-preprocess 02-train 03-evaluate 04-realtime
# Run after the published model is shipped: it measures that model in noise and calibrates its gate.
AFTER_PUBLISH := 05-robustness
# Local copies of mitdb 1.0.0 and nstdb 1.0.0 to use instead of downloading (verified, never modified).
MITDB_DIR ?=
export MITDB_DIR
NSTDB_DIR ?=
export NSTDB_DIR
# The model `make serve` uses (empty: the published model shipped in ecg_utils/resources/).
MODEL ?=
# The Jupyter kernel of .venv, which the notebooks name; `make lab` serves them on LAB_PORT (LAB_TOKEN: empty, Jupyter
# makes one and prints it).
KERNEL := ecg-cnn-lstm
KERNEL_SPEC := $(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json
LAB_PORT ?= 8888
LAB_TOKEN ?=

## help: list the targets
.PHONY: help
help:
	@awk 'BEGIN {FS = ": "} /^## / {sub(/^## /, ""); split($$0, a, ": "); printf "  %-10s %s\n", a[1], substr($$0, length(a[1]) + 3)}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(KERNEL_SPEC): $(VENV)/.installed
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "$(KERNEL) (.venv)" >/dev/null

## setup: create .venv, install requirements.txt (and ecg_utils, editable), register its Jupyter kernel
.PHONY: setup
setup: $(VENV)/.installed $(KERNEL_SPEC)

## setup-inference: create .venv-inference with only what classifying needs (ONNX Runtime, no PyTorch, Jupyter or test tools): pip install ".[inference]"
.PHONY: setup-inference
setup-inference:
	test -x .venv-inference/bin/python || $(PYTHON) -m venv .venv-inference
	.venv-inference/bin/python -m pip install --quiet --disable-pip-version-check ".[inference]"

## data: download mitdb 1.0.0 and nstdb 1.0.0 from PhysioNet and verify their checksums (MITDB_DIR=, NSTDB_DIR= verify local copies instead)
.PHONY: data
data: setup
	$(PY) -m ecg_utils.data.mitdb
	$(PY) -m ecg_utils.data.nstdb

## reproduce: run every notebook in order with papermill and the full parameters in params/ (shipping the published model before 05), then README's results tables
.PHONY: reproduce
reproduce: data
	@mkdir -p reports/notebooks
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		$(PY) -m papermill --cwd notebooks -f params/$$nb.yaml notebooks/$$nb.ipynb reports/notebooks/$$nb.ipynb; \
	done
	$(PY) -m ecg_utils.model.publish
	@for nb in $(AFTER_PUBLISH); do \
		echo "== $$nb"; \
		$(PY) -m papermill --cwd notebooks -f params/$$nb.yaml notebooks/$$nb.ipynb reports/notebooks/$$nb.ipynb; \
	done
	$(PY) -m ecg_utils.evaluate.report

## ablation: train every configuration of params/ablation.yaml once per DS1 fold and seed (2 processes, 1 thread each; finished runs are kept) and score them on the folds: reports/ablation.json; how closely each one's running RR follows the sinus cycle on DS1: reports/rhythm_tracking.json; then README's tables
.PHONY: ablation
ablation: data
	$(PY) -m ecg_utils.evaluate.ablation
	$(PY) -m ecg_utils.evaluate.rhythm
	$(PY) -m ecg_utils.evaluate.report

## adaptation: each fold model of the seed ablation adapted to each held-out DS1 record's own unlabelled beats, with every method of params/adaptation.yaml (trains the ablation's runs it needs): reports/adaptation.json, then README's tables
.PHONY: adaptation
adaptation: data
	$(PY) -m ecg_utils.evaluate.adaptation
	$(PY) -m ecg_utils.evaluate.report

## test: unit tests, integration tests on the real database, and nbval over every notebook
.PHONY: test
test: data
	$(PY) -m pytest --nbval-lax tests notebooks

## lab: open the notebooks in JupyterLab with the repo's kernel (127.0.0.1:LAB_PORT, the token is printed)
.PHONY: lab
lab: setup
	cd notebooks && ../$(VENV)/bin/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) \
		--ServerApp.port_retries=0 $(if $(LAB_TOKEN),--IdentityProvider.token=$(LAB_TOKEN)) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

## serve: start the web service (127.0.0.1:8000) and the app (127.0.0.1:8501) with the published model (MODEL=path for another)
.PHONY: serve
serve: setup
	@ECG_MODEL="$(MODEL)" $(PY) -m ecg_utils.serve.service --host 127.0.0.1 --port 8000 & api=$$!; \
	ECG_API_URL=http://127.0.0.1:8000 $(PY) -m ecg_utils.serve.launch --port 8501 & app=$$!; \
	trap 'kill $$api $$app 2>/dev/null; wait' EXIT INT TERM; \
	wait

## bench: print the speed figures (data pipeline, models, R-peak detector, inference backends, streaming, a 24-hour record, the web service under load, an archive on 1 and 2 workers and Dask, training on 1 and 2 processes), each beside its target
.PHONY: bench
bench: data
	$(PY) -m ecg_utils.bench

## lint: ruff over the package and tests
.PHONY: lint
lint: setup
	$(VENV)/bin/ruff check ecg_utils tests

## clean: delete generated datasets and training runs (keeps the raw records, reports/ and .venv)
.PHONY: clean
clean:
	rm -rf data/processed data/smoke runs
