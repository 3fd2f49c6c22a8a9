"""Runs made before the engine/family split keep working: their config.toml loads as the DCGAN,
and today's checkpoint has exactly their variables (names and shapes), so they restore.

tests/fixtures/old-run holds such a run's config.toml and the `tf.train.list_variables` of its
checkpoint (the checkpoint itself, 74 MB, is not committed), recorded from commit 282b381 with
`python -m keras_ganime.train --steps 2 --set output.checkpoint_every=2 --set data.synth_n=200`.
"""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_ganime import config as config_lib
from keras_ganime.engines.tensorflow import Engine

OLD = Path(__file__).resolve().parent / "fixtures" / "old-run"


def test_an_old_config_loads_as_the_dcgan_with_its_values():
    cfg = config_lib.read_run_config(OLD)
    assert cfg.family == "dcgan"
    table = config_lib.read_toml(OLD / "config.toml")
    flat = config_lib.flatten(cfg)
    # Every value of the old file is read as it stood, and the keys it could not name, added
    # since, take their defaults.
    old = {f"{s}.{k}": v for s, values in table.items() for k, v in values.items()}
    assert {k: flat[k] for k in old} == old
    defaults = config_lib.flatten(config_lib.Config())
    assert {k for k in flat if flat[k] != defaults[k]} <= set(old)
    assert set(flat) - set(old) == {
        "model.family", "data.resolved_path", "data.cache_dir", "output.progress_s",
        "output.milestones",
        # The settings of the other sources' DCGANs, and the width; their defaults are the
        # reference's.
        "model.bn_epsilon", "model.g_activation", "model.kernel_size", "model.extra_conv",
        "model.filters",
        "model.use_bias", "model.g_stem", "model.d_head", "model.d_first_bn",
        "model.d_conv_initializer", "model.gamma_initializer", "train.loss", "train.d_update",
        "train.g_input", "train.g_step_d_stats", "train.g_steps", "train.d_skip_ratio",
        "train.l2",
        # Augmentation, off by default.
        "augment.policy", "augment.p", "augment.adaptive", "augment.target", "augment.interval",
        "augment.speed_images",
        # Conditional generation, off by default.
        "model.condition", "model.condition_values"}


def test_todays_checkpoint_has_the_old_variables(tmp_path):
    cfg = config_lib.read_run_config(OLD)
    images = np.random.default_rng(0).integers(0, 256, (64, 64, 64, 3), np.uint8)
    engine = Engine(cfg, images)
    prefix = engine.checkpoint().save(str(tmp_path / "ckpt"))
    now = [[name, list(shape)] for name, shape in tf.train.list_variables(prefix)]
    old = json.loads((OLD / "variables.json").read_text())
    assert now == old
