"""The training engines, one per Keras backend, as Keras keeps its backends: `tensorflow.py`
(one `tf.function` step, tf.distribute, TensorFlow checkpoints) and `jax.py` (one `jax.jit` step
over the variables' values, backend-neutral NumPy checkpoints), with what they share in
`common.py`. Both run the same family code (`families/`) and give the loop
(`training/loop.py`) the surface of `Engine` (`protocol.py`). The backend is Keras's
(`KERAS_BACKEND`, or `--backend` before Keras loads); `create`, the one place that imports a
backend's engine, imports neither TensorFlow nor JAX until it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from keras_ganime.config import Config
from keras_ganime.engines.common import backend

if TYPE_CHECKING:
    from keras_ganime.engines.protocol import Engine
    from keras_ganime.families.base import Family


def create(cfg: Config, images: np.ndarray, labels: np.ndarray | None = None) -> Engine:
    """The engine of Keras's backend for `cfg`, on these uint8 images, and for a conditional
    run their labels ((N, attributes) int32, data.run_labels)."""
    if backend() == "jax":
        from keras_ganime.engines.jax import JaxEngine

        return JaxEngine(cfg, images, labels)
    from keras_ganime.engines.tensorflow import Engine

    return Engine(cfg, images, labels)


def generator(seed: int) -> Any:
    """The backend's random generator from a seed, with `uniform` and `normal` (the families'
    draws): `tf.random.Generator`, or a JAX key's (engines/jax.py's KeyRng)."""
    if backend() == "jax":
        from keras_ganime.engines import jax as jax_engine

        return jax_engine.generator(seed)
    import tensorflow as tf

    return tf.random.Generator.from_seed(seed)


def latents(family: Family, seed: int, n: int) -> np.ndarray:
    """n latents drawn as in training, the same for the same seed and backend, in the sampler's
    shape."""
    return np.asarray(family.latents(generator(seed), n))
