"""One step of a family on the backend Keras runs on, from shared weights and inputs, for
comparing the two engines (tests/test_jax.py).

    python -m tests.backend_step CASE DIR

On TensorFlow it builds the engine, writes its weights, the step's random inputs and the real
batch's indices to DIR/inputs.npz, steps, and writes the values and the weights after to
DIR/tensorflow.npz. On JAX it reads DIR/inputs.npz into its own engine, takes the same step and
writes DIR/jax.npz. Both optimizers are SGD, so that the step is the gradients themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from keras_ganime import checkpoints, engines
from keras_ganime import config as config_lib
from keras_ganime.data import load_images
from keras_ganime.families.base import Draws

SGD = ("g_optim.name=sgd", "d_optim.name=sgd", "g_optim.learning_rate=0.05",
       "d_optim.learning_rate=0.05", "train.batch_size=8")
# Case -> (experiment, settings): each family, and the DCGAN whose D update is gated and held
# (section 3.4: G twice, D skipped, L2). Two steps where a phase starts at the second.
CASES = {
    "dcgan": (None, ("model.image_size=16", "train.warmup_steps=0")),
    "dcgan-g2-dskip-l2": ("carpedm20-g2-dskip", ("model.image_size=16", "train.l2=0.001")),
    "began": (None, ('model.family="began"', "model.image_size=16", "model.filters=8",
                     "model.hidden=8")),
    "stylegan": ("stylegan-lite", ("model.image_size=16", 'model.channels="16,16,8"',
                                   "model.latent_dim=8", "model.w_dim=8")),
}


def config(case: str) -> config_lib.Config:
    experiment, settings = CASES[case]
    return config_lib.load(experiment, [*settings, *SGD])


def run(case: str, directory: Path) -> None:
    cfg = config(case)
    backend = engines.backend()
    engine = engines.create(cfg, load_images("", 64, cfg.model.image_size))
    named = checkpoints.variables_of(engine.family.checkpoint_objects())
    if backend == "tensorflow":
        draws = engine.family.draw(engine.rng, cfg.train.batch_size)
        indices = engine.sampler.indices(engine.step, engine.rng).numpy()
        inputs = {f"w/{k}": v.numpy() for k, v in named.items()}
        inputs.update({f"s/{k}": np.asarray(x) for k, x in draws.per_sample.items()})
        inputs.update({f"b/{k}": np.asarray(x) for k, x in draws.per_batch.items()})
        np.savez(directory / "inputs.npz", indices=indices, **inputs)
    else:
        with np.load(directory / "inputs.npz") as f:
            inputs = dict(f)
        checkpoints.assign(named, {k[2:]: v for k, v in inputs.items() if k[:2] == "w/"},
                           "inputs.npz")
        draws = Draws({k[2:]: v for k, v in inputs.items() if k[:2] == "s/"},
                      {k[2:]: v for k, v in inputs.items() if k[:2] == "b/"})
        indices = inputs["indices"]
    out = engine.step_with(draws, indices)
    result = {f"v/{k}": np.asarray(v) for k, v in out.items()}
    result.update({f"w/{k}": np.asarray(v.value) for k, v in named.items()})
    np.savez(directory / f"{backend}.npz", **result)


if __name__ == "__main__":
    run(sys.argv[1], Path(sys.argv[2]))
