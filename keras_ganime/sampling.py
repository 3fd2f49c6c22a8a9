"""A family's generator for sampling: opened from a run's checkpoint, its latents, its images.

The library half of `generate`, used by the loop, evaluate, generate and the tests. TensorFlow is
imported inside the functions, so that the command lines that import this module check their
arguments first. A checkpoint of either engine's format is read on the backend that wrote it; the
JAX engine's archives (`checkpoints.py`) on either.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from keras_ganime.config import Config

if TYPE_CHECKING:
    import keras

    from keras_ganime.families.base import Family

BATCH = 256  # latent vectors per generator call: bounds memory for a large n


class SamplingError(Exception):
    """A generator that cannot be opened; its message is one line naming the file."""


def build(cfg: Config) -> Family:
    """The run's family with Keras's own layers in float32, as a sampler needs it."""
    from keras_ganime.engines import build_family

    return build_family(cfg)


def latest_checkpoint(run: Path) -> str:
    """The run's newest checkpoint that reads completely (checkpoints.newest_readable)."""
    from keras_ganime.checkpoints import newest_readable
    from keras_ganime.runs import RunError

    try:
        latest = newest_readable(run / "checkpoints")
    except RunError as e:
        raise SamplingError(str(e)) from None
    if latest is None:
        raise SamplingError(f"{run}: the checkpoint index names no checkpoint files")
    return latest


def restore(family: Family, checkpoint: str) -> None:
    """The family's sampling networks from a checkpoint (the rest of it is not wanted here)."""
    from keras_ganime import checkpoints, engines

    if checkpoint.endswith(checkpoints.NPZ):
        arrays, _ = checkpoints.read_npz(checkpoint)
        try:
            checkpoints.assign(checkpoints.variables_of(family.sampler_objects()), arrays,
                               checkpoint)
        except ValueError as e:
            raise SamplingError(f"{e}: it does not fit the {family.spec.name} networks that "
                                f"config.toml describes") from None
        return
    if engines.backend() != "tensorflow":
        raise SamplingError(f"{checkpoint}: a TensorFlow checkpoint, which only the "
                            f"TensorFlow backend reads; run with KERAS_BACKEND=tensorflow")
    import tensorflow as tf

    try:
        status = tf.train.Checkpoint(**family.sampler_objects()).restore(checkpoint)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError):
        raise SamplingError(f"{checkpoint}: does not fit the {family.spec.name} networks that "
                            f"config.toml describes") from None


def latents(family: Family, seed: int, n: int) -> np.ndarray:
    """n latents drawn as in training, the same for the same seed and backend, in the sampler's
    shape."""
    from keras_ganime.engines import generator

    return np.asarray(family.latents(generator(seed), n))


def render(model: keras.Model, z: np.ndarray) -> np.ndarray:
    """Latents -> (n, size, size, 3) uint8 images, with BatchNorm in inference mode."""
    import keras

    from keras_ganime.batches import to_uint8

    z = z.astype(np.float32)
    # On JAX a model called eagerly dispatches op by op; predict_on_batch compiles it.
    call = model.predict_on_batch if keras.backend.backend() == "jax" else (
        lambda x: model(x, training=False))
    return np.concatenate([to_uint8(call(z[i:i + BATCH])) for i in range(0, len(z), BATCH)])
