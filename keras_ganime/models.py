"""The reference generator and discriminator (forcecore's Keras-GAN-Animeface-Character) and its
latent noise, as Keras 3 functional models.

At 64x64 the layers are exactly the reference's. Smaller images (32, 16) drop up-sampling blocks
from the generator and down-sampling blocks from the discriminator, so that tests run fast on the
same code.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from keras_ganime.batchnorm import FusedBatchNormalization
from keras_ganime.config import ModelConfig

BASE_FILTERS = 64
# The generator's stem always produces 4x4 and its last layer doubles the size, so the number of
# middle up-sampling blocks is log2(size / 8); the discriminator halves down to 4x4.
STEM_SIZE = 4


def _blocks(image_size: int) -> int:
    n = math.log2(image_size / (2 * STEM_SIZE))
    if image_size < 2 * STEM_SIZE or n != int(n):
        raise ValueError(f"model.image_size must be a power of two >= 8, got {image_size}")
    return int(n)


def _bn(cfg: ModelConfig, dtype: str, sync: bool, fused: bool) -> layers.BatchNormalization:
    kind = FusedBatchNormalization if fused else layers.BatchNormalization
    return kind(momentum=cfg.bn_momentum, dtype=dtype, synchronized=sync)


def _bn_lrelu(x: keras.KerasTensor, cfg: ModelConfig, dtype: str, sync: bool, fused: bool
              ) -> keras.KerasTensor:
    x = _bn(cfg, dtype, sync, fused)(x)
    return layers.LeakyReLU(negative_slope=cfg.leaky_slope, dtype=dtype)(x)


def build_generator(cfg: ModelConfig, dtype: str = "float32", sync_bn: bool = False,
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


def build_discriminator(cfg: ModelConfig, dtype: str = "float32", sync_bn: bool = False,
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


def sample_noise(
    rng: tf.random.Generator, n: int | tf.Tensor, latent_dim: int, kind: str
) -> tf.Tensor:
    """Latent batch of shape (n, 1, 1, latent_dim), the generator's input.

    `binary` is the reference's: each value -1 or +1 at random, plus uniform jitter in
    [-0.1, 0.1]. `gaussian` is standard normal.
    """
    shape = tf.stack([n, 1, 1, latent_dim])
    if kind == "gaussian":
        return rng.normal(shape)
    signs = tf.cast(rng.uniform(shape, 0, 2, dtype=tf.int32), tf.float32) * 2.0 - 1.0
    return signs + rng.uniform(shape, -0.1, 0.1)
