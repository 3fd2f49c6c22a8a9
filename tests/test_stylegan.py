"""The StyleGAN family: its networks against hand counts, R1 against finite differences, w_avg
and the EMA generator by hand, truncation and style mixing, R1's lazy schedule, its FLOPs, its
SavedModel, and a run through the loop and the command lines."""

import filecmp
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_ganime import config as config_lib
from keras_ganime.engines.tensorflow import Engine, StepContext
from keras_ganime.families import stylegan
from keras_ganime.families.stylegan_settings import num_ws, ws_of
from keras_ganime.settings import ConfigError

# 16x16 (4, 8, 16 px), z = w = 8: the family's code paths at test speed.
TINY = ['model.family="stylegan"', "model.image_size=16", 'model.channels="16,16,8"',
        "model.latent_dim=8", "model.w_dim=8", "train.batch_size=8"]


def tiny(*more: str) -> config_lib.Config:
    return config_lib.load(None, [*TINY, *more])


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)


# --- parameter counts --------------------------------------------------------------------------


def modulated(c_in: int, c_out: int, w: int, k: int = 3) -> int:
    """k x k x c_in x c_out weights + c_out biases, the style's dense w x c_in + c_in, and one
    noise strength."""
    return k * k * c_in * c_out + c_out + w * c_in + c_in + 1


def to_rgb(c_in: int, w: int) -> int:
    """A 1x1 modulated conv to 3 channels without noise."""
    return c_in * 3 + 3 + w * c_in + c_in


def synthesis(widths: list[int], w: int) -> list[int]:
    """The constant, the 4x4 conv and its ToRGB, then per resolution two convs and a ToRGB."""
    out = [4 * 4 * widths[0], modulated(widths[0], widths[0], w), to_rgb(widths[0], w)]
    for c_in, c in itertools.pairwise(widths):
        out += [modulated(c_in, c, w), modulated(c, c, w), to_rgb(c, w)]
    return out


def mapping(z: int, w: int, layers: int) -> list[int]:
    return [z * w + w] + [w * w + w] * (layers - 1)


def discriminator(widths: list[int]) -> dict[str, int]:
    """FromRGB 1x1; per resolution from the top down to 8: a 1x1 skip without bias, a 3x3 conv
    and a 3x3 conv to the next width; at 4x4 a 3x3 conv on c + 1 channels (the minibatch
    standard deviation), a dense from 4 x 4 x c to c and a dense to one logit."""
    out = {"from_rgb": 3 * widths[-1] + widths[-1]}
    for r in range(len(widths) - 1, 0, -1):
        c, below = widths[r], widths[r - 1]
        out |= {f"skip{r}": c * below, f"conv{r}a": 9 * c * c + c,
                f"conv{r}b": 9 * c * below + below}
    c = widths[0]
    return out | {"conv0": 9 * (c + 1) * c + c, "fc": 16 * c * c + c, "logit": c + 1}


def g_per_layer(g) -> list[int]:
    s = g.synthesis
    out = [int(np.prod(s.const.shape)), s.convs[0].count_params(), s.to_rgb[0].count_params()]
    for r in range(1, len(s.to_rgb)):
        out += [s.convs[2 * r - 1].count_params(), s.convs[2 * r].count_params(),
                s.to_rgb[r].count_params()]
    return out


def d_per_layer(d) -> dict[str, int]:
    return {layer.name: layer.count_params() for layer in d.layers if layer.weights}


@pytest.mark.parametrize("experiment, extra", [
    ("stylegan-lite", ()), ("stylegan-seed003", ()),
    ("stylegan-lite", ("model.image_size=32", 'model.channels="64,64,64,32"',
                       "model.latent_dim=64", "model.w_dim=64"))])  # the learning test's size
def test_parameter_counts_per_layer(experiment, extra):
    cfg = config_lib.load(experiment, list(extra)).model
    widths = [int(c) for c in cfg.channels.split(",")]
    g, d = stylegan.build_generator(cfg), stylegan.build_discriminator(cfg)
    assert [layer.count_params() for layer in g.mapping.layers if layer.weights] == mapping(
        cfg.latent_dim, cfg.w_dim, cfg.mapping_layers)
    assert g_per_layer(g) == synthesis(widths, cfg.w_dim)
    trainable = sum(int(np.prod(v.shape)) for v in g.trainable_variables)
    assert trainable == sum(mapping(cfg.latent_dim, cfg.w_dim, cfg.mapping_layers)) + sum(
        synthesis(widths, cfg.w_dim))
    # The fixed noise is kept, not trained: one image per conv.
    noise = sum(int(np.prod(v.shape)) for v in g.non_trainable_variables)
    assert noise == 16 + 2 * sum((4 << r) ** 2 for r in range(1, len(widths)))
    assert d_per_layer(d) == discriminator(widths)


def test_the_lite_layout_counts_as_the_reference_sheet():
    """By hand, layer by layer: synthesis 4,955,352; with 2 mapping layers 5,480,664, with 4
    6,005,976."""
    for layers, total in ((2, 5_480_664), (4, 6_005_976)):
        cfg = config_lib.load("stylegan-lite", [f"model.mapping_layers={layers}"]).model
        g = stylegan.build_generator(cfg)
        assert sum(int(np.prod(v.shape)) for v in g.synthesis.trainable_variables) == 4_955_352
        assert sum(int(np.prod(v.shape)) for v in g.trainable_variables) == total


def test_ten_ws_at_64_and_the_named_layer_ranges():
    assert num_ws(64) == 10 and num_ws(32) == 8 and num_ws(16) == 6
    assert [ws_of(n, 64) for n in ("coarse", "middle", "fine", "2-5", "9-9")] == [
        (0, 4), (4, 8), (8, 10), (2, 6), (9, 10)]
    for bad, message in (("fine", "none at 32x32"), ("3-8", "outside the 8 w's"),
                         ("x", "coarse, middle, fine or A-B")):
        with pytest.raises(ValueError, match=message):
            ws_of(bad, 32)


# --- the step's parts by hand ------------------------------------------------------------------


def tiny_d(group: int = 4) -> tf.keras.Model:
    cfg = config_lib.load(None, ['model.family="stylegan"', "model.image_size=8",
                                 'model.channels="4,4"', f"model.mbstd_group={group}",
                                 "train.batch_size=4"]).model
    tf.keras.utils.set_random_seed(3)
    return stylegan.build_discriminator(cfg)


def r1_penalty(d, x: tf.Tensor) -> tf.Tensor:
    _, grad = StepContext(1).input_gradient(lambda v: d(v, training=True), x)
    return tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))


def test_r1_against_finite_differences():
    """D's input gradient, which R1 squares, against central differences of D at six pixels; and
    R1's own gradient with respect to a weight (the double backward pass) against central
    differences of R1 in that weight."""
    d = tiny_d()
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)), tf.float32)
    _, grad = StepContext(1).input_gradient(lambda v: d(v, training=True), x)
    eps = 1e-2
    for index in [(0, 0, 0, 0), (1, 3, 4, 1), (2, 7, 7, 2), (3, 5, 2, 0), (0, 4, 4, 1),
                  (3, 0, 7, 2)]:
        step = np.zeros(x.shape, np.float32)
        step[index] = eps
        diff = (tf.reduce_sum(d(x + step)) - tf.reduce_sum(d(x - step))) / (2 * eps)
        assert float(grad[index]) == pytest.approx(float(diff), rel=2e-2, abs=1e-4), index
    kernel = d.get_layer("conv0").kernel
    with tf.GradientTape() as tape:
        penalty = r1_penalty(d, x)
    analytic = tape.gradient(penalty, kernel).numpy()
    original = kernel.numpy()
    for index in [(0, 0, 0, 0), (1, 1, 2, 3), (2, 1, 4, 1)]:
        values = []
        for sign in (1, -1):
            moved = original.copy()
            moved[index] += sign * eps
            kernel.assign(moved)
            values.append(float(r1_penalty(d, x)))
        kernel.assign(original)
        assert analytic[index] == pytest.approx((values[0] - values[1]) / (2 * eps),
                                                rel=3e-2, abs=1e-5), index
    assert float(penalty) > 0


def test_r1_phase_steps_d_by_its_scaled_gradient(images):
    """The r1 phase under SGD: every D weight moves by lr x (gamma / 2) x r1_every x R1's
    gradient, and the phase reports R1 unscaled."""
    cfg = tiny("d_optim.name=sgd", "d_optim.learning_rate=0.1", "stylegan.r1_gamma=2.0")
    gan = Engine(cfg, images)
    family, d = gan.family, gan.family.discriminator
    reals = tf.constant(np.random.default_rng(1).uniform(-1, 1, (8, 16, 16, 3)), tf.float32)
    with tf.GradientTape() as tape:
        penalty = r1_penalty(d, reals)
    grads = tape.gradient(penalty, d.trainable_variables)
    before = [v.numpy() for v in d.trainable_variables]
    lr = 0.1 * 16 / 17  # D's rate with the lazy correction
    out = family.run_phase("r1", reals, family.draw(gan.rng, 8), StepContext(1))
    assert float(out["r1"]) == pytest.approx(float(penalty), rel=1e-5)
    for v, b, g in zip(d.trainable_variables, before, grads):
        expected = b - lr * (2.0 / 2 * 16) * (0 if g is None else g.numpy())
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-4, atol=1e-6, err_msg=v.path)


def test_each_replica_needs_whole_minibatch_stddev_groups():
    with pytest.raises(ConfigError, match="gives each of the 4 replicas 2 images, not a "
                                          "multiple of model.mbstd_group 4"):
        stylegan.Family(tiny(), stylegan.base.Build(replicas=4))


def test_d_optimizer_takes_the_lazy_correction():
    family = stylegan.Family(tiny(), stylegan.base.Build())
    c = 16 / 17
    assert float(family.d_optim.learning_rate) == pytest.approx(0.0025 * c)
    assert family.d_optim.beta_2 == pytest.approx(0.99 ** c)
    assert float(family.g_optim.learning_rate) == pytest.approx(0.0025)
    assert family.cfg.d_optim.learning_rate == 0.0025  # the settings stay as written


@pytest.fixture(scope="module")
def thirty_three_steps(images):
    """33 steps, with each step's batch-mean w (G's pass's first z, by the mapping after the
    step) taken from a copy of the random generator made before it, and G's and G_ema's
    weights (trainable) after steps 1, 19 and 20."""
    gan = Engine(tiny(), images)
    family = gan.family
    r1, means, weights = [], [], {}
    for step in range(1, 34):
        twin = tf.random.Generator.from_state(gan.rng.state.numpy(), gan.rng.algorithm)
        values = gan.train_step()
        z = family.draw(twin, 8).per_sample["g_z"]
        means.append(np.mean(family.generator.mapping(z).numpy(), axis=0))
        r1.append(float(values["r1"]))
        if step in (1, 19, 20):
            weights[step] = [[v.numpy() for v in g.trainable_variables]
                             for g in (family.generator, family.generator_ema)]
    return gan, r1, means, weights


def test_r1_runs_on_steps_0_16_32_only(thirty_three_steps):
    _, r1, _, _ = thirty_three_steps
    assert [i for i, v in enumerate(r1) if np.isfinite(v)] == [0, 16, 32]


def test_w_avg_is_a_hand_ema_of_the_batch_mean_w_and_survives_save_and_load(
        thirty_three_steps, images, tmp_path):
    gan, _, means, _ = thirty_three_steps
    hand = np.zeros(8, np.float32)
    for mean in means:
        hand = mean + (hand - mean) * 0.995
    w_avg = gan.family.w_avg.numpy()
    np.testing.assert_allclose(w_avg, hand, rtol=1e-5, atol=1e-7)
    assert np.abs(w_avg).max() > 1e-3
    path = gan.checkpoint().write(str(tmp_path / "ckpt"))
    other = Engine(tiny(), images)
    assert not np.array_equal(other.family.w_avg.numpy(), w_avg)
    other.checkpoint().read(path).assert_consumed()
    np.testing.assert_array_equal(other.family.w_avg.numpy(), w_avg)


def test_the_checkpoint_holds_every_weight_of_every_network(thirty_three_steps, images,
                                                           tmp_path):
    """Both generators (their fixed noise too), D, both optimizers and w_avg come back whole
    into a fresh engine of another seed."""
    gan = thirty_three_steps[0]
    path = gan.checkpoint().write(str(tmp_path / "ckpt"))
    other = Engine(tiny("train.seed=9"), images)
    other.checkpoint().read(path).assert_consumed()
    pairs = [(a, b) for name, net in gan.family.networks.items()
             for a, b in zip(net.weights, other.family.networks[name].weights, strict=True)]
    pairs += [(a, b) for name, opt in gan.family.optimizers.items()
              for a, b in zip(opt.variables, other.family.optimizers[name].variables,
                              strict=True)]
    assert len(pairs) > 100
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_the_ema_generator_by_hand(thirty_three_steps):
    """G_ema <- G + (G_ema - G) beta after each step, beta from the half-life min(10,000,
    0.05 x the images seen before the step): 0 at the first step (G_ema becomes G), and
    0.5^(8 / (0.05 x 8 x 19)) = 0.48 at the twentieth."""
    gan, _, _, weights = thirty_three_steps
    g_1, ema_1 = weights[1]
    for e, v in zip(ema_1, g_1, strict=True):
        np.testing.assert_array_equal(e, v)
    _, ema_19 = weights[19]
    g_20, ema_20 = weights[20]
    beta = 0.5 ** (8 / (0.05 * 8 * 19))
    assert float(gan.family.ema_beta(19)) == pytest.approx(beta) and 0.4 < beta < 0.6
    for e, v, old in zip(ema_20, g_20, ema_19, strict=True):
        np.testing.assert_allclose(e, v + (old - v) * beta, rtol=1e-5, atol=1e-6)
    assert max(float(np.abs(e - v).max()) for e, v in zip(ema_20, g_20)) > 1e-4  # it lags G
    without_rampup = stylegan.Family(tiny("stylegan.ema_rampup=0"), stylegan.base.Build())
    assert float(without_rampup.ema_beta(19)) == pytest.approx(0.5 ** (8 / 10000))


# --- sampling ----------------------------------------------------------------------------------


def test_truncation(thirty_three_steps):
    """psi 1 leaves w as it is; psi 0 gives w_avg's image for every z; 0.5 differs from both."""
    family = thirty_three_steps[0].family
    z = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    plain = family.generator_ema(z).numpy()
    np.testing.assert_allclose(family.sampler(1.0)(z).numpy(), plain, atol=1e-6)
    average = family.generator_ema.synthesis(
        family.generator_ema.broadcast(family.w_avg.numpy()[None])).numpy()[0]
    at_zero = family.sampler(0.0)(z).numpy()
    for image in at_zero:
        np.testing.assert_allclose(image, average, atol=1e-5)
    half = family.sampler(0.5)(z).numpy()
    assert np.abs(half - plain).mean() > 1e-3 and np.abs(half - at_zero).mean() > 1e-3
    # A cutoff truncates only the layers before it.
    ws = family.truncated(family.generator_ema.mapping(z), 0.0, cutoff=2).numpy()
    np.testing.assert_allclose(ws[:, :2], np.broadcast_to(family.w_avg.numpy(), (4, 2, 8)),
                               atol=1e-6)
    np.testing.assert_allclose(ws[:, 2:], np.repeat(
        family.generator_ema.mapping(z).numpy()[:, None], num_ws(16) - 2, axis=1), atol=1e-6)


def test_fixed_noise_by_default_random_on_request(thirty_three_steps):
    family = thirty_three_steps[0].family
    z = np.random.default_rng(6).standard_normal((2, 8)).astype(np.float32)
    fixed = family.sampler()
    np.testing.assert_array_equal(fixed(z).numpy(), fixed(z).numpy())
    noisy = family.sampler(noise="random")
    assert np.abs(noisy(z).numpy() - fixed(z).numpy()).max() > 0  # the noise strengths moved


def test_style_mixing_switches_at_the_crossover(thirty_three_steps):
    family = thirty_three_steps[0].family
    g = family.generator
    rng = np.random.default_rng(7)
    z, z2 = (rng.standard_normal((3, 8)).astype(np.float32) for _ in range(2))
    ws = family.mixed(g, z, z2, tf.constant(2)).numpy()
    w, w2 = g.mapping(z).numpy(), g.mapping(z2).numpy()
    for layer in range(num_ws(16)):
        np.testing.assert_array_equal(ws[:, layer], w if layer < 2 else w2)
    unmixed = family.mixed(g, z, z2, tf.constant(num_ws(16))).numpy()
    np.testing.assert_array_equal(unmixed, np.repeat(w[:, None], num_ws(16), axis=1))
    # A mixing grid's cell: the destination's styles but the source's in [first, last).
    ema = family.generator_ema
    cell = family.mix(z, z2, 2, 4).numpy()
    we, we2 = ema.mapping(z).numpy(), ema.mapping(z2).numpy()
    hand = np.repeat(we[:, None], num_ws(16), axis=1)
    hand[:, 2:4] = we2[:, None]
    np.testing.assert_allclose(cell, ema.synthesis(hand).numpy(), rtol=1e-5, atol=1e-5)


def test_the_draws_mix_about_nine_batches_in_ten(images):
    family = Engine(tiny(), images).family
    rng = tf.random.Generator.from_seed(0)
    crossovers = [int(family.draw(rng, 8).per_batch["g_crossover"]) for _ in range(200)]
    unmixed = crossovers.count(num_ws(16)) / 200
    assert 0.04 < unmixed < 0.16, unmixed  # 0.1 +- 3 standard deviations of 200 draws
    assert set(crossovers) == set(range(1, num_ws(16) + 1))


# --- settings, FLOPs, export -------------------------------------------------------------------


@pytest.mark.parametrize("setting, message", [
    ('model.channels="16,16"', "model.channels needs 3 positive widths"),
    ('model.channels="16,x,8"', "model.channels must be integers separated by commas"),
    ("model.image_size=12", "a power of two from 8 to 1024"),
    ("train.batch_size=6", "must be a multiple of model.mbstd_group 4"),
    ("stylegan.mixing_prob=1.5", "stylegan.mixing_prob must be in [0, 1]"),
    ('train.mixed_precision="bfloat16"', "runs in float32 only"),
    ("stylegan.r1_every=0", "stylegan.r1_every must be positive")])
def test_bad_stylegan_settings_are_one_line_errors(setting, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as e:
        tiny(setting)
    assert "\n" not in str(e.value)


def test_step_flops_by_hand():
    """stylegan-lite at 64x64 by hand: multiply-adds per layer at its output size (the style
    dense of each modulated conv, and its demodulation's c_in x c_out, included), x 2."""
    from keras_ganime.bench import experiment_flops
    from keras_ganime.families.base import forward_flops

    widths, w = [256, 256, 256, 128, 64], 512
    mapping_ma = 2 * 512 * 512

    def modconv(size, c_in, c_out, k=3, demod=True):
        return size * size * k * k * c_in * c_out + w * c_in + (c_in * c_out if demod else 0)

    synth = modconv(4, 256, 256) + modconv(4, 256, 3, 1, False)
    for r in range(1, 5):
        size, c_in, c = 4 << r, widths[r - 1], widths[r]
        synth += modconv(size, c_in, c) + modconv(size, c, c) + modconv(size, c, 3, 1, False)
    d_ma = 64 * 64 * 3 * 64
    for r in range(4, 0, -1):
        size, c, below = 4 << r, widths[r], widths[r - 1]
        d_ma += (size // 2) ** 2 * c * below + size * size * 9 * c * c + (
            size // 2) ** 2 * 9 * c * below
    d_ma += 16 * 9 * 257 * 256 + 16 * 256 * 256 + 256
    g_flops, d_flops = 2 * (mapping_ma + synth), 2 * d_ma
    assert experiment_flops("stylegan-lite") == 4 * g_flops + 9 * d_flops + 5 * d_flops // 16
    cfg = config_lib.load("stylegan-lite").model
    assert forward_flops(stylegan.build_generator(cfg)) == 2 * (mapping_ma + synth)
    assert forward_flops(stylegan.build_discriminator(cfg)) == 2 * d_ma


BLOCKED = """
import sys
sys.modules["keras_ganime"] = None  # keras_ganime cannot be imported here
import json, numpy as np, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
z = np.load(sys.argv[2])
out = {str(psi): model.generate(tf.constant(z), tf.constant(psi)).numpy().tolist()
       for psi in (1.0, 0.5)}
print(json.dumps(out))
"""


def test_the_savedmodel_generates_as_the_ema_generator_without_keras_ganime(
        thirty_three_steps, tmp_path):
    family = thirty_three_steps[0].family
    family.export(tmp_path / "g.savedmodel")
    z = np.random.default_rng(8).standard_normal((3, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    script = tmp_path / "load.py"
    script.write_text(BLOCKED)
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "g.savedmodel"),
                             str(tmp_path / "z.npy")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.splitlines()[-1])
    for psi in (1.0, 0.5):
        np.testing.assert_allclose(np.array(out[str(psi)]), family.sampler(psi)(z).numpy(),
                                   atol=1e-5)
    assert not math.isclose(np.abs(np.array(out["1.0"]) - np.array(out["0.5"])).mean(), 0)


# --- a run, the command lines, a kill ----------------------------------------------------------


@pytest.fixture(scope="module")
def stylegan_run(tmp_path_factory, images):
    from keras_ganime.evaluation.scorer import Evaluator
    from keras_ganime.training.loop import fit, new_run

    root = tmp_path_factory.mktemp("stylegan")
    cfg = tiny("train.steps=4", "output.log_every=1", "output.sample_every=2",
               "output.checkpoint_every=2", 'output.milestones="2"', "eval.every=2",
               'eval.metrics="swd"', "eval.samples=16", f'output.runs_dir="{root}"')
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False, evaluator=Evaluator(cfg, images))
    return run.path


def test_a_run_logs_plots_scores_and_exports(stylegan_run):
    header = (stylegan_run / "loss.csv").read_text().splitlines()[0].split(",")
    assert header == ["step", "d_loss", "g_loss", "r1", "real_logit", "fake_logit",
                      "images_per_s", "wall_s"]
    assert (stylegan_run / "loss.png").is_file() and (stylegan_run / "metrics.csv").is_file()
    assert sorted(p.name for p in (stylegan_run / "samples").iterdir()) == [
        "0000002.png", "0000004.png"]
    for saved in (stylegan_run / "generator.savedmodel",
                  stylegan_run / "milestones" / "0000002.savedmodel"):
        assert (saved / "saved_model.pb").is_file(), saved
    assert not list(stylegan_run.rglob(".*.tmp*")) + list(stylegan_run.rglob(".*.old*"))


def cells(path, rows: int, cols: int, size: int = 16) -> np.ndarray:
    """The images of a viz.save_grid picture (1 px apart and around), (rows, cols, ...)."""
    from PIL import Image

    picture = np.asarray(Image.open(path))
    assert picture.shape[:2] == (rows * (size + 1) + 1, cols * (size + 1) + 1), picture.shape
    return np.stack([[picture[1 + r * (size + 1):(r + 1) * (size + 1),
                              1 + c * (size + 1):(c + 1) * (size + 1)] for c in range(cols)]
                     for r in range(rows)])


def test_generate_truncation_cutoff_and_noise_each_apply(stylegan_run, tmp_path):
    from PIL import Image

    from keras_ganime import generate

    def faces(*options: str) -> np.ndarray:
        out = tmp_path / "-".join(options or ("plain",))
        assert generate.main([str(stylegan_run), "--n", "8", *options, "--out", str(out)]) == 0
        return np.stack([np.asarray(Image.open(p)) for p in sorted(out.glob("0*.png"))])

    plain = faces()
    np.testing.assert_array_equal(plain, faces())  # the noise fixed, the latents seeded
    pulled = faces("--truncation", "0.2")
    cut = faces("--truncation", "0.2", "--truncation-cutoff", "2")
    noisy = faces("--noise", "random")
    for a, b in ((plain, pulled), (pulled, cut), (plain, cut), (plain, noisy)):
        assert np.abs(a.astype(int) - b).mean() > 0.5
    # seed 003's strip: psi 1 is the plain faces, psi 0 one face for every z
    assert generate.main([str(stylegan_run), "--truncation-strip", "--out", str(tmp_path)]) == 0
    strip = cells(tmp_path / "truncation.png", 8, 6)
    np.testing.assert_array_equal(strip[:, 0], plain)
    assert (strip[:, 3] == strip[0, 3]).all() and not (strip[:, 0] == strip[0, 0]).all()


def test_generate_style_mixing_grid(stylegan_run, tmp_path):
    """Row 0: a blank, then the sources; column 0: the destinations; a cell differs from its
    destination, and with w's 0-5 (all) of its source it is its source."""
    from keras_ganime import generate

    for layers in ("coarse", "0-5"):
        assert generate.main([str(stylegan_run), "--style-mix", layers, "--out",
                              str(tmp_path)]) == 0
    grid = cells(tmp_path / "style-mix-coarse.png", 6, 6).astype(int)
    assert (grid[0, 0] == 0).all()
    assert np.abs(grid[1:, 1:] - grid[1:, :1]).mean() > 0.5
    whole = cells(tmp_path / "style-mix-0-5.png", 6, 6).astype(int)
    np.testing.assert_array_equal(whole[1:, 1:], np.broadcast_to(whole[:1, 1:], (5, 5, 16, 16, 3)))


@pytest.mark.parametrize("args, message", [
    (["--style-mix", "fine"], "--style-mix: layers fine (64 to 1024 px): none at 16x16"),
    (["--truncation", "0.5", "--truncation-cutoff", "7"],
     "--truncation-cutoff 7 is outside [1, 6]"),
    (["--style-mix", "coarse", "--noise", "random"], "leave out --noise random"),
    (["--truncation-strip", "--truncation", "0.5"], "leave out --truncation"),
    (["--truncation-cutoff", "2"], "--truncation-cutoff needs --truncation PSI")])
def test_bad_stylegan_options_are_one_line_errors(stylegan_run, tmp_path, capsys, args, message):
    from keras_ganime import generate

    assert generate.main([str(stylegan_run), *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_options_a_dcgan_cannot_honour_are_one_line_errors(tmp_path, capsys):
    from keras_ganime import generate
    from keras_ganime.training.loop import fit, new_run
    from tests.helpers import random_images
    from tests.helpers import tiny as tiny_dcgan

    cfg = tiny_dcgan(**{"train.steps": 1, "output.runs_dir": str(tmp_path)})
    with new_run(cfg) as run:
        fit(Engine(cfg, random_images()), run, progress=False)
    for option in (["--truncation", "0.7"], ["--truncation-strip"], ["--style-mix", "coarse"],
                   ["--noise", "random"]):
        assert generate.main([str(run.path), *option, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert "the dcgan family has no" in err and err.count("\n") == 1, err


def test_evaluate_animate_and_report_on_a_stylegan_run(stylegan_run, tmp_path, capsys):
    from keras_ganime import animate, evaluate, report

    assert evaluate.main([str(stylegan_run), "--metrics", "swd", "--samples", "16",
                          "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["step"] == 4
    assert animate.main([str(stylegan_run)]) == 0
    assert report.main(["--runs", str(stylegan_run.parent), "--out", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert "The GAN Versus report&#x27;s FID 39.4 was measured with Inception features" in page
    # a preset's source, as its file writes it (NVlabs, not nvlabs)
    assert report.sentence_case(report.who_says("stylegan-lite")) == (
        "\"GAN Versus: Anime Faces\" (NVlabs' StyleGAN), made small")


@pytest.mark.long
def test_sigkill_then_resume_ends_bit_for_bit_as_one_go(tmp_path, images):
    """20 steps (R1 at steps 0 and 16, the EMA and w_avg every step), augmented with an adaptive
    p, killed after step 10 and resumed from its checkpoint at step 8, against the same run in
    one go."""
    from keras_ganime.data import write_h5
    from keras_ganime.runs import RunDir
    from tests.helpers import AUGMENTED, as_set, assert_same_end
    from tests.test_torture import run_dir, train

    data = tmp_path / "d.h5"
    write_h5(data, images, np.zeros(len(images)), [], ["x"] * len(images))

    def args(runs) -> list[str]:
        settings = [*TINY, *as_set(AUGMENTED), "output.log_every=1", "output.checkpoint_every=4",
                    "output.sample_every=5", 'output.milestones=""', f'output.runs_dir="{runs}"']
        return ["--data", str(data), "--steps", "20", *(x for s in settings for x in ("--set", s))]

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert train(whole, args(whole), None).returncode == 0
    done = train(killed, args(killed), "step:10")
    assert done.returncode == -9, done.stderr[-2000:]
    done = train(killed, ["--resume", str(run_dir(killed))], None)
    assert done.returncode == 0, done.stderr[-2000:]
    with RunDir(run_dir(whole)) as a, RunDir(run_dir(killed)) as b:
        assert_same_end(a, b)
    # The grids are the EMA generator's, with its fixed noise: made again after the resume.
    frames = sorted(p.name for p in (run_dir(whole) / "samples").iterdir())
    assert frames == ["0000005.png", "0000010.png", "0000015.png", "0000020.png"]
    _, mismatch, errors = filecmp.cmpfiles(run_dir(whole) / "samples",
                                           run_dir(killed) / "samples", frames, shallow=False)
    assert not mismatch and not errors
