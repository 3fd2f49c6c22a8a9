"""The optimizers a config names, as Keras builds them."""

from __future__ import annotations

import keras

from keras_ganime.settings import OptimConfig


def build_optimizer(cfg: OptimConfig, loss_scale: bool = False,
                    schedule: keras.optimizers.schedules.LearningRateSchedule | None = None
                    ) -> keras.optimizers.Optimizer:
    """The optimizer the config names; `loss_scale` wraps it for float16 (dynamic scaling);
    `schedule`, a family's, replaces the constant cfg.learning_rate."""
    rate = cfg.learning_rate if schedule is None else schedule
    if cfg.name == "sgd":
        opt = keras.optimizers.SGD(rate, momentum=cfg.momentum, nesterov=cfg.nesterov)
    else:
        kind = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax}[cfg.name]
        opt = kind(rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon)
    return keras.optimizers.LossScaleOptimizer(opt) if loss_scale else opt
