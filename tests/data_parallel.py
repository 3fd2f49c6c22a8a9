"""One step of each family on one device and under data parallelism over two, from the same
weights and inputs, on Keras's JAX backend (tests/test_jax.py):

    XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \\
        python -m tests.data_parallel

prints, as JSON, per family: the largest differences of the logged values and of the variables,
on how many devices a weight is, and how many all-reduces XLA put in the step."""

from __future__ import annotations

import json

import jax
import numpy as np

from keras_ganime import config as config_lib
from keras_ganime.engines import checkpoints
from keras_ganime.engines.jax import JaxEngine
from tests.backend_step import CASES, config, faces


def one(case: str) -> dict[str, float]:
    cfg = config(case)
    if hasattr(cfg.train, "warmup_steps"):  # one step: G's phase due at it
        config_lib.set_value(cfg, "train.warmup_steps", 0)
    images, labels = faces(cfg)
    single = JaxEngine(cfg, images, labels)
    draws = single.family.draw(single.rng, cfg.train.batch_size)
    indices = np.arange(cfg.train.batch_size) * 3
    named = checkpoints.variables_of(single.family.checkpoint_objects())
    start = {k: np.asarray(v.value) for k, v in named.items()}
    out_one = single.step_with(draws, indices)
    after_one = {k: np.asarray(v.value) for k, v in named.items()}

    config_lib.set_value(cfg, "train.distribute", "mirrored")
    split = JaxEngine(cfg, images, labels)
    both = checkpoints.variables_of(split.family.checkpoint_objects())
    checkpoints.assign(both, start, "start")
    out_two = split.step_with(draws, indices)
    weight = next(iter(both.values())).value
    compiled = split._train_step.lower(split.values(), split.state, split.device_images,
                                        due=split.due()).compile()
    one_values = np.array([float(out_one[k]) for k in sorted(out_one)])
    two_values = np.array([float(out_two[k]) for k in sorted(out_one)])
    assert np.isfinite(one_values).all() and np.isfinite(two_values).all(), case
    return {"values": float(np.max(np.abs(one_values - two_values))),
            "variables": max(float(np.max(np.abs(after_one[k] - np.asarray(v.value)),
                                          initial=0)) for k, v in both.items()),
            "moved": max(float(np.max(np.abs(after_one[k] - start[k]), initial=0))
                         for k in start if start[k].dtype.kind == "f"),
            "weight_devices": len(weight.sharding.device_set),
            "all_reduces": compiled.as_text().count("all-reduce("),
            "devices": jax.device_count()}


if __name__ == "__main__":
    print(json.dumps({case: one(case) for case in CASES}))
