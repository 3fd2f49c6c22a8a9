"""The two conversions of images that both engines, sampling and the benchmark use."""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops


def to_float(images: Any) -> Any:
    """uint8 [0, 255] -> float32 [-1, 1], a tensor of Keras's backend."""
    return ops.cast(images, "float32") / 127.5 - 1.0


def to_uint8(images: Any) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounded."""
    pixels = np.round((np.asarray(images, np.float32) + 1.0) * 127.5)
    return np.clip(pixels, 0, 255).astype(np.uint8)
