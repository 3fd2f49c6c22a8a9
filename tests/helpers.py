"""What several test modules share: the tiny reference configuration, random images, and
snapshots of a model's weights."""

from __future__ import annotations

import numpy as np

from keras_ganime import config as config_lib


def tiny(**overrides) -> config_lib.Config:
    """A 16x16 model with batch 8: the reference code path at test speed."""
    settings = {"model.image_size": 16, "model.latent_dim": 8, "train.batch_size": 8,
                "train.warmup_steps": 2, "train.steps": 6, "output.log_every": 1,
                "output.sample_every": 3, "output.checkpoint_every": 3, **overrides}
    cfg = config_lib.Config()
    for key, value in settings.items():
        config_lib.set_value(cfg, key, value)
    return cfg.validate()


def random_images(n: int = 40, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def snapshot(model) -> list[np.ndarray]:
    return [v.numpy().copy() for v in model.weights]


def changed(before, model) -> list[bool]:
    return [not np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights)]
