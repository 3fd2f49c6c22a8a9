"""The other sources' DCGANs (experiments/seed00N.toml, carpedm20*.toml): their networks
against hand counts, layer by layer, and the step settings they need against hand computations:
the loss forms, D stepped once on the sum, the D skip of the paper's section 3.4, G stepped
twice, G on D's very fakes, D's statistics in G's step, L2, the latent distributions and the
initializers."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ganime import config as config_lib
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.families.base import Draws
from keras_ganime.families.dcgan import bce_logits, build_discriminator, build_generator, torch_bce
from keras_ganime.settings import ConfigError
from tests.helpers import changed, random_images, snapshot, tiny

# --- parameter counts --------------------------------------------------------------------------


def conv(k: int, c_in: int, c_out: int, bias: bool) -> tuple[int, int]:
    """(trainable, Keras total) of a Conv2D or Conv2DTranspose: k x k x c_in x c_out + bias."""
    n = k * k * c_in * c_out + (c_out if bias else 0)
    return n, n


def dense(n_in: int, n_out: int) -> tuple[int, int]:
    return n_in * n_out + n_out, n_in * n_out + n_out


def bn(c: int) -> tuple[int, int]:
    """gamma and beta are trained; Keras counts the moving mean and variance too."""
    return 2 * c, 4 * c


def g_layers(z: int, k: int, bias: bool, stem: str) -> list[tuple[int, int]]:
    first = dense(z, 4 * 4 * 512) if stem == "dense" else conv(4, z, 512, bias)
    return [first, bn(512), conv(k, 512, 256, bias), bn(256), conv(k, 256, 128, bias), bn(128),
            conv(k, 128, 64, bias), bn(64), conv(k, 64, 3, bias)]


def d_layers(k: int, bias: bool, first_bn: bool, head: str) -> list[tuple[int, int]]:
    out = [conv(k, 3, 64, bias), *([bn(64)] if first_bn else []), conv(k, 64, 128, bias), bn(128),
           conv(k, 128, 256, bias), bn(256), conv(k, 256, 512, bias), bn(512)]
    return [*out, conv(4, 512, 1, bias) if head == "conv" else dense(4 * 4 * 512, 1)]


# Per preset: G's and D's layers by formula, and the totals (trainable, Keras total), counted by
# hand from the sources' layer tables.
PRESETS = {
    "seed001": (g_layers(100, 4, True, "transpose"), d_layers(4, True, False, "dense"),
                (3_577_667, 3_579_587), (2_766_529, 2_768_321)),
    "seed002": (g_layers(128, 4, False, "transpose"), d_layers(4, False, True, "conv"),
                (3_806_080, 3_808_000), (2_765_696, 2_767_616)),
    "seed004": (g_layers(128, 4, False, "transpose"), d_layers(4, False, True, "conv"),
                (3_806_080, 3_808_000), (2_765_696, 2_767_616)),
    "seed003": (g_layers(100, 4, False, "transpose"), d_layers(4, False, False, "conv"),
                (3_576_704, 3_578_624), (2_765_568, 2_767_360)),
    "carpedm20": (g_layers(100, 5, True, "dense"), d_layers(5, True, False, "dense"),
                  (5_135_363, 5_137_283), (4_316_545, 4_318_337)),
}


def per_layer(model) -> list[tuple[int, int]]:
    return [(sum(int(np.prod(w.shape)) for w in layer.trainable_weights), layer.count_params())
            for layer in model.layers if layer.weights]


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_counts_per_layer_and_in_total(name):
    g_expected, d_expected, g_total, d_total = PRESETS[name]
    cfg = config_lib.load(name)
    g, d = build_generator(cfg.model), build_discriminator(cfg.model, logits=True)
    assert per_layer(g) == g_expected
    assert per_layer(d) == d_expected
    for model, layers, total in ((g, g_expected, g_total), (d, d_expected, d_total)):
        assert tuple(map(sum, zip(*layers))) == total
        assert model.count_params() == total[1]


def test_the_carpedm20_variants_are_its_networks():
    base = config_lib.load("carpedm20")
    for name in ("carpedm20-dskip", "carpedm20-g2-dskip", "carpedm20-l2", "carpedm20-dskip-l2"):
        assert config_lib.load(name).model == base.model, name


# --- the losses --------------------------------------------------------------------------------


def test_torch_bce_clamps_each_log_at_minus_100():
    y = tf.constant([1.0, 0.0, 1.0, 0.0])
    p = tf.constant([[0.8], [0.3], [0.0], [1.0]])
    # -ln .8, -ln .7, then p = 0 for a real and p = 1 for a fake: log 0 = -inf, clamped to -100.
    expected = [0.22314355, 0.35667494, 100.0, 100.0]
    assert float(torch_bce(y, p)) == pytest.approx(np.mean(expected), rel=1e-6)


def test_torch_bce_gradient_is_pytorchs_and_finite_at_0_and_1():
    """BCELoss's backward: (p - y) / max(p (1 - p), 1e-12) / n; at p = 0 or 1 exactly the clamped
    log's own derivative would be 0 x inf = NaN, and a saturated D would poison G's weights."""
    y = tf.constant([1.0, 0.0, 1.0, 0.0, 1.0])
    p = tf.constant([[0.3], [0.3], [0.0], [1.0], [1e-20]])
    with tf.GradientTape() as tape:
        tape.watch(p)
        loss = torch_bce(y, p)
    grad = tape.gradient(loss, p).numpy().reshape(-1)
    hand = [(0.3 - 1) / 0.21, 0.3 / 0.21, -1 / 1e-12, 1 / 1e-12, (1e-20 - 1) / 1e-12]
    np.testing.assert_allclose(grad, np.array(hand) / 5, rtol=1e-5)
    assert float(loss) == pytest.approx((-np.log(0.3) - np.log(0.7) + 100 + 100 + 46.0517) / 5,
                                        rel=1e-4)


def test_bce_on_logits_by_hand():
    y = np.array([1.0, 0.0, 0.9, 0.0], np.float32)
    x = np.array([2.0, -1.0, 0.0, 40.0], np.float32)
    # -(y ln s(x) + (1 - y) ln(1 - s(x))); for x = 40 and y = 0: 40 + ln(1 + e^-40) = 40.
    s = 1 / (1 + np.exp(-x[:3].astype(np.float64)))
    hand = [*(-(y[:3] * np.log(s) + (1 - y[:3]) * np.log(1 - s))), 40.0]
    assert float(bce_logits(tf.constant(y), tf.constant(x[:, None]))) == pytest.approx(
        np.mean(hand), rel=1e-6)


def test_a_loss_limit_the_loss_cannot_reach_is_refused():
    with pytest.raises(ConfigError, match="failure.loss_limit 20.0 can never be reached: "
                                          "train.loss = clipped_bce caps a loss at 16.118"):
        tiny(**{"failure.loss_limit": 20.0})
    tiny(**{"failure.loss_limit": 20.0, "train.loss": "torch_bce"})  # capped at 100


@pytest.mark.parametrize("settings, message", [
    ({"train.d_skip_ratio": 10.0}, "train.d_skip_ratio needs train.d_update = summed"),
    ({"train.g_input": "same_fakes"}, "train.g_input = same_fakes needs train.fake_bn = training"),
    ({"model.kernel_size": 3}, "model.kernel_size must be 4 or 5, got 3"),
    ({"model.initializer": "normal"}, "model.initializer must be one of"),
])
def test_settings_that_cannot_go_together_are_one_line_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        tiny(**settings)


# --- the step ----------------------------------------------------------------------------------

SUMMED = {"train.d_update": "summed", "train.loss": "logits", "train.warmup_steps": 0,
          "train.fake_bn": "training"}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return random_images()


def test_one_d_update_on_the_sum_by_hand(images):
    gan = Engine(tiny(**SUMMED, **{"d_optim.name": "sgd", "d_optim.learning_rate": 0.05}), images)
    d, g = gan.family.discriminator, gan.family.generator
    reals = tf.cast(images[:8], tf.float32) / 127.5 - 1
    z = tf.random.stateless_normal((8, 1, 1, 8), seed=[5, 6])
    y1, y0 = tf.fill([8], 1.0), tf.fill([8], 0.0)
    fakes = g(z, training=True)  # as the phase makes them: G in training mode, batch statistics
    logit_real = d(reals, training=True).numpy().reshape(-1)
    logit_fake = d(fakes, training=True).numpy().reshape(-1)
    bias = d.layers[-1].bias.numpy().copy()
    out = gan.family.run_phase("d", reals, Draws({"z": z, "d_real_target": y1,
                                                  "d_fake_target": y0, "g_target": y1}),
                               gan.context)
    s_real, s_fake = 1 / (1 + np.exp(-logit_real)), 1 / (1 + np.exp(-logit_fake))
    assert float(out["d_loss1"]) == pytest.approx(np.mean(-np.log(s_real)), rel=1e-5)
    assert float(out["d_loss0"]) == pytest.approx(np.mean(-np.log(1 - s_fake)), rel=1e-5)
    assert float(out["real_score"]) == pytest.approx(s_real.mean(), rel=1e-5)
    assert float(out["fake_score"]) == pytest.approx(s_fake.mean(), rel=1e-5)
    # BCE on logits: d loss / d (Dense bias) = mean(s - y); one SGD step on the sum of both.
    expected = bias - 0.05 * (np.mean(s_real - 1.0) + np.mean(s_fake - 0.0))
    np.testing.assert_allclose(d.layers[-1].bias.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert gan.family.d_optim.iterations.numpy() == 1  # once, not once per batch


def forced_step(gan: Engine, g_loss: float, d_loss0: float, d_loss1: float) -> dict:
    """One step whose gate reads these as the last step's values."""
    last = {"g_loss": g_loss, "d_loss0": d_loss0, "d_loss1": d_loss1}
    gan.last.assign([last.get(n, np.nan) for n in gan.names])
    return {k: float(v) for k, v in gan.train_step().items()}


def test_d_skip_happens_exactly_when_the_rule_says(images):
    gan = Engine(tiny(**SUMMED, **{"train.d_skip_ratio": 10.0}), images)
    d = gan.family.discriminator
    # (last g_loss, last d_loss0, d_loss1) -> skipped? The rule: g_loss > 10 x (d_loss0 + d_loss1).
    cases = [((5.0001, 0.25, 0.25), True), ((5.0, 0.25, 0.25), False),  # 5 > 5 is false
             ((4.0, 0.25, 0.25), False), ((np.nan, 0.25, 0.25), False),  # no G loss yet
             ((20.0, 1.0, 0.5), True), ((20.0, 1.5, 0.5), False)]
    for n, (last, skipped) in enumerate(cases, 1):
        before = snapshot(d)
        out = forced_step(gan, *last)
        moved = changed(before, d)
        trainable = [m for m, w in zip(moved, d.weights) if w.trainable]
        assert out["d_skip"] == float(skipped), last
        assert not any(trainable) if skipped else all(trainable), last
        assert np.isfinite(out["d_loss0"]) and np.isfinite(out["d_loss1"])  # computed anyway
        assert gan.family.d_optim.iterations.numpy() == sum(not s for _, s in cases[:n])
        assert out["d_skipped"] == float(skipped)  # tiny logs every step: the step's share
    # Logged every 4 steps, the share is of the steps since the last multiple of 4.
    gan = Engine(tiny(**SUMMED, **{"train.d_skip_ratio": 10.0, "output.log_every": 4}), images)
    shares = [forced_step(gan, *last)["d_skipped"] for last, _ in cases]
    skipped = [float(s) for _, s in cases]
    assert shares == pytest.approx([np.mean(skipped[i // 4 * 4:i + 1]) for i in range(6)])


def test_the_d_skip_reads_the_last_step_and_survives_resume(images, tmp_path):
    gan = Engine(tiny(**SUMMED, **{"train.d_skip_ratio": 10.0}), images)
    for _ in range(3):
        out = gan.train_step()
    last = dict(zip(gan.names, gan.last.numpy()))
    assert last["g_loss"] == pytest.approx(float(out["g_loss"]))
    gan.checkpoint().write(str(tmp_path / "ckpt"))
    again = Engine(tiny(**SUMMED, **{"train.d_skip_ratio": 10.0}), images)
    again.checkpoint().read(str(tmp_path / "ckpt")).assert_consumed()
    np.testing.assert_array_equal(again.family.skips.numpy(), gan.family.skips.numpy())


def test_g_stepped_twice_on_the_same_z(images):
    gan = Engine(tiny(**SUMMED, **{"train.g_steps": 2}), images)
    gan.train_step()
    assert (gan.family.g_optim.iterations.numpy(), gan.family.d_optim.iterations.numpy()) == (2, 1)


def first_bn_mean(gan: Engine) -> np.ndarray:
    layer = next(lay for lay in gan.family.generator.layers if "batch_norm" in lay.name)
    return layer.moving_mean.numpy()


def test_same_fakes_moves_g_statistics_once_and_same_z_twice(images):
    """From moving mean 0, one update gives (1 - m) mu and two (1 - m)(1 + m) mu, mu the batch
    mean, the same in both runs (same weights, same z): their ratio is 1 + m."""
    settings = {**SUMMED, "model.bn_momentum": 0.3}
    once = Engine(tiny(**settings, **{"train.g_input": "same_fakes"}), images)
    twice = Engine(tiny(**settings, **{"train.g_input": "same_z"}), images)
    once.train_step()
    twice.train_step()
    a, b = first_bn_mean(once), first_bn_mean(twice)
    big = np.abs(a) > 1e-4
    assert big.sum() > 100
    np.testing.assert_allclose(b[big], 1.3 * a[big], rtol=1e-4)


@pytest.mark.parametrize("mode, moves", [("frozen", False), ("updated", True)])
def test_d_statistics_in_g_step(images, mode, moves):
    gan = Engine(tiny(**SUMMED, **{"train.g_step_d_stats": mode}), images)
    d = gan.family.discriminator
    draws = gan.family.draw(gan.rng, 8)
    stats = [w.numpy().copy() for w in d.non_trainable_weights]
    weights = [w.numpy().copy() for w in d.trainable_weights]
    gan.family.run_phase("g", None, draws, gan.context)
    assert any(not np.array_equal(a, w.numpy())
               for a, w in zip(stats, d.non_trainable_weights)) == moves
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(weights, d.trainable_weights))


def test_fresh_z_gives_g_its_own_latents(images):
    draws = Engine(tiny(**{"train.g_input": "fresh_z"}), images).family.draw(
        tf.random.Generator.from_seed(0), 8).per_sample
    assert draws["g_z"].shape == draws["z"].shape
    assert not np.allclose(draws["g_z"].numpy(), draws["z"].numpy())
    same = Engine(tiny(), images).family.draw(tf.random.Generator.from_seed(0), 8).per_sample
    assert "g_z" not in same  # the reference draws what it always drew


def test_l2_adds_its_gradient_to_every_kernel_by_hand(images):
    """Under SGD, a kernel w moves by -lr (dBCE/dw + 2 l2 w): the run with L2 minus the run
    without is -lr 2 l2 w0, and biases and BatchNorm's scale see no penalty."""
    lr, l2 = 0.05, 0.01
    runs = []
    for weight in (0.0, l2):
        gan = Engine(tiny(**SUMMED, **{"d_optim.name": "sgd", "d_optim.learning_rate": lr,
                                       "train.l2": weight}), images)
        d = gan.family.discriminator
        before = [(w.path.endswith("kernel"), w.numpy().copy()) for w in d.trainable_weights]
        draws = gan.family.draw(tf.random.Generator.from_seed(1), 8)
        reals = tf.cast(images[:8], tf.float32) / 127.5 - 1
        gan.family.run_phase("d", reals, draws, gan.context)
        runs.append([w.numpy() for w in d.trainable_weights])
    assert sum(kernel for kernel, _ in before) == 3  # two convs and the Dense at 16 px
    for (kernel, w0), plain, penalised in zip(before, *runs):
        expected = -lr * 2 * l2 * w0 if kernel else 0.0
        np.testing.assert_allclose(penalised - plain, expected, atol=2e-6)


def test_l2_penalty_by_hand(images):
    gan = Engine(tiny(**{"train.l2": 0.5}), images)
    g = gan.family.generator
    kernels = [w.numpy() for w in g.trainable_weights if w.path.endswith("kernel")]
    assert len(kernels) == 4  # stem, one up-sampling block at 16 px, the 3x3 conv, the output
    assert float(gan.family.penalty(g)) == pytest.approx(
        0.5 * sum(float(np.sum(k.astype(np.float64) ** 2)) for k in kernels), rel=1e-5)


# --- latents and initializers ------------------------------------------------------------------


def test_uniform_latents_cover_minus_one_to_one(images):
    z = Engine(tiny(**{"model.noise": "uniform"}), images).family.latents(
        tf.random.Generator.from_seed(0), 4000).numpy()
    assert z.min() >= -1.0 and z.max() < 1.0
    assert z.mean() == pytest.approx(0.0, abs=0.01) and z.var() == pytest.approx(1 / 3, rel=0.02)


def test_the_sources_initializers_with_their_parameters():
    cfg = config_lib.load("carpedm20")
    g, d = build_generator(cfg.model), build_discriminator(cfg.model)
    g_kernel = g.layers[2].kernel.numpy()  # the Dense stem, N(0, 0.02)
    assert g_kernel.std() == pytest.approx(0.02, rel=0.02) and np.abs(g_kernel).max() > 0.08
    d_kernel = next(lay for lay in d.layers if "conv" in lay.name and lay.filters == 512).kernel
    d_kernel = d_kernel.numpy()
    # Truncated at 2 standard deviations: nothing beyond 0.04, and a std of 0.02 x 0.88.
    assert np.abs(d_kernel).max() <= 0.04 and d_kernel.std() == pytest.approx(0.0176, rel=0.02)
    biases = [w.numpy() for w in g.weights + d.weights if w.path.endswith("bias")]
    assert all(not b.any() for b in biases)
    seed003 = config_lib.load("seed003").model
    gammas = [lay.gamma.numpy() for lay in build_generator(seed003).layers if hasattr(lay, "gamma")]
    allg = np.concatenate(gammas)
    assert allg.mean() == pytest.approx(1.0, abs=0.003) and allg.std() == pytest.approx(0.02,
                                                                                       rel=0.1)


def test_pytorch_default_init_bound_uses_the_output_channels_of_a_transposed_conv():
    """kaiming_uniform(a = sqrt 5): U(+-1/sqrt(fan_in)); for a ConvTranspose2d PyTorch's fan_in is
    its weight's dimension 1, the output channels, times k x k."""
    g = build_generator(config_lib.load("seed002").model)
    tconv = [lay for lay in g.layers if hasattr(lay, "kernel")][1]  # 512 -> 256, 4x4
    bound = 1 / np.sqrt(256 * 16)
    k = tconv.kernel.numpy()
    assert k.shape == (4, 4, 256, 512)
    assert np.abs(k).max() <= bound and np.abs(k).max() > 0.99 * bound
    assert k.std() == pytest.approx(bound / np.sqrt(3), rel=0.01)


def test_each_layer_gets_its_own_draw():
    g = build_generator(config_lib.load("seed003").model)
    shapes = [lay.kernel.numpy() for lay in g.layers if hasattr(lay, "kernel")]
    assert len({float(k.ravel()[0]) for k in shapes}) == len(shapes)


# --- experiment files ----------------------------------------------------------------------------


def test_an_experiment_builds_on_its_base(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text('[experiment]\nbase = "seed002"\n[train]\nsteps = 7\n')
    cfg = config_lib.load(child)
    parent = config_lib.load("seed002")
    assert cfg.train.steps == 7 and cfg.train.batch_size == parent.train.batch_size == 128
    assert cfg.model == parent.model
    loop = tmp_path / "loop.toml"
    loop.write_text(f'[experiment]\nbase = "{loop}"\n[train]\nsteps = 7\n')
    with pytest.raises(ConfigError, match="loop.toml: \\[experiment\\] base = .* leads back"):
        config_lib.load(loop)


def test_a_d_skip_run_logs_and_plots_the_share_of_skipped_updates(tmp_path, images):
    from keras_ganime.training.loop import fit, new_run

    cfg = config_lib.load("carpedm20-dskip", [
        "model.image_size=16", "model.latent_dim=8", "train.batch_size=8", "train.steps=6",
        "output.log_every=1", "output.sample_every=3", "output.checkpoint_every=3",
        f'output.runs_dir="{tmp_path}"'])
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False)
    rows = run.read_losses()
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    shares = [r["d_skipped"] for r in rows]
    # Logged every step, the share is of that step alone: skipped or not.
    assert set(shares) <= {0.0, 1.0}
    assert "d_skipped" in (run.path / "loss.csv").read_text().splitlines()[0]
    assert (run.path / "loss.png").stat().st_size > 1000


def test_seed004_is_seed002_at_its_own_batch_and_length():
    """So that seed 004 needs no learning test of its own: at the learning tests' batch of 16 the
    two are the same run."""
    a, b = config_lib.flatten(config_lib.load("seed002")), config_lib.flatten(
        config_lib.load("seed004"))
    assert {k for k in a if a[k] != b[k]} == {"train.batch_size", "train.steps", "output.name",
                                              "output.milestones"}
