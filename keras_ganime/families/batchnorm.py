"""Keras's BatchNormalization, computed in training by TensorFlow's fused kernel.

Keras 3 normalises a batch with a dozen element-wise ops forward and more backward; TensorFlow's
FusedBatchNormV3 does it in one op each way (oneDNN's kernel on a CPU, cuDNN's on a GPU). At
batch 64 on 2 CPU cores, Keras's ops took about 8% of the training step's kernel time, the
fused kernel about 3% (docs/performance.md). The maths is Keras's, the moving variance
included: the kernel returns the unbiased batch variance, and Keras's layer averages the biased
one (`tests/test_batchnorm.py` compares the two layers). Inference, masks and synchronised
statistics (tf.distribute) are Keras's own code.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# cuDNN's kernel takes no smaller epsilon (CUDNN_BN_MIN_EPSILON), and earlier TensorFlow versions
# raised a smaller one to this without a word; Keras's own maths keeps any epsilon.
MIN_EPSILON = 1.001e-5


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` over the channels of NHWC images, fused in training.

    Its variables are Keras's layer's, so checkpoints and weights pass between the two. It is not
    registered for serialisation: a model is saved with Keras's layer in its place
    (`Family.export`), to load without this package.
    """

    def call(self, inputs: tf.Tensor, training: bool | None = None,
             mask: tf.Tensor | None = None) -> tf.Tensor:
        if (not (training and self.trainable) or self.synchronized or mask is not None
                or len(inputs.shape) != 4 or self.axis not in (-1, 3) or self.renorm
                or not (self.center and self.scale) or self.epsilon < MIN_EPSILON):
            return super().call(inputs, training=training, mask=mask)
        # Upcast as Keras does: the statistics of half-precision activations overflow.
        x = tf.cast(inputs, tf.float32)
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32),
            epsilon=self.epsilon, is_training=True)
        n = tf.cast(tf.size(x, out_type=tf.int64) // tf.shape(x, out_type=tf.int64)[-1],
                    tf.float32)
        variance = variance * (n - 1.0) / n  # the kernel's is unbiased; Keras averages the biased
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)
