"""Two steps of a family on the backend Keras runs on, from shared weights and inputs, for
comparing the two engines (tests/test_jax.py).

    python -m tests.backend_step CASE DIR

On TensorFlow it builds the engine, writes its weights, both steps' random inputs and real
batches' indices to DIR/inputs.npz, steps, and writes each step's values and the weights after
to DIR/tensorflow.npz. On JAX it reads DIR/inputs.npz into its own engine, takes the same steps
and writes DIR/jax.npz. Both optimizers are SGD, so that a step is the gradients themselves; the
second step is the first where the DCGAN's G starts (`train.warmup_steps = 1`) and where the D
skip's gate reads the values of a step before.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from keras_ganime import config as config_lib
from keras_ganime import engines
from keras_ganime.data import default_dataset, load_images, read_labels_of
from keras_ganime.data.synthetic import ATTRIBUTES
from keras_ganime.engines import checkpoints, common
from keras_ganime.families.base import Draws

STEPS = 2
SGD = ("g_optim.name=sgd", "d_optim.name=sgd", "g_optim.learning_rate=0.05",
       "d_optim.learning_rate=0.05", "train.batch_size=8")
# Case -> (experiment, settings): each family, and the DCGAN whose D update is gated and held
# (section 3.4: G twice, D skipped, L2).
# Every augmentation, p adapted after each step by 0.1 (batch 8 / 80 images): the second step
# augments at the p the first moved.
AUGMENTED = ('augment.policy="color,translation,cutout"', "augment.adaptive=true",
             "augment.p=0.5", "augment.interval=1", "augment.speed_images=80",
             "g_optim.learning_rate=0.01", "d_optim.learning_rate=0.01")
# Hair and eyes conditioned, as the built-in faces have them (their labels: `faces`). At lr
# 0.05 the projection term's first step alone took D's outputs on the reals to within float32's
# reach of 1, where the clipped BCE of either backend's rounding differed by 0.3%.
CONDITIONAL = ('model.condition="hair,eyes"', "model.condition_values='" + json.dumps(
    {name: ATTRIBUTES[name] for name in ("hair", "eyes")}) + "'",
    "g_optim.learning_rate=0.01", "d_optim.learning_rate=0.01")
CASES = {
    "dcgan": (None, ("model.image_size=16", "train.warmup_steps=1")),
    "dcgan-augmented": (None, ("model.image_size=16", "train.warmup_steps=1", *AUGMENTED)),
    "dcgan-conditional": (None, ("model.image_size=16", "train.warmup_steps=1",
                                 *CONDITIONAL)),
    "dcgan-g2-dskip-l2": ("carpedm20-g2-dskip", ("model.image_size=16", "train.l2=0.001")),
    "began": (None, ('model.family="began"', "model.image_size=16", "model.filters=8",
                     "model.hidden=8")),
    "stylegan": ("stylegan-lite", ("model.image_size=16", 'model.channels="16,16,8"',
                                   "model.latent_dim=8", "model.w_dim=8")),
    "stylegan-augmented": ("stylegan-lite", ("model.image_size=16", 'model.channels="16,16,8"',
                                             "model.latent_dim=8", "model.w_dim=8",
                                             *AUGMENTED)),
}


def config(case: str) -> config_lib.Config:
    experiment, settings = CASES[case]
    return config_lib.load(experiment, [*SGD, *settings])


def faces(cfg: config_lib.Config) -> tuple[np.ndarray, np.ndarray | None]:
    """The 64 built-in faces a case runs on, and a conditional case's labels of them."""
    images = load_images("", 64, cfg.model.image_size)
    if not cfg.model.conditions():
        return images, None
    path = default_dataset(64, cfg.model.image_size)
    return images, read_labels_of(path, cfg.model.conditions())[0]


def run(case: str, directory: Path) -> None:
    cfg = config(case)
    backend = common.backend()
    engine = engines.create(cfg, *faces(cfg))
    named = checkpoints.variables_of(engine.family.checkpoint_objects())
    if backend == "tensorflow":
        inputs = {f"w/{k}": v.numpy() for k, v in named.items()}
        for step in range(STEPS):
            draws = engine.family.draw(engine.rng, cfg.train.batch_size)
            inputs[f"{step}/indices"] = engine.sampler.indices(step, engine.rng).numpy()
            inputs.update({f"{step}/s/{k}": np.asarray(x) for k, x in draws.per_sample.items()})
            inputs.update({f"{step}/b/{k}": np.asarray(x) for k, x in draws.per_batch.items()})
        np.savez(directory / "inputs.npz", **inputs)
    else:
        with np.load(directory / "inputs.npz") as f:
            inputs = dict(f)
        checkpoints.assign(named, {k[2:]: v for k, v in inputs.items() if k[:2] == "w/"},
                           "inputs.npz")
    result = {}
    for step in range(STEPS):
        part = {k.removeprefix(f"{step}/"): v for k, v in inputs.items()
                if k.startswith(f"{step}/")}
        draws = Draws({k[2:]: v for k, v in part.items() if k[:2] == "s/"},
                      {k[2:]: v for k, v in part.items() if k[:2] == "b/"})
        out = engine.step_with(draws, part["indices"])
        result.update({f"v{step}/{k}": np.asarray(v) for k, v in out.items()})
    result.update({f"w/{k}": np.asarray(v.value) for k, v in named.items()})
    np.savez(directory / f"{backend}.npz", **result)


if __name__ == "__main__":
    run(sys.argv[1], Path(sys.argv[2]))
