"""keras_ganime: forcecore's anime-face DCGAN and the "GANime Faces" experiments in Keras 3."""

import os

# Before TensorFlow is first imported: Keras on TensorFlow, and no wall of C++ start-up logs.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow leaves oneDNN off on CPUs without AVX512-VNNI or AMX, where its Eigen convolutions
# were measured here at about half oneDNN's speed for these models (docs/performance.md).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
