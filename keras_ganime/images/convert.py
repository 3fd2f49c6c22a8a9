"""Images between their forms: uint8 pixels, floats in [-1, 1], and a generator's output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from keras import ops

if TYPE_CHECKING:
    import keras

BATCH = 256  # latent vectors per generator call: bounds memory for a large n


def to_float(images: Any) -> Any:
    """uint8 [0, 255] -> float32 [-1, 1], a tensor of Keras's backend."""
    return ops.cast(images, "float32") / 127.5 - 1.0


def to_uint8(images: Any) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounded."""
    pixels = np.round((np.asarray(images, np.float32) + 1.0) * 127.5)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def render(model: keras.Model, z: np.ndarray) -> np.ndarray:
    """Latents -> (n, size, size, 3) uint8 images, with BatchNorm in inference mode."""
    import keras

    z = z.astype(np.float32)
    # On JAX a model called eagerly dispatches op by op; predict_on_batch compiles it.
    call = model.predict_on_batch if keras.backend.backend() == "jax" else (
        lambda x: model(x, training=False))
    return np.concatenate([to_uint8(call(z[i:i + BATCH])) for i in range(0, len(z), BATCH)])
