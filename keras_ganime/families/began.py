"""BEGAN: carpedm20/BEGAN-tensorflow, as the paper's section 3.3 ran it.

D is an auto-encoder, and the game is over how well it reconstructs: it learns to reconstruct
the reals and not G's fakes, G to make fakes that D reconstructs well. A proportional control,
k_t, keeps the two in the equilibrium L_fake = gamma L_real. One step, from one forward pass:

    L_real = mean |D(x) - x|               L_fake = mean |D(G(z)) - G(z)|
    d_loss = L_real - k_t L_fake (D)       g_loss = L_fake (G)
    then k_t <- clip(k_t + lambda_k (gamma L_real - g_loss), 0, 1)

with M_global = L_real + |gamma L_real - g_loss| logged as the convergence measure. Both
learning rates halve every `began.lr_update_step` steps, never below `began.lr_floor` (a rate
already below it is raised to it, as the repo does). The networks are the repo's: 3x3 convs with
ELU, nearest-neighbour up-sampling, no BatchNorm, no tanh; G has D's decoder's shape, its own
weights. Settings: `began_settings.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

from keras_ganime.families import augment, base, began_settings, failure
from keras_ganime.families.base import Draws, Phase, StepContext, Tensor
from keras_ganime.families.began_settings import BEGANModel
from keras_ganime.families.optimizers import build_optimizer

BOTTLENECK = 8  # the decoder starts, and the encoder ends, at 8x8


# --- the networks ------------------------------------------------------------------------------


def scales(image_size: int) -> int:
    """The repo's repeat_num: the resolutions from 8x8 up to the image's, log2(size) - 2."""
    return int(math.log2(image_size)) - 2


def _conv(filters: int, dtype: str, strides: int = 1, activation: str | None = "elu"
          ) -> layers.Conv2D:
    # The repo's slim.conv2d: Glorot uniform weights, zero biases.
    return layers.Conv2D(filters, 3, strides, padding="same", activation=activation, dtype=dtype)


def _decoder(x: keras.KerasTensor, cfg: BEGANModel, dtype: str) -> keras.KerasTensor:
    """Dense to 8x8xn, then per scale two convs, nearest-neighbour 2x between scales, and a
    last conv to RGB without activation."""
    n = cfg.filters
    x = layers.Dense(BOTTLENECK * BOTTLENECK * n, dtype=dtype)(x)
    x = layers.Reshape((BOTTLENECK, BOTTLENECK, n), dtype=dtype)(x)
    for i in range(scales(cfg.image_size)):
        x = _conv(n, dtype)(x)
        x = _conv(n, dtype)(x)
        if i < scales(cfg.image_size) - 1:
            x = layers.UpSampling2D(2, interpolation="nearest", dtype=dtype)(x)
    return _conv(3, "float32", activation=None)(x)


def build_generator(cfg: BEGANModel, dtype: str = "float32") -> keras.Model:
    """z (latent_dim,) -> (size, size, 3) image, about [-1, 1] (no tanh, as the repo)."""
    z = keras.Input((cfg.latent_dim,), name="z")
    return keras.Model(z, _decoder(z, cfg, dtype), name="generator")


def build_discriminator(cfg: BEGANModel, dtype: str = "float32") -> keras.Model:
    """The auto-encoder: image -> its reconstruction. The encoder widens to n x (scale + 1)
    filters, halving the size by a stride-2 conv between scales, down to an h-sized code."""
    n, repeat = cfg.filters, scales(cfg.image_size)
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = _conv(n, dtype)(image)
    for i in range(repeat):
        width = n * (i + 1)
        x = _conv(width, dtype)(x)
        x = _conv(width, dtype)(x)
        if i < repeat - 1:
            x = _conv(width, dtype, strides=2)(x)
    x = layers.Flatten(dtype=dtype)(x)
    code = layers.Dense(cfg.hidden, dtype=dtype)(x)
    return keras.Model(image, _decoder(code, cfg, dtype), name="discriminator")


class HalvingWithFloor(keras.optimizers.schedules.LearningRateSchedule):
    """The repo's schedule: after every `every` updates, rate <- max(rate / 2, floor). In closed
    form, as the optimizer's update count is all it needs (so resume restores it): the initial
    rate before the first decay, max(initial / 2^decays, floor) after it."""

    def __init__(self, initial: float, every: int, floor: float) -> None:
        self.initial, self.every, self.floor = initial, every, floor

    def __call__(self, step: Tensor) -> Tensor:
        decays = ops.cast(ops.floor_divide(step, self.every), "float32")
        halved = ops.maximum(self.initial * ops.power(0.5, decays), self.floor)
        return ops.where(decays > 0, halved, self.initial)

    def get_config(self) -> dict[str, Any]:
        return {"initial": self.initial, "every": self.every, "floor": self.floor}


def l1(a: Tensor, b: Tensor) -> Tensor:
    return ops.mean(ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32")))


# --- the family --------------------------------------------------------------------------------


class Family(base.Family):
    spec = began_settings.SPEC

    @classmethod
    def forward_networks(cls, cfg: Any) -> tuple[keras.Model, keras.Model]:
        return build_generator(cfg.model), build_discriminator(cfg.model)

    @classmethod
    def step_flops(cls, cfg: Any, g_forward: int, d_forward: int) -> int:
        """FLOPs of one image through one training step (make bench), a backward pass costing twice
        its forward pass:
            G forward, D forward on the real and on the fake          G + 2D
            d_loss's backward through D, on both                     2 * 2D
            g_loss's backward through D's fake half to its input,
                then through G                                        D + 2G
        = 3 G + 7 D.
        """
        return 3 * g_forward + 7 * d_forward

    def __init__(self, cfg: Any, build: base.Build) -> None:
        super().__init__(cfg, build)
        self.generator = build_generator(cfg.model, build.policy)
        self.discriminator = build_discriminator(cfg.model, build.policy)
        b = cfg.began
        self.g_optim, self.d_optim = (
            build_optimizer(opt, build.loss_scale, HalvingWithFloor(
                opt.learning_rate, b.lr_update_step, b.lr_floor))
            for opt in (cfg.g_optim, cfg.d_optim))
        self.g_optim.build(self.generator.trainable_variables)
        self.d_optim.build(self.discriminator.trainable_variables)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {"g_optim": self.g_optim, "d_optim": self.d_optim}
        self.k_t = keras.Variable(0.0, trainable=False, name="k_t",
                                  aggregation="only_first_replica")
        self.augmenter = augment.Augmenter(cfg.augment, cfg.train.batch_size)

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("step", began_settings.LOSSES),)

    def draw(self, rng: Any, n: int) -> Draws:
        z = self.latents(rng, n)
        return Draws({"z": z, **self.augmenter.draw(rng, n, ("d_real", "d_fake"))})

    def run_phase(self, name: str, reals: Tensor, draws: Draws, ctx: StepContext
                  ) -> dict[str, Tensor]:
        g, d = self.generator, self.discriminator

        def losses() -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
            # D reconstructs what it sees, augmented per [augment]; G learns through that.
            real = self.augmenter(reals, draws.per_sample, "d_real")
            fake = self.augmenter(g(draws.per_sample["z"], training=True), draws.per_sample,
                                  "d_fake")
            # One call on both batches, as the repo; without BatchNorm it changes nothing.
            both = d(ops.concatenate([real, ops.cast(fake, real.dtype)]), training=True)
            of_reals, of_fakes = ops.split(both, 2)
            l_real, l_fake = l1(of_reals, real), l1(of_fakes, fake)
            return (l_real - self.k_t * l_fake, l_fake), (l_real, l_fake)

        (d_loss, g_loss), (l_real, l_fake) = ctx.update_many(
            [(self.d_optim, d.trainable_variables), (self.g_optim, g.trainable_variables)],
            losses)
        return {"L_real": l_real, "L_fake": l_fake, "d_loss": d_loss, "g_loss": g_loss}

    after_outputs = ("k_t", "M_global")

    def after_step(self, values: Mapping[str, Tensor], draws: Draws) -> dict[str, Tensor]:
        """k_t's control step, from the global batch's losses of this step."""
        b = self.cfg.began
        balance = b.gamma * values["L_real"] - values["g_loss"]
        self.k_t.assign(ops.clip(self.k_t + b.lambda_k * balance, 0.0, 1.0))
        return {"k_t": ops.convert_to_tensor(self.k_t), "M_global": values["L_real"]
                + ops.abs(balance)}

    def rules(self) -> list[failure.LossRule]:
        """k_t pinned at 0 or at 1 for more than failure.k_patience steps once past
        failure.k_start (an update count: D's optimizer steps once per step)."""
        f, steps = self.cfg.failure, self.d_optim.iterations
        return [failure.LossRule(f"k_t held at {end}",
                                 lambda v, end=end: ops.logical_and(
                                     v["k_t"] == float(end), steps > f.k_start), f.k_patience)
                for end in (0, 1)]

    def checkpoint_objects(self) -> dict[str, Any]:
        return {**super().checkpoint_objects(), "k_t": self.k_t}

    # --- sampling and export ---
    def latents(self, rng: Any, n: int) -> Tensor:
        return rng.uniform((n, self.cfg.model.latent_dim), -1.0, 1.0)

    def sampler(self) -> keras.Model:
        return self.generator

    def sampler_objects(self) -> dict[str, Any]:
        return {"generator": self.generator}

    def pictures(self, reals: Tensor) -> dict[str, Tensor]:
        """D's reconstructions of a fixed batch of reals: what D has learned (the repo saves
        them beside its samples)."""
        return {"reconstructions": self.discriminator(reals, training=False)}

    def export(self, path: Path) -> None:
        """G as a .keras file of Keras's own layers: it loads with keras.models.load_model."""
        plain = build_generator(self.cfg.model)
        plain.set_weights(self.generator.get_weights())
        plain.save(path)
