"""The fused BatchNorm against Keras's own layer: the same outputs, moving statistics and
gradients, and the same training step; saved generators carry Keras's layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ganime import config as config_lib
from keras_ganime.data.synthetic import draw_faces
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.families.batchnorm import FusedBatchNormalization
from keras_ganime.families.dcgan import build_discriminator, build_generator
from keras_ganime.families.dcgan_settings import DCGANModel


def pair(shape: tuple[int, ...], dtype: str = "float32", epsilon: float = 1e-3):
    """A Keras layer and a fused one with the same non-trivial weights, and those weights."""
    plain = keras.layers.BatchNormalization(momentum=0.3, epsilon=epsilon, dtype=dtype)
    fused = FusedBatchNormalization(momentum=0.3, epsilon=epsilon, dtype=dtype)
    rng = np.random.default_rng(0)
    c = shape[-1]
    weights = [rng.uniform(0.5, 2, c), rng.normal(0, 1, c), rng.normal(0, 1, c),
               rng.uniform(0.5, 2, c)]  # gamma, beta, moving mean, moving variance
    for layer in (plain, fused):
        layer.build(shape)
        layer.set_weights([w.astype("float32") for w in weights])
    return plain, fused, weights


def batch(shape: tuple[int, ...]) -> tf.Tensor:
    # Off-centre and scaled, so that the mean, the variance and n/(n-1) all matter.
    return tf.constant(np.random.default_rng(1).normal(3.0, 2.5, shape), tf.float32)


def forward_backward(layer, x: tf.Tensor):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        # Weighted, so that the gradient through the batch statistics is not zero.
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2 * tf.range(1.0, x.shape[-1] + 1.0))
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return y, grads


@pytest.mark.parametrize("shape", [(8, 4, 4, 16), (5, 7, 3, 2)])
def test_training_matches_keras_outputs_moving_statistics_and_gradients(shape):
    plain, fused, (_, _, start_mean, start_var) = pair(shape)
    x = batch(shape)
    y_plain, g_plain = forward_backward(plain, x)
    y_fused, g_fused = forward_backward(fused, x)
    np.testing.assert_allclose(y_fused, y_plain, rtol=1e-4, atol=1e-5)
    for a, b, name in zip(g_fused, g_plain, ("input", "gamma", "beta")):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3, err_msg=name)
    # The moving variance averages the biased batch variance, as Keras's does.
    x64 = x.numpy().astype(np.float64).reshape(-1, shape[-1])
    for a, b in zip((fused.moving_mean, fused.moving_variance),
                    (plain.moving_mean, plain.moving_variance)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.3 * start_mean + 0.7 * x64.mean(0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.3 * start_var + 0.7 * x64.var(0),
                               rtol=1e-5)


def test_inference_is_keras_own():
    plain, fused, _ = pair((4, 3, 3, 8))
    x = batch((4, 3, 3, 8))
    np.testing.assert_array_equal(fused(x, training=False), plain(x, training=False))
    np.testing.assert_array_equal(fused.moving_mean.numpy(), plain.moving_mean.numpy())


def test_stateless_call_returns_the_update_and_leaves_the_layer_alone():
    plain, fused, _ = pair((6, 4, 4, 8))
    x = batch((6, 4, 4, 8))
    before = fused.moving_mean.numpy()
    y_f, stats_f = fused.stateless_call(fused.trainable_variables,
                                        fused.non_trainable_variables, x, training=True)
    y_p, stats_p = plain.stateless_call(plain.trainable_variables,
                                        plain.non_trainable_variables, x, training=True)
    np.testing.assert_array_equal(fused.moving_mean.numpy(), before)
    np.testing.assert_allclose(y_f, y_p, rtol=1e-4, atol=1e-5)
    for a, b in zip(stats_f, stats_p):
        np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_the_compute_dtype_and_float32_statistics(policy):
    plain, fused, _ = pair((8, 4, 4, 16), dtype=policy)
    x = tf.cast(batch((8, 4, 4, 16)), policy.removeprefix("mixed_"))
    y_p, y_f = plain(x, training=True), fused(x, training=True)
    assert y_f.dtype == y_p.dtype == x.dtype
    np.testing.assert_allclose(tf.cast(y_f, tf.float32), tf.cast(y_p, tf.float32), atol=0.05)
    for a, b in zip((fused.moving_mean, fused.moving_variance),
                    (plain.moving_mean, plain.moving_variance)):
        assert a.dtype == "float32"
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)


def test_a_small_epsilon_is_kept_not_raised_by_the_kernel():
    """At a batch variance of about 1e-5, an epsilon raised to cuDNN's minimum of 1e-5 would
    shrink the output by a third."""
    plain, fused, _ = pair((8, 4, 4, 4), epsilon=1e-7)
    x = batch((8, 4, 4, 4)) * 1.3e-3
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), rtol=1e-4,
                               atol=1e-4)


def test_a_frozen_layer_normalises_with_its_moving_statistics_and_keeps_them():
    plain, fused, _ = pair((4, 3, 3, 8))
    x = batch((4, 3, 3, 8))
    for layer in (plain, fused):
        layer.trainable = False
    before = fused.moving_variance.numpy()
    np.testing.assert_array_equal(fused(x, training=True), plain(x, training=True))
    np.testing.assert_array_equal(fused.moving_variance.numpy(), before)


def test_the_models_have_the_same_variables_either_way():
    cfg = DCGANModel(image_size=16)
    for build in (build_generator, build_discriminator):
        plain, fused = build(cfg), build(cfg, fused_bn=True)
        assert [v.shape for v in fused.weights] == [v.shape for v in plain.weights]
        kinds = {type(layer) for layer in fused.layers}
        assert FusedBatchNormalization in kinds
        assert keras.layers.BatchNormalization not in kinds


def small_gan(fused: bool) -> Engine:
    # SGD: Adam turns the float noise on the zero gradients of the conv biases that feed a
    # BatchNorm into a step of about lr either way, which would hide any real difference.
    cfg = config_lib.load(None, ["model.image_size=16", "train.batch_size=8",
                                 "train.warmup_steps=0", "d_optim.name=sgd",
                                 "g_optim.name=sgd", "g_optim.learning_rate=0.01",
                                 f"train.fused_batchnorm={str(fused).lower()}"])
    return Engine(cfg, draw_faces(64, 16, seed=0)[0])


def fused_kernels(gan: Engine) -> int:
    graph = gan.train_step.get_concrete_function().graph
    return sum(op.type.endswith("FusedBatchNormV3") for op in graph.get_operations())


def test_a_training_step_is_the_same_with_either_layer():
    gans = [small_gan(fused) for fused in (False, True)]
    # The setting does reach the compiled step: Keras's layer uses no fused kernel.
    assert fused_kernels(gans[0]) == 0 and fused_kernels(gans[1]) > 0
    losses = [{k: float(v) for k, v in gan.train_step().items()} for gan in gans]
    for k in losses[0]:
        assert losses[1][k] == pytest.approx(losses[0][k], rel=1e-5), k
    for model in ("generator", "discriminator"):
        weights = [getattr(gan.family, model).get_weights() for gan in gans]
        diff = max(np.abs(a - b).max() for a, b in zip(*weights))
        assert diff < 1e-5, (model, diff)
    # And the step changed the weights: the comparison above is not of two untouched models.
    untouched = small_gan(False).family.generator.get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(
        gans[0].family.generator.get_weights(), untouched)) > 1e-4
