"""The DCGAN family: forcecore's Keras-GAN-Animeface-Character, as the paper ran it.

The networks are the reference's layer for layer at 64x64; smaller images (32, 16) drop
up-sampling blocks from the generator and down-sampling blocks from the discriminator, so that
tests run fast on the same code. One step does what the reference's Keras 2.0 loop did, in its
order: D on reals (`d_loss1`), D on fakes (`d_loss0`) as a separate update, then G through D
with the real targets (`g_loss`), G being left alone during the first `warmup_steps`.
Settings: `dcgan_settings.py`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

from keras_ganime import failure
from keras_ganime.batchnorm import FusedBatchNormalization
from keras_ganime.families import base, dcgan_settings
from keras_ganime.families.base import Draws, Phase, StepContext, Tensor
from keras_ganime.families.dcgan_settings import DCGANModel
from keras_ganime.optimizers import build_optimizer

BASE_FILTERS = 64
# The generator's stem always produces 4x4 and its last layer doubles the size, so the number of
# middle up-sampling blocks is log2(size / 8); the discriminator halves down to 4x4.
STEM_SIZE = 4
# Keras 2.0's binary cross-entropy clipped probabilities to [1e-7, 1 - 1e-7], which caps a loss at
# about 16.1: the reference author's "loss above 15" failure signal is this saturation.
EPSILON = 1e-7


# --- the networks ------------------------------------------------------------------------------


def _blocks(image_size: int) -> int:
    n = math.log2(image_size / (2 * STEM_SIZE))
    if image_size < 2 * STEM_SIZE or n != int(n):
        raise ValueError(f"model.image_size must be a power of two >= 8, got {image_size}")
    return int(n)


def _bn(cfg: DCGANModel, dtype: str, sync: bool, fused: bool) -> layers.BatchNormalization:
    kind = FusedBatchNormalization if fused else layers.BatchNormalization
    return kind(momentum=cfg.bn_momentum, dtype=dtype, synchronized=sync)


def _bn_lrelu(x: keras.KerasTensor, cfg: DCGANModel, dtype: str, sync: bool, fused: bool
              ) -> keras.KerasTensor:
    x = _bn(cfg, dtype, sync, fused)(x)
    return layers.LeakyReLU(negative_slope=cfg.leaky_slope, dtype=dtype)(x)


def build_generator(cfg: DCGANModel, dtype: str = "float32", sync_bn: bool = False,
                    fused_bn: bool = False) -> keras.Model:
    """(1, 1, latent) noise -> (size, size, 3) image in [-1, 1].

    `dtype` is a Keras dtype policy ("mixed_bfloat16", ...); the output layer stays float32.
    `sync_bn`: BatchNorm statistics over all replicas of a tf.distribute strategy.
    `fused_bn`: BatchNorm by TensorFlow's fused kernel in training (`batchnorm.py`), the same
    maths; the default is Keras's layer, the reference's.
    """
    n_up = _blocks(cfg.image_size)
    conv = {"kernel_initializer": cfg.initializer, "dtype": dtype}
    z = keras.Input((1, 1, cfg.latent_dim), name="z")
    x = layers.Conv2DTranspose(BASE_FILTERS * 8, 4, padding="valid", **conv)(z)
    x = _bn_lrelu(x, cfg, dtype, sync_bn, fused_bn)
    for i in range(n_up):
        filters = max(BASE_FILTERS, BASE_FILTERS * 8 // 2 ** (i + 1))
        if cfg.upsampling == "transpose":
            x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", **conv)(x)
        else:
            x = layers.UpSampling2D(2, dtype=dtype)(x)
            x = layers.Conv2D(filters, 4, padding="same", **conv)(x)
        x = _bn_lrelu(x, cfg, dtype, sync_bn, fused_bn)
    x = layers.Conv2D(BASE_FILTERS, 3, padding="same", **conv)(x)
    x = _bn_lrelu(x, cfg, dtype, sync_bn, fused_bn)
    x = layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh",
                               kernel_initializer=cfg.initializer, dtype="float32")(x)
    return keras.Model(z, x, name="generator")


def build_discriminator(cfg: DCGANModel, dtype: str = "float32", sync_bn: bool = False,
                        fused_bn: bool = False) -> keras.Model:
    """(size, size, 3) image in [-1, 1] -> probability that it is real, shape (batch, 1).

    `dtype` is a Keras dtype policy; the output layer stays float32, so that the probabilities,
    and the cross-entropy clipped at 1e-7 that is computed from them, keep their precision.
    `sync_bn` and `fused_bn` as for the generator.
    """
    n_down = _blocks(cfg.image_size) + 1
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = image
    for i in range(n_down):
        x = layers.Conv2D(BASE_FILTERS * 2**i, 4, strides=2, padding="same",
                          kernel_initializer=cfg.initializer, dtype=dtype)(x)
        if i > 0:
            x = _bn(cfg, dtype, sync_bn, fused_bn)(x)
        x = layers.LeakyReLU(negative_slope=cfg.leaky_slope, dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    x = layers.Dense(1, activation="sigmoid", kernel_initializer=cfg.initializer,
                     dtype="float32")(x)
    return keras.Model(image, x, name="discriminator")


def sample_noise(rng: Any, n: int, latent_dim: int, kind: str) -> Tensor:
    """Latent batch of shape (n, 1, 1, latent_dim), the generator's input.

    `binary` is the reference's: each value -1 or +1 at random, plus uniform jitter in
    [-0.1, 0.1]. `gaussian` is standard normal.
    """
    shape = (n, 1, 1, latent_dim)
    if kind == "gaussian":
        return rng.normal(shape)
    signs = ops.cast(rng.uniform(shape, 0, 2, dtype="int32"), "float32") * 2.0 - 1.0
    return signs + rng.uniform(shape, -0.1, 0.1)


# --- the loss ----------------------------------------------------------------------------------


def bce(target: Tensor, p: Tensor) -> Tensor:
    """Mean binary cross-entropy of probabilities p (batch, 1) against targets (batch,)."""
    p = ops.clip(ops.cast(ops.reshape(p, [-1]), "float32"), EPSILON, 1.0 - EPSILON)
    return ops.mean(-(target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p)))


# --- the family --------------------------------------------------------------------------------


class Family(base.Family):
    spec = dcgan_settings.SPEC

    def __init__(self, cfg: Any, build: base.Build) -> None:
        super().__init__(cfg, build)
        args = (cfg.model, build.policy, build.sync_bn, build.fused_bn)
        self.generator = build_generator(*args)
        self.discriminator = build_discriminator(*args)
        self.g_optim = build_optimizer(cfg.g_optim, build.loss_scale)
        self.d_optim = build_optimizer(cfg.d_optim, build.loss_scale)
        self.g_optim.build(self.generator.trainable_variables)
        self.d_optim.build(self.discriminator.trainable_variables)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {"g_optim": self.g_optim, "d_optim": self.d_optim}

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("d_real", ("d_loss1", "real_score")),
                Phase("d_fake", ("d_loss0", "fake_score")),
                Phase("g", ("g_loss",), start=self.cfg.train.warmup_steps))

    def draw(self, rng: Any, n: int) -> Draws:
        """Soft targets, D's for the real batch, D's for the fake batch, and G's, then the noise.

        Real is the high class (1 - soft * U) and fake the low one (soft * U), unless `flip`.
        G's target is always the real class's. An occasional flip swaps one sample's D target
        with the other class's.
        """
        lab = self.cfg.labels
        high = 1.0 - lab.soft * rng.uniform([n])
        low = lab.soft * rng.uniform([n])
        real, fake = (low, high) if lab.flip else (high, low)
        swap_real = rng.uniform([n]) < lab.flip_prob
        swap_fake = rng.uniform([n]) < lab.flip_prob
        z = self.latents(rng, n)
        return Draws({"d_real_target": ops.where(swap_real, fake, real),
                      "d_fake_target": ops.where(swap_fake, real, fake),
                      "g_target": real, "z": z})

    def run_phase(self, name: str, reals: Tensor, draws: Draws, ctx: StepContext
                  ) -> dict[str, Tensor]:
        d = draws.per_sample
        if name == "d_real":
            loss, p = self.d_update(reals, d["d_real_target"], ctx)
            return {"d_loss1": loss, "real_score": ops.mean(p)}
        if name == "d_fake":
            # The reference makes D's fakes with predict(): G's BatchNorm in inference mode.
            fakes = self.generator(d["z"], training=self.cfg.train.fake_bn == "training")
            loss, p = self.d_update(fakes, d["d_fake_target"], ctx)
            return {"d_loss0": loss, "fake_score": ops.mean(p)}
        if name == "g":
            return {"g_loss": self.g_update(d["z"], d["g_target"], ctx)}
        raise ValueError(f"the dcgan family has no phase {name!r}")

    def d_update(self, images: Tensor, target: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor]:
        """One optimizer step of D alone; returns its loss and its outputs before the step."""
        def loss() -> tuple[Tensor, Tensor]:
            p = self.discriminator(images, training=True)
            return bce(target, p), p

        return ctx.update(self.d_optim, self.discriminator.trainable_variables, loss)

    def g_update(self, z: Tensor, target: Tensor, ctx: StepContext) -> Tensor:
        """One optimizer step of G through D; D's variables, moving statistics included, stay."""
        d = self.discriminator

        def loss() -> tuple[Tensor, None]:
            # D on batch statistics, as Keras 2.0 ran the frozen D inside the stacked model; the
            # stateless call drops the moving-statistics update that training mode would make.
            p, _ = d.stateless_call(d.trainable_variables, d.non_trainable_variables,
                                    self.generator(z, training=True), training=True)
            return bce(target, p), None

        return ctx.update(self.g_optim, self.generator.trainable_variables, loss)[0]

    def rules(self) -> list[failure.LossRule]:
        fail = self.cfg.failure
        patience = {"d_loss0": fail.d_patience, "d_loss1": fail.d_patience,
                    "g_loss": fail.g_patience}
        return [failure.above(name, fail.loss_limit, patience[name])
                for name in dcgan_settings.LOSSES]

    # --- sampling and export ---
    def latents(self, rng: Any, n: int) -> Tensor:
        return sample_noise(rng, n, self.cfg.model.latent_dim, self.cfg.model.noise)

    def sampler(self) -> keras.Model:
        return self.generator

    def sampler_objects(self) -> dict[str, Any]:
        return {"generator": self.generator}

    def export(self, path: Path) -> None:
        """G as a .keras file made of Keras's own layers (no fused BatchNorm), so that it loads
        with `keras.models.load_model` alone."""
        plain = build_generator(self.cfg.model, self.build.policy)
        plain.set_weights(self.generator.get_weights())
        plain.save(path)
