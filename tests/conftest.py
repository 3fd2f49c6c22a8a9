"""Imports keras_ganime before any test module imports TensorFlow: its environment defaults
(oneDNN on, quiet C++ logs) only take effect if they are set before TensorFlow loads, and a test
module that imports keras first would otherwise run every test at half the speed."""

import keras_ganime  # noqa: F401
