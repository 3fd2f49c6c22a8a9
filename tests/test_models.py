"""The reference models: parameter counts by hand, shapes, ranges, and the latent noise."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ganime.families.dcgan import build_discriminator, build_generator, sample_noise
from keras_ganime.families.dcgan_settings import DCGANModel


def conv(k: int, c_in: int, c_out: int) -> int:
    """Weights and bias of a k x k (transposed) convolution."""
    return k * k * c_in * c_out + c_out


def bn(c: int) -> tuple[int, int]:
    """(trainable gamma + beta, non-trainable moving mean + variance)."""
    return 2 * c, 2 * c


def count(model) -> tuple[int, int]:
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    frozen = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    return trainable, frozen


def test_generator_parameters_match_the_layer_table():
    layers = [
        conv(4, 100, 512),  # 1: ConvT 512, 4x4 valid: 819,712
        conv(4, 512, 256),  # 2: ConvT 256: 2,097,408
        conv(4, 256, 128),  # 3: ConvT 128: 524,416
        conv(4, 128, 64),  # 4: ConvT 64: 131,136
        conv(3, 64, 64),  # 5: Conv 64, 3x3 (the extra layer): 36,928
        conv(4, 64, 3),  # 6: ConvT 3, tanh: 3,075
    ]
    norms = [bn(c) for c in (512, 256, 128, 64, 64)]  # after layers 1-5
    trainable = sum(layers) + sum(t for t, _ in norms)
    frozen = sum(f for _, f in norms)
    assert (trainable, frozen) == (3_614_723, 2_048)  # the arithmetic above, written out
    assert count(build_generator(DCGANModel())) == (trainable, frozen)


def test_discriminator_parameters_match_the_layer_table():
    layers = [
        conv(4, 3, 64),  # 1: 3,136 (no BatchNorm)
        conv(4, 64, 128),  # 2: 131,200
        conv(4, 128, 256),  # 3: 524,544
        conv(4, 256, 512),  # 4: 2,097,664
        4 * 4 * 512 * 1 + 1,  # 5: Flatten -> Dense 1: 8,193
    ]
    norms = [bn(c) for c in (128, 256, 512)]
    trainable = sum(layers) + sum(t for t, _ in norms)
    frozen = sum(f for _, f in norms)
    assert (trainable, frozen) == (2_766_529, 1_792)
    assert count(build_discriminator(DCGANModel())) == (trainable, frozen)


def test_half_the_width_halves_every_layer():
    """model.filters 32 (the sources' 64 halved): G's blocks 256, 128, 64, 32 and the extra
    conv 32; D's 32, 64, 128, 256; the stem, the output layers and the head follow."""
    g_layers = [conv(4, 100, 256), conv(4, 256, 128), conv(4, 128, 64), conv(4, 64, 32),
                conv(3, 32, 32), conv(4, 32, 3)]
    g_norms = [bn(c) for c in (256, 128, 64, 32, 32)]
    d_layers = [conv(4, 3, 32), conv(4, 32, 64), conv(4, 64, 128), conv(4, 128, 256),
                4 * 4 * 256 + 1]
    d_norms = [bn(c) for c in (64, 128, 256)]
    half = DCGANModel(filters=32)
    for built, layers, norms in ((build_generator(half), g_layers, g_norms),
                                 (build_discriminator(half), d_layers, d_norms)):
        assert count(built) == (sum(layers) + sum(t for t, _ in norms),
                                sum(f for _, f in norms))


def test_reference_layer_settings():
    g = build_generator(DCGANModel())
    norms = [layer for layer in g.layers if layer.__class__.__name__ == "BatchNormalization"]
    assert len(norms) == 5 and all(n.momentum == 0.3 for n in norms)
    relus = [layer for layer in g.layers if layer.__class__.__name__ == "LeakyReLU"]
    assert len(relus) == 5 and all(abs(r.negative_slope - 0.2) < 1e-7 for r in relus)
    kernels = [layer for layer in g.layers if hasattr(layer, "kernel_initializer")]
    assert all(k.kernel_initializer.__class__.__name__ == "GlorotUniform" for k in kernels)
    assert g.layers[-1].activation.__name__ == "tanh"
    d = build_discriminator(DCGANModel())
    assert d.layers[-1].activation.__name__ == "sigmoid"
    norms = [layer for layer in d.layers if layer.__class__.__name__ == "BatchNormalization"]
    assert len(norms) == 3 and all(n.momentum == 0.3 and n.epsilon == 1e-3 for n in norms)
    relus = [layer for layer in d.layers if layer.__class__.__name__ == "LeakyReLU"]
    assert len(relus) == 4 and all(abs(r.negative_slope - 0.2) < 1e-7 for r in relus)
    kernels = [layer for layer in d.layers if hasattr(layer, "kernel_initializer")]
    assert len(kernels) == 5
    assert all(k.kernel_initializer.__class__.__name__ == "GlorotUniform" for k in kernels)
    # No BatchNorm right after the first convolution, as the reference.
    assert [type(layer).__name__ for layer in d.layers[1:3]] == ["Conv2D", "LeakyReLU"]


@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize("upsampling", ["transpose", "upsample"])
def test_shapes_and_ranges(size, upsampling):
    cfg = DCGANModel(image_size=size, upsampling=upsampling, latent_dim=20)
    g, d = build_generator(cfg), build_discriminator(cfg)
    z = sample_noise(tf.random.Generator.from_seed(1), 5, 20, "binary")
    images = g(z, training=False)
    assert images.shape == (5, size, size, 3)
    assert -1.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    p = d(images, training=False)
    assert p.shape == (5, 1)
    assert 0.0 <= float(tf.reduce_min(p)) and float(tf.reduce_max(p)) <= 1.0


def test_upsample_mode_has_no_transposed_upsampling_blocks():
    g = build_generator(DCGANModel(upsampling="upsample"))
    kinds = [layer.__class__.__name__ for layer in g.layers]
    # Only the stem (1x1 -> 4x4) and the output layer stay transposed.
    assert kinds.count("Conv2DTranspose") == 2 and kinds.count("UpSampling2D") == 3


def test_bad_image_size():
    with pytest.raises(ValueError, match="image_size"):
        build_generator(DCGANModel(image_size=48))


def test_binary_noise_statistics():
    z = sample_noise(tf.random.Generator.from_seed(0), 4000, 100, "binary").numpy()
    assert z.shape == (4000, 1, 1, 100)
    magnitude = np.abs(z)
    assert magnitude.min() >= 0.9 and magnitude.max() <= 1.1  # +-1 with jitter of at most 0.1
    assert abs((z > 0).mean() - 0.5) < 0.01  # fair signs
    jitter = z - np.sign(z)
    assert abs(jitter.mean()) < 0.002 and abs(jitter.std() - 0.2 / np.sqrt(12)) < 0.002


def test_gaussian_noise_statistics():
    z = sample_noise(tf.random.Generator.from_seed(0), 4000, 100, "gaussian").numpy()
    assert z.shape == (4000, 1, 1, 100)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01


def test_noise_is_seeded():
    a = sample_noise(tf.random.Generator.from_seed(3), 8, 10, "binary")
    b = sample_noise(tf.random.Generator.from_seed(3), 8, 10, "binary")
    c = sample_noise(tf.random.Generator.from_seed(4), 8, 10, "binary")
    assert np.array_equal(a, b) and not np.array_equal(a, c)
