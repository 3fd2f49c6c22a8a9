"""The BEGAN family: its networks against hand counts, one step by hand (both L1 losses, their
effect on a weight under SGD, k_t's control step and its clips), the learning-rate schedule by
hand and across a resume, the k_t failure rule, and a run through the loop."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_ganime import config as config_lib
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.families.began import HalvingWithFloor, build_discriminator, build_generator
from keras_ganime.runs import RunDir
from keras_ganime.settings import ConfigError
from keras_ganime.training.loop import fit, new_run

# --- parameter counts --------------------------------------------------------------------------


def conv(c_in: int, c_out: int) -> int:
    return 3 * 3 * c_in * c_out + c_out


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def decoder(code: int, n: int, scales: int) -> list[int]:
    """Dense to 8x8xn, two n->n convs per scale, a conv to RGB."""
    return [dense(code, 8 * 8 * n), *[conv(n, n)] * (2 * scales), conv(n, 3)]


def encoder(n: int, h: int, scales: int) -> list[int]:
    """A conv to n, then per scale i (width n (i + 1)) two convs and, but for the last, a
    stride-2 conv; a Dense from 8x8 x the last width to h."""
    out, width = [conv(3, n)], n
    for i in range(scales):
        c = n * (i + 1)
        out += [conv(width, c), conv(c, c)] + ([conv(c, c)] if i < scales - 1 else [])
        width = c
    return [*out, dense(8 * 8 * width, h)]


def per_layer(model) -> list[int]:
    return [layer.count_params() for layer in model.layers if layer.weights]


@pytest.mark.parametrize("size, scales, g_total, d_total", [
    (64, 4, 1_716_611, 13_405_379), (128, 5, 2_011_779, 23_221_443)])
def test_parameter_counts_per_layer_and_as_the_sheet(size, scales, g_total, d_total):
    cfg = config_lib.load(None, ['model.family="began"', f"model.image_size={size}"]).model
    g, d = build_generator(cfg), build_discriminator(cfg)
    assert per_layer(g) == decoder(64, 128, scales)
    assert per_layer(d) == encoder(128, 64, scales) + decoder(64, 128, scales)
    assert (g.count_params(), d.count_params()) == (g_total, d_total)
    assert sum(encoder(128, 64, scales)) == d_total - g_total  # 11,688,768 at 64 px
    assert all(w.trainable for w in g.weights + d.weights)  # no BatchNorm statistics


# --- one step by hand ----------------------------------------------------------------------------

TINY = ['model.family="began"', "model.image_size=16", "model.filters=4", "model.hidden=4",
        "model.latent_dim=4", "train.batch_size=2"]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)


def test_one_step_by_hand(images):
    lr, k0 = 0.1, 0.25
    gan = Engine(config_lib.load(None, [*TINY, "d_optim.name=sgd", "g_optim.name=sgd",
                                        f"d_optim.learning_rate={lr}", "began.gamma=0.5",
                                        "began.lambda_k=0.01"]), images)
    family = gan.family
    family.k_t.assign(k0)
    g, d = family.generator, family.discriminator
    # The step's own draws, from a copy of the engine's generator in its state now.
    rng = tf.random.Generator.from_state(gan.rng.state.numpy(), gan.rng.algorithm)
    z = family.draw(rng, 2).per_sample["z"]
    reals = gan.reals(gan.sampler.indices(gan.step, rng)).numpy()
    fakes = g(z, training=False).numpy()
    r_real, r_fake = (d(x, training=False).numpy() for x in (reals, fakes))
    l_real, l_fake = np.abs(r_real - reals).mean(), np.abs(r_fake - fakes).mean()
    bias = d.layers[-1].bias.numpy().copy()
    out = {k: float(v) for k, v in gan.train_step().items()}
    assert out["L_real"] == pytest.approx(l_real, rel=1e-5)
    assert out["L_fake"] == pytest.approx(l_fake, rel=1e-5)
    assert out["d_loss"] == pytest.approx(l_real - k0 * l_fake, rel=1e-5)
    assert out["g_loss"] == pytest.approx(l_fake, rel=1e-5)
    # D's output bias b_c shifts every reconstructed pixel of channel c: d L / d b_c is the
    # mean over all values of sign(D(x) - x) where the channel is c, and d_loss = L_real - k L_fake.
    n = reals.size
    grad = (np.sign(r_real - reals).sum(axis=(0, 1, 2))
            - k0 * np.sign(r_fake - fakes).sum(axis=(0, 1, 2))) / n
    np.testing.assert_allclose(d.layers[-1].bias.numpy(), bias - lr * grad, atol=1e-7)
    # k_t's control step, from this step's losses.
    k1 = k0 + 0.01 * (0.5 * l_real - l_fake)
    assert float(family.k_t.numpy()) == pytest.approx(k1, rel=1e-5)
    assert out["k_t"] == pytest.approx(k1, rel=1e-5)
    assert out["M_global"] == pytest.approx(l_real + abs(0.5 * l_real - l_fake), rel=1e-5)


@pytest.mark.parametrize("k0, gamma, clipped", [(0.9999, 1.0, 1.0), (0.0001, 0.0, 0.0)])
def test_k_t_is_clipped_at_both_ends(images, k0, gamma, clipped):
    """lambda_k 1: the balance gamma L_real - L_fake (about +-0.5 here) would carry k_t past 1,
    or below 0, at once."""
    gan = Engine(config_lib.load(None, [*TINY, f"began.gamma={gamma}", "began.lambda_k=1.0"]),
                 images)
    gan.family.k_t.assign(k0)
    out = gan.train_step()
    balance = gamma * float(out["L_real"]) - float(out["g_loss"])
    assert (balance > 0) == (clipped == 1.0) and abs(balance) > 1e-3
    assert float(gan.family.k_t.numpy()) == clipped == float(out["k_t"])


# --- the learning-rate schedule ------------------------------------------------------------------


@pytest.mark.parametrize("initial, expected", [
    # before the first decay, after 1, 2, 3: halved, never below the floor 2e-5
    (8e-5, [8e-5, 4e-5, 2e-5, 2e-5]),
    (3e-5, [3e-5, 2e-5, 2e-5, 2e-5]),  # lowered to the floor at once
    (1e-6, [1e-6, 2e-5, 2e-5, 2e-5]),  # raised to the floor: run 2's G rate jumps 20x
])
def test_schedule_by_hand(initial, expected):
    schedule = HalvingWithFloor(initial, 100, 2e-5)
    for steps, rate in zip(([0, 99], [100, 199], [200, 299], [300, 10_000]), expected):
        for step in steps:
            assert float(schedule(tf.constant(step, tf.int64))) == pytest.approx(rate, rel=1e-6)


def test_schedule_survives_resume(images, tmp_path):
    settings = [*TINY, "began.lr_update_step=3", "g_optim.learning_rate=1e-6",
                "d_optim.learning_rate=8e-5", "train.steps=4", "output.checkpoint_every=4",
                "output.sample_every=4", f'output.runs_dir="{tmp_path}"']
    cfg = config_lib.load(None, settings)
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False)
    # 4 updates made: the next, the 5th, is in the second interval (after 1 decay).
    more = config_lib.load(None, [*settings, "train.steps=7"])
    gan = Engine(more, images)
    gan.checkpoint().restore(tf.train.latest_checkpoint(str(run.checkpoints))).expect_partial()
    assert int(gan.family.d_optim.iterations.numpy()) == 4
    assert float(gan.family.g_optim.learning_rate) == pytest.approx(2e-5)  # raised
    assert float(gan.family.d_optim.learning_rate) == pytest.approx(4e-5)
    for _ in range(2):
        gan.train_step()  # updates 5 and 6; the 7th is after 2 decays
    assert float(gan.family.d_optim.learning_rate) == pytest.approx(2e-5)


# --- failure rules -------------------------------------------------------------------------------


def test_a_stuck_k_t_is_a_failure_in_run_json(images, tmp_path):
    """gamma 0: the balance is -L_fake < 0 at every step, so k_t never leaves 0. Past k_start 2
    (updates 3, 4, ...), held for more than 3 steps: failed at step 6."""
    cfg = config_lib.load(None, [*TINY, "began.gamma=0.0", "failure.k_start=2",
                                 "failure.k_patience=3", "train.steps=8", "output.log_every=1",
                                 "output.checkpoint_every=4", "output.sample_every=4",
                                 f'output.runs_dir="{tmp_path}"'])
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False)
    info = json.loads((run.path / "run.json").read_text())
    assert info["failed_at"] == 6
    assert info["reason"] == "k_t held at 0 for more than 3 steps in a row (since step 3)"
    assert all(r["k_t"] == 0.0 for r in run.read_losses())


def test_began_has_no_bce_limit(images):
    gan = Engine(config_lib.load(None, TINY), images)
    assert [r.reason for r in gan.rules] == ["k_t held at 0", "k_t held at 1"]
    with pytest.raises(ConfigError, match="failure.loss_limit is a setting of the dcgan family"):
        config_lib.load(None, [*TINY, "failure.loss_limit=15"])


@pytest.mark.parametrize("setting, message", [
    ("model.image_size=256", "model.image_size must be a power of two from 16 to 128 for BEGAN"),
    ("began.gamma=1.5", "began.gamma must be in [0, 1]"),
    ("began.lr_floor=0", "began.lr_floor must be positive"),
])
def test_bad_began_settings_are_one_line_errors(setting, message):
    with pytest.raises(ConfigError, match=message.replace("[", "\\[")):
        config_lib.load(None, [*TINY, setting])


# --- a run ---------------------------------------------------------------------------------------


def test_a_run_logs_plots_reconstructs_and_exports(images, tmp_path):
    import keras

    cfg = config_lib.load(None, [*TINY, "train.steps=4", "output.log_every=1",
                                 "output.sample_every=2", "output.checkpoint_every=2",
                                 f'output.runs_dir="{tmp_path}"'])
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False)
    header = (run.path / "loss.csv").read_text().splitlines()[0].split(",")
    assert header == ["step", "L_real", "L_fake", "d_loss", "g_loss", "k_t", "M_global",
                      "images_per_s", "wall_s"]
    # D's reconstructions of reals.png's faces, beside each sample grid.
    assert sorted(p.name for p in (run.path / "reconstructions").iterdir()) == [
        "0000002.png", "0000004.png"]
    assert sorted(p.name for p in (run.path / "samples").iterdir()) == [
        "0000002.png", "0000004.png"]
    g = keras.models.load_model(run.path / "generator.keras")
    assert g.input_shape == (None, 4) and g.output_shape == (None, 16, 16, 3)
    with RunDir(run.path):
        pass  # the run is free again, and complete


@pytest.fixture(scope="module")
def began_run(tmp_path_factory, images):
    root = tmp_path_factory.mktemp("began")
    cfg = config_lib.load(None, [*TINY, "train.steps=4", "output.log_every=1",
                                 "output.sample_every=2", "output.checkpoint_every=2",
                                 f'output.runs_dir="{root}"'])
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False)
    return run.path


def test_generate_evaluate_animate_and_report_on_a_began_run(began_run, tmp_path, capsys):
    import shutil

    from PIL import Image

    from keras_ganime import animate, evaluate, generate, report

    for source in (began_run, began_run / "generator.keras"):
        out = tmp_path / source.name
        assert generate.main([str(source), "--n", "5", "--out", str(out)]) == 0
        assert [np.asarray(Image.open(p)).shape for p in sorted(out.glob("0*.png"))] == [
            (16, 16, 3)] * 5
    assert generate.main([str(began_run), "--out", str(tmp_path / "i"), "--interpolate"]) == 0
    assert generate.main([str(began_run), "--out", str(tmp_path / "w"), "--walk", "3"]) == 0
    # A generator.keras away from its run is told apart by its flat input.
    alone = tmp_path / "alone.keras"
    shutil.copy(began_run / "generator.keras", alone)
    assert generate.main([str(alone), "--n", "2", "--out", str(tmp_path / "alone")]) == 0
    assert evaluate.main([str(began_run), "--metrics", "swd", "--samples", "16",
                          "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["step"] == 4
    assert animate.main([str(began_run)]) == 0
    assert (began_run / "training.gif").is_file()
    assert report.main(["--runs", str(began_run.parent), "--out", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert "G&#x27;s loss below D&#x27;s is the steady state BEGAN aims at" in page
