"""Real batches for TensorFlow's training step, drawn on the device from uint8 images held
there, and the two conversions of images that both engines use."""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from keras_ganime.data import check_enough


def to_float(images: Any) -> Any:
    """uint8 [0, 255] -> float32 [-1, 1], a tensor of Keras's backend."""
    return ops.cast(images, "float32") / 127.5 - 1.0


def to_uint8(images: Any) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounded."""
    pixels = np.round((np.asarray(images, np.float32) + 1.0) * 127.5)
    return np.clip(pixels, 0, 255).astype(np.uint8)


class Sampler:
    """`uniform` draws with replacement, as the reference; `epoch` walks a fresh permutation each
    epoch and drops the last partial batch. Both are functions of the step and the random
    generator only, so a resumed run draws the same batches as an uninterrupted one.
    """

    def __init__(self, images: np.ndarray, batch_size: int, sampling: str, seed: int) -> None:
        import tensorflow as tf  # this sampler is TensorFlow's engine's (jax_engine has its own)

        check_enough(images, batch_size)
        self.images = tf.constant(images, tf.uint8)
        self.n = len(images)
        self.batch_size = batch_size
        self.sampling = sampling
        self.seed = seed

    def indices(self, step: Any, rng: Any) -> Any:
        import tensorflow as tf

        if self.sampling == "uniform":
            return rng.uniform([self.batch_size], 0, self.n, dtype=tf.int64)
        per_epoch = self.n // self.batch_size
        step = tf.cast(step, tf.int64)
        seed = tf.stack([tf.constant(self.seed, tf.int64), step // per_epoch])
        perm = tf.random.experimental.stateless_shuffle(tf.range(self.n, dtype=tf.int64), seed)
        first = (step % per_epoch) * self.batch_size
        return perm[first:first + self.batch_size]

    def batch(self, indices: Any) -> Any:
        """A float32 batch in [-1, 1], cast and scaled after the gather, on the device."""
        import tensorflow as tf

        return to_float(tf.gather(self.images, indices))
