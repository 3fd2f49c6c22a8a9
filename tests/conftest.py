"""Imports keras_ganime before any test module imports TensorFlow: its environment defaults
(oneDNN on, quiet C++ logs) only take effect if they are set before TensorFlow loads, and a test
module that imports keras first would otherwise run every test at half the speed.

JAX's compiled programs are kept on disk (build/jax-cache) for the tests' processes and the
processes they start: a resumed run, each life of a SIGKILLed run and the engine of each test
compile the same steps again, which JAX then reads back instead. The cache is keyed by the
program, its compile options and JAX's version, so a change to the code compiles anew."""

import os
from pathlib import Path

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / "build" / "jax-cache"))

import keras_ganime  # noqa: F401
