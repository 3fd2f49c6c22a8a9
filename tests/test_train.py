"""The training step's arithmetic, phases, labels and optimizers; the loop's outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_ganime import config as config_lib
from keras_ganime.gan import EPSILON, GAN, bce, build_optimizer
from keras_ganime.train import fit, new_run


def tiny(**overrides) -> config_lib.Config:
    """A 16x16 model with batch 8: the reference code path at test speed."""
    settings = {"model.image_size": 16, "model.latent_dim": 8, "train.batch_size": 8,
                "train.warmup_steps": 2, "train.steps": 6, "output.log_every": 1,
                "output.sample_every": 3, "output.checkpoint_every": 3, **overrides}
    cfg = config_lib.load()
    for key, value in settings.items():
        config_lib.set_value(cfg, key, value)
    return cfg.validate()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)


def snapshot(model) -> list[np.ndarray]:
    return [v.numpy().copy() for v in model.weights]


def changed(before, model) -> list[bool]:
    return [not np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights)]


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
    gan = GAN(cfg, images)
    d, g = gan.discriminator, gan.generator
    reals = tf.cast(images[:8], tf.float32) / 127.5 - 1
    z = tf.random.stateless_normal((8, 1, 1, 8), seed=[1, 2])
    y_real = tf.constant(np.linspace(0.9, 1.0, 8), tf.float32)
    y_fake = tf.constant(np.linspace(0.0, 0.1, 8), tf.float32)

    for images_, y in ((reals, y_real), (g(z, training=False), y_fake)):
        bias = d.layers[-1].bias.numpy().copy()
        p = d(images_, training=True).numpy().reshape(-1)  # D before this update, by hand
        loss, p_step = gan.d_update(images_, y)
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
    loss = gan.g_update(z, y_real)
    assert float(loss) == pytest.approx(np_bce(y_real.numpy(), p), rel=1e-5)
    assert not any(changed(d_before, d)), "the G update changed D"
    assert all(changed(g_before, g)), "the G update left part of G untouched"


def test_update_is_the_three_phases_in_order(images):
    cfg = tiny()
    a, b = GAN(cfg, images), GAN(cfg, images)
    a.step.assign(cfg.train.warmup_steps)
    reals = tf.cast(images[:8], tf.float32) / 127.5 - 1
    z = tf.random.stateless_normal((8, 1, 1, 8), seed=[3, 4])
    y1, y0 = tf.fill([8], 0.95), tf.fill([8], 0.05)
    out = a.update(reals, z, y1, y0, y1)
    fakes = b.generator(z, training=False)  # as the reference's predict()
    d_loss1, _ = b.d_update(reals, y1)
    d_loss0, _ = b.d_update(fakes, y0)
    g_loss = b.g_update(z, y1)
    for key, value in (("d_loss1", d_loss1), ("d_loss0", d_loss0), ("g_loss", g_loss)):
        assert float(out[key]) == pytest.approx(float(value), rel=1e-6)
    for model_a, model_b in ((a.generator, b.generator), (a.discriminator, b.discriminator)):
        for va, vb in zip(model_a.weights, model_b.weights):
            np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-6, atol=1e-7)


def test_d_phase_leaves_g_alone_and_warmup_trains_d_only(images):
    cfg = tiny(**{"train.warmup_steps": 3})
    gan = GAN(cfg, images)
    g0, d0 = snapshot(gan.generator), snapshot(gan.discriminator)
    for _ in range(3):
        out = gan.train_step()
        assert np.isnan(float(out["g_loss"]))
    assert not any(changed(g0, gan.generator)), "G changed during the D-only warm-up"
    assert all(changed(d0, gan.discriminator))
    out = gan.train_step()  # the first step after warm-up trains G
    assert np.isfinite(float(out["g_loss"]))
    assert all(changed(g0, gan.generator))


def test_soft_labels_and_flip(images):
    plain, flipped = GAN(tiny(), images), GAN(tiny(**{"labels.flip": True}), images)
    real, fake, g_target = (t.numpy() for t in plain.targets(1000))
    assert real.min() > 0.9 and real.max() <= 1.0 and fake.min() >= 0.0 and fake.max() < 0.1
    assert real.std() > 0.02 and fake.std() > 0.02  # drawn per sample
    np.testing.assert_array_equal(g_target, real)
    f_real, f_fake, f_g = (t.numpy() for t in flipped.targets(1000))
    # Same random stream: flip swaps exactly which class gets the high target.
    np.testing.assert_array_equal(f_real, fake)
    np.testing.assert_array_equal(f_fake, real)
    np.testing.assert_array_equal(f_g, f_real)


@pytest.mark.parametrize("p", [0.0, 1.0, 0.3])
def test_occasional_flips(images, p):
    base = GAN(tiny(), images)
    gan = GAN(tiny(**{"labels.flip_prob": p}), images)
    real, fake, _ = (t.numpy() for t in base.targets(2000))
    d_real, d_fake, g_target = (t.numpy() for t in gan.targets(2000))
    np.testing.assert_array_equal(g_target, real)  # G's target is never flipped
    swapped = d_real < 0.5
    assert swapped.mean() == pytest.approx(p, abs=0.03)
    np.testing.assert_array_equal(d_real[swapped], fake[swapped])
    np.testing.assert_array_equal(d_real[~swapped], real[~swapped])
    assert (d_fake > 0.5).mean() == pytest.approx(p, abs=0.03)


@pytest.mark.parametrize("name, kind", [("adam", "Adam"), ("adamax", "Adamax"), ("sgd", "SGD")])
def test_optimizers_from_config(name, kind):
    cfg = config_lib.OptimConfig(name=name, learning_rate=0.003, beta_1=0.4, momentum=0.7,
                                 nesterov=True)
    opt = build_optimizer(cfg)
    assert type(opt).__name__ == kind
    assert float(opt.learning_rate) == pytest.approx(0.003)
    if name == "sgd":
        assert opt.momentum == pytest.approx(0.7) and opt.nesterov
    else:
        assert opt.beta_1 == pytest.approx(0.4)


def test_no_retracing_over_50_steps(images):
    gan = GAN(tiny(**{"train.warmup_steps": 20}), images)
    for _ in range(50):
        gan.train_step()
    assert gan.train_step.experimental_get_tracing_count() == 1


def test_run_writes_its_outputs(tmp_path, images):
    cfg = tiny(**{"output.runs_dir": str(tmp_path)})
    gan = GAN(cfg, images)
    with new_run(cfg) as run:
        fit(gan, run, progress=False)
    path = run.path
    assert path.name == "00000-default"
    rows = run.read_losses()
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert list(rows[0]) == ["step", "d_loss0", "d_loss1", "g_loss", "real_score", "fake_score",
                             "images_per_s", "wall_s"]
    assert np.isnan(rows[1]["g_loss"]) and np.isfinite(rows[2]["g_loss"])  # warm-up of 2
    with Image.open(path / "samples" / "0000006.png") as grid:  # 8 x 8 tiles of 16 + 1 px
        assert grid.size == (8 * 17 + 1, 8 * 17 + 1)
    for name in ("loss.csv", "loss.png", "reals.png", "generator.keras", "samples/0000003.png",
                 "samples/0000006.png", "checkpoints/checkpoint"):
        assert (path / name).is_file(), name
    assert list((path / "tensorboard").iterdir())
    assert run.read_json("run.json")["status"] == "done"
    # The saved G is Keras's layers only (the fused BatchNorm is not registered, so loading
    # would fail on it) and is the trained G.
    saved = keras.models.load_model(path / "generator.keras", compile=False)
    z = gan.fixed_noise(4)
    np.testing.assert_allclose(saved(z, training=False), gan.generator(z, training=False),
                               atol=1e-6)


@pytest.mark.parametrize("setting", ["train.jit_compile=on", "train.mixed_precision=bfloat16",
                                     "train.mixed_precision=float16"])
def test_speed_settings_train(images, setting):
    key, value = setting.split("=")
    gan = GAN(tiny(**{key: value, "train.warmup_steps": 0}), images)
    g0 = snapshot(gan.generator)
    for _ in range(3):
        out = gan.train_step()
    assert all(np.isfinite(float(v)) for v in out.values())
    assert all(changed(g0, gan.generator)[:2])
    if value != "on":
        conv = gan.generator.layers[1]
        assert conv.compute_dtype == value and conv.variable_dtype == "float32"
        assert gan.discriminator.output.dtype == "float32"  # probabilities stay float32
