"""The engine's step context against hand computations: several optimizers stepped from one
forward pass (BEGAN's D and G), and a differentiable gradient with respect to an input (R1)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ganime.engines.tensorflow import StepContext


def test_update_many_takes_every_gradient_before_any_update():
    """loss_a = a * b and loss_b = (a * b) ** 2 from one forward pass, SGD lr 0.1: each step
    uses the other variable's value from before either update (a = 2, b = 3)."""
    a, b = keras.Variable(2.0), keras.Variable(3.0)
    opt_a, opt_b = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)
    opt_a.build([a])
    opt_b.build([b])

    def losses():
        ab = a * b
        return (ab, ab**2), ab

    (loss_a, loss_b), aux = StepContext(1).update_many([(opt_a, [a]), (opt_b, [b])], losses)
    assert (float(loss_a), float(loss_b), float(aux)) == (6.0, 36.0, 6.0)
    # d loss_a / d a = b = 3; d loss_b / d b = 2 a b * a = 2 * 6 * 2 = 24.
    assert float(a.numpy()) == pytest.approx(2.0 - 0.1 * 3.0)
    assert float(b.numpy()) == pytest.approx(3.0 - 0.1 * 24.0)


def test_update_divides_by_the_replicas():
    """Each replica differentiates its slice's mean over N: the optimizer's sum is the mean."""
    w = keras.Variable(1.0)
    opt = keras.optimizers.SGD(1.0)
    opt.build([w])
    StepContext(4).update(opt, [w], lambda: (w * 8.0, None))
    assert float(w.numpy()) == pytest.approx(1.0 - 8.0 / 4)


def test_input_gradient_is_differentiable():
    """fn(x) = sum(w x^2): its input gradient 2 w x, and an R1-like penalty sum((2 w x)^2)
    = 4 w^2 sum(x^2), whose gradient with respect to w is 8 w sum(x^2)."""
    x = tf.constant([1.0, -2.0, 3.0])
    w = tf.Variable(0.5)
    with tf.GradientTape() as tape:
        y, grad = StepContext(1).input_gradient(lambda v: w * v**2, x)
        penalty = tf.reduce_sum(grad**2)
    np.testing.assert_allclose(y.numpy(), 0.5 * x.numpy() ** 2)
    np.testing.assert_allclose(grad.numpy(), 2 * 0.5 * x.numpy())
    assert float(tape.gradient(penalty, w)) == pytest.approx(8 * 0.5 * 14.0)
