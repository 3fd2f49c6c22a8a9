# Set-up is `.venv` with the package installed in editable mode; every target below needs it and
# redoes it only when setup.cfg or pyproject.toml changed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Overrides for the experiment targets: make exp-batch16 STEPS=300 DATA=faces.h5 SEED=1
STEPS ?= 100000
DATA ?=
SEED ?= 0
RUN = $(PY) -m keras_ganime.train --steps $(STEPS) --seed $(SEED) $(if $(DATA),--data $(DATA))

# make train: the reference on the built-in faces, short enough for a laptop CPU (see README).
TRAIN_STEPS ?= 500

EXPERIMENTS := batch16 batch32 batch128 flip dlr upsample adamax sgd

.PHONY: venv test test-slow lint train exp-default exp-batch64 exp-all $(EXPERIMENTS:%=exp-%)

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .

train: $(STAMP)
	$(PY) -m keras_ganime.train --steps $(TRAIN_STEPS) --set output.sample_every=50

exp-default exp-batch64: $(STAMP)
	$(RUN) --config experiments/default.toml

$(EXPERIMENTS:%=exp-%): exp-%: $(STAMP)
	$(RUN) --config experiments/$*.toml

exp-all: exp-default $(EXPERIMENTS:%=exp-%)
