"""The DCGAN family's arithmetic: the clipped cross-entropy, each phase against a hand
computation, the phases in the reference's order, the warm-up, soft and flipped labels."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ganime.engines.tensorflow import Engine
from keras_ganime.families.base import Draws
from keras_ganime.families.dcgan import EPSILON, bce
from tests.helpers import changed, random_images, snapshot, tiny


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return random_images()


def targets(gan: Engine, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """D's targets for reals and for fakes, and G's, as a step draws them."""
    d = gan.family.draw(gan.rng, n).per_sample
    return d["d_real_target"].numpy(), d["d_fake_target"].numpy(), d["g_target"].numpy()


def np_bce(y, p):
    p = np.clip(np.asarray(p, np.float64).reshape(-1), EPSILON, 1 - EPSILON)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def test_bce_against_hand_values():
    y = tf.constant([1.0, 0.0, 0.9, 0.05])
    p = tf.constant([[0.8], [0.3], [1.0], [0.0]])
    # -ln .8 and -ln .7; then the clipped ends, in float32 as Keras 2 computed them, where
    # 1 - 1e-7 rounds to 1 - 2**-23: -(.9 ln(1 - 2**-23) + .1 ln 2**-23) = .1 * 15.942385,
    # and -(.05 ln 1e-7 + .95 ln(1 - 2**-23)) = .05 * 16.118096 + .95 * 1.19e-7.
    expected = [0.22314355, 0.35667494, 1.5942386, 0.8059049]
    assert float(bce(y, p)) == pytest.approx(np.mean(expected), rel=1e-5)


def test_each_phase_equals_a_hand_computation(images):
    cfg = tiny(**{"d_optim.name": "sgd", "d_optim.learning_rate": 0.05})
    gan = Engine(cfg, images)
    d, g = gan.family.discriminator, gan.family.generator
    reals = tf.cast(images[:8], tf.float32) / 127.5 - 1
    z = tf.random.stateless_normal((8, 1, 1, 8), seed=[1, 2])
    y_real = tf.constant(np.linspace(0.9, 1.0, 8), tf.float32)
    y_fake = tf.constant(np.linspace(0.0, 0.1, 8), tf.float32)

    for images_, y in ((reals, y_real), (g(z, training=False), y_fake)):
        bias = d.layers[-1].bias.numpy().copy()
        p = d(images_, training=True).numpy().reshape(-1)  # D before this update, by hand
        [loss], [p_step] = gan.family.d_update([(images_, y)], gan.context)
        assert float(loss) == pytest.approx(np_bce(y.numpy(), p), rel=1e-5)
        np.testing.assert_allclose(p_step.numpy().reshape(-1), p, rtol=1e-5)
        # Sigmoid + BCE: d loss / d (last Dense bias) = mean(p - y); SGD subtracts lr times it.
        expected = bias - 0.05 * np.mean(p - y.numpy())
        np.testing.assert_allclose(d.layers[-1].bias.numpy(), expected, rtol=1e-5, atol=1e-6)

    d_before, g_before = snapshot(d), snapshot(g)
    p = d(g(z, training=True), training=True).numpy()
    for w, v in zip(g_before, g.weights):
        v.assign(w)  # undo the moving-statistics update of the line above
    for w, v in zip(d_before, d.weights):
        v.assign(w)
    loss = gan.family.g_update(z, y_real, gan.context)
    assert float(loss) == pytest.approx(np_bce(y_real.numpy(), p), rel=1e-5)
    assert not any(changed(d_before, d)), "the G update changed D"
    assert all(changed(g_before, g)), "the G update left part of G untouched"


def test_the_phases_are_the_reference_updates_in_order(images):
    cfg = tiny()
    a, b = Engine(cfg, images), Engine(cfg, images)
    assert [(p.name, p.start) for p in a.phases] == [("d_real", 0), ("d_fake", 0), ("g", 2)]
    reals = tf.cast(images[:8], tf.float32) / 127.5 - 1
    z = tf.random.stateless_normal((8, 1, 1, 8), seed=[3, 4])
    y1, y0 = tf.fill([8], 0.95), tf.fill([8], 0.05)
    draws = Draws({"z": z, "d_real_target": y1, "d_fake_target": y0, "g_target": y1})
    out = {}
    for phase in a.phases:
        out.update(a.family.run_phase(phase.name, reals, draws, a.context))
    fakes = b.family.generator(z, training=False)  # as the reference's predict()
    [d_loss1], _ = b.family.d_update([(reals, y1)], b.context)
    [d_loss0], _ = b.family.d_update([(fakes, y0)], b.context)
    g_loss = b.family.g_update(z, y1, b.context)
    for key, value in (("d_loss1", d_loss1), ("d_loss0", d_loss0), ("g_loss", g_loss)):
        assert float(out[key]) == pytest.approx(float(value), rel=1e-6)
    for name in ("generator", "discriminator"):
        for va, vb in zip(a.family.networks[name].weights, b.family.networks[name].weights):
            np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-6, atol=1e-7)


def test_d_phase_leaves_g_alone_and_warmup_trains_d_only(images):
    cfg = tiny(**{"train.warmup_steps": 3})
    gan = Engine(cfg, images)
    g0, d0 = snapshot(gan.family.generator), snapshot(gan.family.discriminator)
    for _ in range(3):
        out = gan.train_step()
        assert np.isnan(float(out["g_loss"]))
    assert not any(changed(g0, gan.family.generator)), "G changed during the D-only warm-up"
    assert all(changed(d0, gan.family.discriminator))
    out = gan.train_step()  # the first step after warm-up trains G
    assert np.isfinite(float(out["g_loss"]))
    assert all(changed(g0, gan.family.generator))


def test_soft_labels_and_flip(images):
    plain, flipped = Engine(tiny(), images), Engine(tiny(**{"labels.flip": True}), images)
    real, fake, g_target = targets(plain, 1000)
    assert real.min() > 0.9 and real.max() <= 1.0 and fake.min() >= 0.0 and fake.max() < 0.1
    assert real.std() > 0.02 and fake.std() > 0.02  # drawn per sample
    np.testing.assert_array_equal(g_target, real)
    f_real, f_fake, f_g = targets(flipped, 1000)
    # Same random stream: flip swaps exactly which class gets the high target.
    np.testing.assert_array_equal(f_real, fake)
    np.testing.assert_array_equal(f_fake, real)
    np.testing.assert_array_equal(f_g, f_real)


@pytest.mark.parametrize("p", [0.0, 1.0, 0.3])
def test_occasional_flips(images, p):
    base = Engine(tiny(), images)
    gan = Engine(tiny(**{"labels.flip_prob": p}), images)
    real, fake, _ = targets(base, 2000)
    d_real, d_fake, g_target = targets(gan, 2000)
    np.testing.assert_array_equal(g_target, real)  # G's target is never flipped
    swapped = d_real < 0.5
    assert swapped.mean() == pytest.approx(p, abs=0.03)
    np.testing.assert_array_equal(d_real[swapped], fake[swapped])
    np.testing.assert_array_equal(d_real[~swapped], real[~swapped])
    assert (d_fake > 0.5).mean() == pytest.approx(p, abs=0.03)
