"""What several test modules share: the tiny reference configuration, random images,
snapshots of a model's weights, and the end state of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_ganime import config as config_lib
from keras_ganime.data import write_h5
from keras_ganime.runs import RunDir

# loss.csv's columns that a rerun of the same steps cannot repeat: they time the machine.
TIMED = ("images_per_s", "wall_s")


# Every augmentation, its p adapted every 2 steps by 0.16 at batch 8 (8 x 2 / 100): what a
# resumed run must continue bit for bit, its draws, p and the interval's signs.
AUGMENTED = {"augment.policy": "color,translation,cutout", "augment.adaptive": True,
             "augment.p": 0.5, "augment.interval": 2, "augment.speed_images": 100}


# Conditioned on hair (red, blue, green: image i's the (i mod 3)-th, `labelled_h5`): the fakes'
# labels drawn, the reals' gathered, both resumed with the rest.
CONDITIONAL = {"model.condition": "hair"}


def labelled_h5(path: Path, images: np.ndarray) -> Path:
    """A prepared file of these images with hair labels (CONDITIONAL)."""
    n = len(images)
    write_h5(path, images, np.zeros(n), [], ["x"] * n,
             {"hair": (np.arange(n) % 3, ("red", "blue", "green"))})
    return path


def as_set(values: dict[str, object]) -> tuple[str, ...]:
    """Settings as the command line's --set takes them: key=value, a string in quotes."""
    def toml(v: object) -> str:
        return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)

    return tuple(f"{k}={toml(v)}" for k, v in values.items())


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


def checkpoint_values(run: RunDir) -> dict[str, np.ndarray]:
    """Every tensor of the run's latest checkpoint but the count of saves (which a resumed run
    has made more or fewer of)."""
    reader = tf.train.load_checkpoint(str(run.checkpoints))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "save_counter" not in k and k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def losses(run: RunDir) -> list[tuple]:
    """loss.csv's rows, every column but the timed ones, in the file's order (step first)."""
    return [tuple(v for k, v in r.items() if k not in TIMED) for r in run.read_losses()]


def assert_same_end(a: RunDir, b: RunDir) -> None:
    """Both runs' latest checkpoints equal bit for bit, and so do their loss.csv rows."""
    va, vb = checkpoint_values(a), checkpoint_values(b)
    assert va.keys() == vb.keys() and len(va) > 50  # both models, both optimizers, rng, step
    for key in va:
        np.testing.assert_array_equal(va[key], vb[key], err_msg=key)
    assert [list(r) for r in a.read_losses()] == [list(r) for r in b.read_losses()]
    np.testing.assert_array_equal(np.array(losses(a)), np.array(losses(b)))  # NaN == NaN here
