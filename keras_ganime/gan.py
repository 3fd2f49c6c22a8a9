"""The training step: G, D, their optimizers, and one mini-batch as the reference runs it.

One mini-batch does what the reference does, in its order: D on reals (`d_loss1`), D on fakes
(`d_loss0`) as a separate update, then G through D with the real targets (`g_loss`), G being left
alone during the first `warmup_steps`. It is all one compiled `tf.function` (`GAN.train_step`);
`GAN.update` is its arithmetic, read top to bottom. Under a tf.distribute strategy
(`train.distribute`, `distribute.py`) the same `update` runs on each replica's slice of the global
batch (`GAN._distributed_step`), with the global batch's losses and gradients.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_ganime import distribute
from keras_ganime.batches import Sampler, to_float, to_uint8
from keras_ganime.config import Config, ConfigError, OptimConfig, TrainConfig
from keras_ganime.models import build_discriminator, build_generator, sample_noise

# Keras 2.0's binary cross-entropy clipped probabilities to [1e-7, 1 - 1e-7], which caps a loss at
# about 16.1: the reference author's "loss above 15" failure signal is this saturation.
EPSILON = 1e-7
WATCHED = ("d_loss0", "d_loss1", "g_loss")  # the losses the failure watch follows, in order
POLICIES = {"off": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def bce(target: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    """Mean binary cross-entropy of probabilities p (batch, 1) against targets (batch,)."""
    p = tf.clip_by_value(tf.cast(tf.reshape(p, [-1]), tf.float32), EPSILON, 1.0 - EPSILON)
    return tf.reduce_mean(-(target * tf.math.log(p) + (1.0 - target) * tf.math.log(1.0 - p)))


def build_optimizer(cfg: OptimConfig, loss_scale: bool = False) -> keras.optimizers.Optimizer:
    """The optimizer the config names; `loss_scale` wraps it for float16 (dynamic scaling)."""
    if cfg.name == "sgd":
        opt = keras.optimizers.SGD(cfg.learning_rate, momentum=cfg.momentum,
                                   nesterov=cfg.nesterov)
    else:
        kind = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax}[cfg.name]
        opt = kind(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon)
    return keras.optimizers.LossScaleOptimizer(opt) if loss_scale else opt


def use_xla(cfg: TrainConfig) -> bool:
    """`auto`: XLA on a GPU only. On the 2-core CPU this step under XLA was measured 8x slower
    than without it (README, Performance)."""
    if cfg.jit_compile != "auto":
        return cfg.jit_compile == "on"
    return bool(tf.config.list_logical_devices("GPU"))


class GAN:
    """G, D, their optimizers, the random generator and the step counter: all a checkpoint holds."""

    def __init__(self, cfg: Config, images: np.ndarray) -> None:
        self.cfg = cfg
        # None (the single-device path, as it always was) or a tf.distribute strategy: the models,
        # optimizers and counters are then mirrored variables, made in its scope.
        self.strategy = distribute.strategy(cfg.train.distribute)
        self.replicas = self.strategy.num_replicas_in_sync if self.strategy else 1
        if cfg.train.batch_size % self.replicas:
            raise ConfigError(f"train.batch_size {cfg.train.batch_size} must be divisible by the "
                              f"{self.replicas} replicas of train.distribute")
        keras.utils.set_random_seed(cfg.train.seed)  # the initial weights
        policy = POLICIES[cfg.train.mixed_precision]
        sync_bn = self.strategy is not None and cfg.train.sync_batchnorm
        scope = self.strategy.scope if self.strategy else contextlib.nullcontext
        with scope():
            fused = cfg.train.fused_batchnorm
            self.generator = build_generator(cfg.model, policy, sync_bn, fused)
            self.discriminator = build_discriminator(cfg.model, policy, sync_bn, fused)
            self.g_optim = build_optimizer(cfg.g_optim, cfg.train.mixed_precision == "float16")
            self.d_optim = build_optimizer(cfg.d_optim, cfg.train.mixed_precision == "float16")
            self.g_optim.build(self.generator.trainable_variables)
            self.d_optim.build(self.discriminator.trainable_variables)
        # Not mirrored: a strategy's step draws the global batch's inputs from it once, outside
        # the replicas, exactly as one device does (`_distributed_step`).
        self.rng = tf.random.Generator.from_seed(cfg.train.seed)
        with scope():
            once = tf.VariableAggregation.ONLY_FIRST_REPLICA  # counted once, not per replica
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                    aggregation=once)
            # The first step whose losses were not finite, or -1: kept on the device so that the
            # loop learns the exact step without pulling the losses to the host every step.
            self.first_bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                              aggregation=once)
            # The failure watch, kept on the device for the same reason: how many steps in a row
            # each loss has been above the limit, and the first step at which a run of them
            # outlasted its patience (-1: none yet) with the loss it was (an index into WATCHED).
            self.high_streak = tf.Variable(tf.zeros(len(WATCHED), tf.int64), trainable=False,
                                           aggregation=once)
            self.loss_failed_at = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                              aggregation=once)
            self.loss_failure = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                            aggregation=once)
        self.sampler = Sampler(images, cfg.train.batch_size, cfg.data.sampling, cfg.train.seed)
        if self.strategy:  # not compiled with XLA (config.py refuses jit_compile = on here)
            self.train_step = tf.function(self._distributed_step)
        else:
            self.train_step = tf.function(self._train_step, jit_compile=use_xla(cfg.train))

    def checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                   g_optim=self.g_optim, d_optim=self.d_optim,
                                   rng=self.rng, step=self.step, high_streak=self.high_streak,
                                   loss_failed_at=self.loss_failed_at,
                                   loss_failure=self.loss_failure)

    def targets(self, n: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Soft targets: D's for the real batch, D's for the fake batch, and G's.

        Real is the high class (1 - soft * U) and fake the low one (soft * U), unless `flip`.
        G's target is always the real class's. An occasional flip swaps one sample's D target
        with the other class's.
        """
        lab = self.cfg.labels
        high = 1.0 - lab.soft * self.rng.uniform([n])
        low = lab.soft * self.rng.uniform([n])
        real, fake = (low, high) if lab.flip else (high, low)
        swap_real = self.rng.uniform([n]) < lab.flip_prob
        swap_fake = self.rng.uniform([n]) < lab.flip_prob
        return tf.where(swap_real, fake, real), tf.where(swap_fake, real, fake), real

    def _train_step(self) -> dict[str, tf.Tensor]:
        n = self.cfg.train.batch_size
        d_real_target, d_fake_target, g_target = self.targets(n)
        z = sample_noise(self.rng, n, self.cfg.model.latent_dim, self.cfg.model.noise)
        reals = self.sampler(self.step, self.rng)
        losses = self.update(reals, z, d_real_target, d_fake_target, g_target)
        self.watch(losses)
        return losses

    def watch(self, losses: dict[str, tf.Tensor]) -> None:
        """Counts each loss's steps in a row above failure.loss_limit; the first time a count
        passes its patience, records the step and the loss. (G's NaN in warm-up is not above.)"""
        fail = self.cfg.failure
        values = tf.stack([losses[k] for k in WATCHED])
        self.high_streak.assign(tf.where(values > fail.loss_limit, self.high_streak + 1, 0))
        over = self.high_streak > tf.constant([fail.d_patience, fail.d_patience,
                                               fail.g_patience], tf.int64)
        first = (self.loss_failed_at < 0) & tf.reduce_any(over)
        self.loss_failed_at.assign(tf.where(first, self.step, self.loss_failed_at))
        self.loss_failure.assign(tf.where(first, tf.argmax(tf.cast(over, tf.int64)),
                                          self.loss_failure))

    def _distributed_step(self) -> dict[str, tf.Tensor]:
        """`_train_step` under the strategy: the global batch's inputs are drawn as on one device,
        from the same generator in the same order, then each replica takes its slice of the
        batch (the values-function form of a distributed dataset) and runs `update` on it."""
        n, strategy = self.cfg.train.batch_size, self.strategy
        d_real_target, d_fake_target, g_target = self.targets(n)
        z = sample_noise(self.rng, n, self.cfg.model.latent_dim, self.cfg.model.noise)
        indices = self.sampler.indices(self.step, self.rng)
        batch = (indices, z, d_real_target, d_fake_target, g_target)

        def replica_slice(ctx: tf.distribute.experimental.ValueContext) -> tuple[tf.Tensor, ...]:
            i = ctx.replica_id_in_sync_group
            return tuple(tf.split(x, self.replicas)[i] for x in batch)

        def replica_step(indices: tf.Tensor, *rest: tf.Tensor, train_g: bool
                         ) -> dict[str, tf.Tensor]:
            reals = to_float(tf.gather(self.sampler.images, indices))
            return self.update(reals, *rest, train_g=train_g)

        def run(train_g: bool) -> dict[str, tf.Tensor]:
            inputs = strategy.experimental_distribute_values_from_function(replica_slice)
            out = strategy.run(replica_step, args=inputs, kwargs={"train_g": train_g})
            # `update` returns global-batch values, the same on every replica.
            return {k: strategy.experimental_local_results(v)[0] for k, v in out.items()}

        # The warm-up's branch is taken here, around the replicas: the all-reduces of the G update
        # cannot sit in a conditional inside them (tf.distribute's merge_call).
        losses = tf.cond(self.step >= self.cfg.train.warmup_steps, lambda: run(True),
                         lambda: run(False))
        self.watch(losses)
        return losses

    def update(self, reals: tf.Tensor, z: tf.Tensor, d_real_target: tf.Tensor,
               d_fake_target: tf.Tensor, g_target: tf.Tensor, train_g: bool | None = None
               ) -> dict[str, tf.Tensor]:
        """The arithmetic of one mini-batch, on inputs already drawn.

        `train_g`: whether the warm-up is over, when the caller decided it (under a strategy);
        None decides it here, from the step.
        """
        # The reference makes D's fakes with predict(): G's BatchNorm in inference mode.
        fakes = self.generator(z, training=self.cfg.train.fake_bn == "training")
        d_loss1, p_real = self.d_update(reals, d_real_target)
        d_loss0, p_fake = self.d_update(fakes, d_fake_target)
        training_g = self.step >= self.cfg.train.warmup_steps
        if train_g is None:
            g_loss = tf.cond(training_g, lambda: self.g_update(z, g_target),
                             lambda: tf.constant(np.nan, tf.float32))
        else:
            g_loss = self.g_update(z, g_target) if train_g else tf.constant(np.nan, tf.float32)
        self.step.assign_add(1)
        out = self.global_mean({"d_loss0": d_loss0, "d_loss1": d_loss1, "g_loss": g_loss,
                                "real_score": tf.reduce_mean(p_real),
                                "fake_score": tf.reduce_mean(p_fake)})
        finite = (tf.math.is_finite(out["d_loss0"]) & tf.math.is_finite(out["d_loss1"])
                  & (tf.math.is_finite(out["g_loss"]) | ~training_g))
        self.first_bad_step.assign(tf.where((self.first_bad_step < 0) & ~finite, self.step,
                                            self.first_bad_step))
        return out

    def global_mean(self, values: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Per-replica means -> the global batch's means (equal slices), on every replica; the
        values themselves on one device."""
        if self.replicas == 1:
            return values
        ctx = tf.distribute.get_replica_context()
        return dict(zip(values, ctx.all_reduce(tf.distribute.ReduceOp.MEAN, list(values.values()))))

    def gradient_loss(self, loss: tf.Tensor) -> tf.Tensor:
        """The loss a replica differentiates: its slice's mean over the number of replicas, so that
        the optimizer's all-reduce sum of the replicas' gradients is the gradient of the global
        batch's mean loss (`tf.nn.compute_average_loss`'s scaling)."""
        return loss if self.replicas == 1 else loss / self.replicas

    def d_update(self, images: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One optimizer step of D alone; returns its loss and its outputs before the step."""
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            p = self.discriminator(images, training=True)
            loss = bce(target, p)
            # The loss itself on one device, unless float16.
            scaled = self.d_optim.scale_loss(self.gradient_loss(loss))
        self.d_optim.apply_gradients(zip(tape.gradient(scaled, d_vars), d_vars))
        return loss, p

    def g_update(self, z: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        """One optimizer step of G through D; D's variables, moving statistics included, stay."""
        g_vars = self.generator.trainable_variables
        d = self.discriminator
        with tf.GradientTape() as tape:
            # D on batch statistics, as Keras 2.0 ran the frozen D inside the stacked model; the
            # stateless call drops the moving-statistics update that training mode would make.
            p, _ = d.stateless_call(d.trainable_variables, d.non_trainable_variables,
                                    self.generator(z, training=True), training=True)
            loss = bce(target, p)
            scaled = self.g_optim.scale_loss(self.gradient_loss(loss))
        self.g_optim.apply_gradients(zip(tape.gradient(scaled, g_vars), g_vars))
        return loss

    def save_generator(self, path: str | Path) -> None:
        """G as a .keras file made of Keras's own layers (no fused BatchNorm), so that it loads
        with `keras.models.load_model` alone."""
        plain = build_generator(self.cfg.model, POLICIES[self.cfg.train.mixed_precision])
        plain.set_weights(self.generator.get_weights())
        plain.save(path)

    def fixed_noise(self, n: int) -> tf.Tensor:
        """The same latent batch for every sample grid of a run (its own seed stream)."""
        rng = tf.random.Generator.from_seed(self.cfg.train.seed + 1_000_003)
        return sample_noise(rng, n, self.cfg.model.latent_dim, self.cfg.model.noise)

    def weights_finite(self) -> bool:
        return all(bool(tf.reduce_all(tf.math.is_finite(v)))
                   for v in self.generator.weights + self.discriminator.weights)

    def generate(self, z: tf.Tensor) -> np.ndarray:
        return to_uint8(self.generator(z, training=False))
