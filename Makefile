# Set-up is `.venv` with the package installed in editable mode; every target below needs it and
# redoes it only when setup.cfg or pyproject.toml changed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The package's extras to install: make test EXTRAS=test,gpu on a machine with an NVIDIA GPU
# (TensorFlow's CUDA wheels). A change of EXTRAS needs `rm .venv/.installed` to take effect.
EXTRAS ?= test,jax
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The real anime faces that the encoder and the metrics' sanity check use (beside the checkout).
FACES ?= ../shared/data/anime-faces-64

# Optional overrides of the experiment targets: make exp-batch16 STEPS=300 DATA=faces.h5 SEED=1
RUN = $(PY) -m keras_ganime.train $(if $(STEPS),--steps $(STEPS)) $(if $(SEED),--seed $(SEED)) \
	$(if $(DATA),--data $(DATA))

# One target per experiment file: experiments/NAME.toml is `make exp-NAME`; train.toml is `make
# train`, and exp-all runs the others, the paper's, one after the other.
EXPERIMENTS := $(filter-out train,$(basename $(notdir $(wildcard experiments/*.toml))))

.PHONY: venv test test-dist test-slow test-long test-torture test-jax gpu-check gpu-wheels lint bench soak report train encoder \
	check-metrics small-data data exp-batch64 exp-all $(EXPERIMENTS:%=exp-%)

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

# The tests over JOBS processes (pytest-xdist): most of them keep about one core busy, so two
# fill two cores. `make test` gives each process whole test files (a module's fixtures made
# once); test-long and test-jax, a few long tests, share them out, a process that finishes
# its share taking from the other's (test-jax names the file of the longest first). JOBS=1:
# in this process, -s and pdb at hand.
# Each process's TensorFlow computes an op on one thread (TF_NUM_INTRAOP_THREADS): two processes
# of two threads each ran carpedm20's step at 0.57 s, of one thread at 0.48 (2-core AMD EPYC
# with AVX-512, 2026-12-07, the two processes timing 30 steps side by side).
JOBS ?= 2
XDIST = $(if $(filter-out 1,$(JOBS)),-n $(JOBS) --dist $(1))
PYTEST = $(if $(filter-out 1,$(JOBS)),TF_NUM_INTRAOP_THREADS=1) $(PY) -m pytest
test: $(STAMP)
	$(PYTEST) $(call XDIST,loadfile)

# Tests behind markers (setup.cfg), left out of `make test`: tf.distribute in processes of their
# own (two replicas against one device, a 2-worker cluster on this machine), which CI runs beside
# the torture test, where a core is free; InceptionV3 from a local weights file.
test-dist: $(STAMP)
	$(PY) -m pytest -m distribute -s tests/test_distribute.py

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

test-long: $(STAMP)
	$(PYTEST) -m long $(call XDIST,worksteal)

test-integration: $(STAMP)
	$(PYTEST) -m integration $(call XDIST,worksteal)

# What CI runs on TensorFlow beyond `make test`: the tests of test-long, test-torture,
# test-dist and test-integration in one pool of JOBS processes, a process that finishes its
# share taking from the other's (the torture test's file first, the longest test).
test-marked: $(STAMP)
	$(PYTEST) -m "long or torture or distribute or integration" $(call XDIST,worksteal) \
		tests/test_torture.py tests/test_learning.py tests/test_distribute.py \
		tests/test_stylegan.py tests/test_install.py tests/test_resume.py tests/test_toy_family.py \
		tests/test_augment.py tests/test_small_data.py

# One run SIGKILLed at 20 moments (inside checkpoint, CSV and plot writes), resumed after each,
# ends bit for bit as the run in one go (tests/test_torture.py); -s prints the moments.
test-torture: $(STAMP)
	$(PY) -m pytest -m torture -s tests/test_torture.py

# The JAX engine against TensorFlow's, and each family's learning test and a SIGKILLed run on
# Keras's JAX backend (tests marked jax; setup.cfg).
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PYTEST) -m jax $(call XDIST,worksteal) tests/test_learning.py \
		tests/test_jax.py

# The GPU check (keras_ganime/gpu_check.py) in its CPU version, as CI runs it; its GPU version
# runs on a lent GPU machine with the wheels of `make gpu-wheels` (the module says how).
gpu-check: $(STAMP)
	rm -rf build/gpu-check
	KERAS_BACKEND=jax $(PY) -m keras_ganime.gpu_check --tiny --out build/gpu-check

# Keras and the two packages it needs that the GPU machines lack, for their Python 3.12.
gpu-wheels: $(STAMP)
	$(PY) -m pip download --quiet --no-deps --only-binary :all: --python-version 3.12 \
		--platform manylinux_2_28_x86_64 --dest build/wheels \
		keras==$(shell $(PY) -c "import keras; print(keras.__version__)") namex optree

# The paper's dataset, nagadomi's animeface-character-dataset, downloaded, checked and prepared
# as data/animeface.h5 (keras_ganime/data/fetch.py).
data: $(STAMP)
	$(PY) -m keras_ganime.data fetch animeface

# Retrains the anime encoder into keras_ganime/evaluation/weights/ (18 min on 2 busy cores).
encoder: $(STAMP)
	$(PY) -m keras_ganime.encoder --data $(FACES)

# FID, KID and SWD must rise with the strength of every disturbance (keras_ganime/evaluation/sanity.py).
check-metrics: $(STAMP)
	$(PY) -m keras_ganime.sanity --data $(FACES)

# Training on a few hundred faces, with and without augmentation, scored against held-out faces
# (keras_ganime/small_data.py): five runs of 5,000 steps, about two hours on two cores with
# AVX-512; run again, it resumes where it stopped. make small-data SIZES="300 1000" STEPS=2000
small-data: $(STAMP)
	$(PY) -m keras_ganime.small_data --faces $(FACES) --out small-data \
		$(if $(SIZES),--sizes $(SIZES)) $(if $(STEPS),--steps $(STEPS))

# make bench BENCH="--batches 64 --baseline ../pre-split" (a git worktree of an earlier commit)
bench: $(STAMP)
	$(PY) -m keras_ganime.bench $(BENCH)

# A long run holds: memory flat and speed steady over 10,000 steps at 32 px (bench.soak).
soak: $(STAMP)
	$(PY) -m keras_ganime.bench --soak 10000

report: $(STAMP)
	$(PY) -m keras_ganime.report --runs runs --out report

# ruff, and the package's layers and no import cycles (setup.cfg's [importlinter] contracts).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

train: $(STAMP)
	$(RUN) --config train

$(EXPERIMENTS:%=exp-%): exp-%: $(STAMP)
	$(RUN) --config $*

exp-batch64: exp-default

exp-all: $(EXPERIMENTS:%=exp-%)
