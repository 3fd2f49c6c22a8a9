"""TensorFlow's training engine: one compiled step for any family, on one device or under a
strategy (`jax.py` is JAX's; the package's `create` chooses).

It owns what every family shares: the step counter, the random generator (`tf.random.Generator`,
checkpointed), the real-image sampler (uint8 images held on the device), the NaN watch and the
family's loss watch, and the checkpoint. One step is
    draw     the family's random inputs for the global batch, then the real batch's indices
    phases   each of the family's phases, when it is due and its gate holds (else NaN)
    count    the step counter
    after    the family's updates after the step (k_t, EMA weights, ...)
    watch    the first non-finite step, and the family's failure rules
in one `tf.function`. It knows no network and names no loss: those are the family's
(`families/`). The step has one path: on one device a phase runs on the whole batch; under a
tf.distribute strategy (`train.distribute`, `distribute.py`) each phase runs on each replica's
slice of the global batch, with the global batch's losses and gradients, and every condition
sits around the replicas (tf.distribute's all-reduces cannot sit in a conditional inside them).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_ganime.config import Config
from keras_ganime.data import check_enough
from keras_ganime.engines import checkpoints, common, distribute
from keras_ganime.engines.common import (
    GRID_SEED,
    POLICIES,
    Sampling,
    build_family,
    due_conditions,
    gate_open,
    grid_latents,
)
from keras_ganime.families import failure
from keras_ganime.families.base import Build, Draws, Phase
from keras_ganime.families.condition import LABELS
from keras_ganime.images.convert import to_float
from keras_ganime.runs import export_replacing
from keras_ganime.settings import ConfigError, TrainConfig


def use_xla(cfg: TrainConfig) -> bool:
    """`auto`: XLA on a GPU only. On the 2-core CPU the reference step under XLA was measured 8x
    slower than without it (docs/performance.md)."""
    if cfg.jit_compile != "auto":
        return cfg.jit_compile == "on"
    return bool(tf.config.list_logical_devices("GPU"))


class Sampler:
    """Real batches drawn on the device from uint8 images held there (the JAX engine draws its
    own: jax_engine.JaxEngine._indices). `uniform` draws with replacement, as the reference;
    `epoch` walks a fresh permutation each epoch and drops the last partial batch. Both are
    functions of the step and the random generator only, so a resumed run draws the same
    batches as an uninterrupted one.
    """

    def __init__(self, images: np.ndarray, batch_size: int, sampling: str, seed: int) -> None:
        check_enough(images, batch_size)
        self.images = tf.constant(images, tf.uint8)
        self.n = len(images)
        self.batch_size = batch_size
        self.sampling = sampling
        self.seed = seed

    def indices(self, step: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
        if self.sampling == "uniform":
            return rng.uniform([self.batch_size], 0, self.n, dtype=tf.int64)
        per_epoch = self.n // self.batch_size
        step = tf.cast(step, tf.int64)
        seed = tf.stack([tf.constant(self.seed, tf.int64), step // per_epoch])
        perm = tf.random.experimental.stateless_shuffle(tf.range(self.n, dtype=tf.int64), seed)
        first = (step % per_epoch) * self.batch_size
        return perm[first:first + self.batch_size]

    def batch(self, indices: tf.Tensor) -> tf.Tensor:
        """A float32 batch in [-1, 1], cast and scaled after the gather, on the device."""
        return to_float(tf.gather(self.images, indices))


class StepContext:
    """What a phase's arithmetic borrows from the engine (families/base.py says what each does):
    gradients, and the replicas' count. A frozen context computes the losses and steps nothing:
    a held phase whose gate is closed (`Phase.hold`)."""

    def __init__(self, replicas: int, frozen: bool = False) -> None:
        self.replicas = replicas
        self.frozen = frozen

    def update(self, optimizer: keras.optimizers.Optimizer, variables: list[Any],
               loss_fn: Callable[[], tuple[tf.Tensor, Any]]) -> tuple[tf.Tensor, Any]:
        def one_loss() -> tuple[tuple[tf.Tensor], Any]:
            loss, aux = loss_fn()
            return (loss,), aux

        (loss,), aux = self.update_many([(optimizer, variables)], one_loss)
        return loss, aux

    def update_many(self, steps: Sequence[tuple[keras.optimizers.Optimizer, list[Any]]],
                    loss_fn: Callable[[], tuple[Sequence[tf.Tensor], Any]]
                    ) -> tuple[Sequence[tf.Tensor], Any]:
        if self.frozen:
            return loss_fn()
        with tf.GradientTape(persistent=len(steps) > 1) as tape:
            losses, aux = loss_fn()
            # A replica differentiates its slice's mean over the number of replicas, so that the
            # optimizer's all-reduce sum is the gradient of the global batch's mean loss
            # (`tf.nn.compute_average_loss`'s scaling); under float16, scaled up as well.
            scaled = [opt.scale_loss(loss if self.replicas == 1 else loss / self.replicas)
                      for (opt, _), loss in zip(steps, losses, strict=True)]
        # Every gradient before any update: each is of the same forward pass. A variable the
        # loss does not reach (D's last bias, for R1) gets a zero gradient, as NVlabs' optimizer
        # gives it: Adam's moments of it still decay.
        grads = [[tf.zeros_like(v) if g is None else g
                  for g, v in zip(tape.gradient(loss, variables), variables)]
                 for (_, variables), loss in zip(steps, scaled)]
        for (opt, variables), g in zip(steps, grads):
            opt.apply_gradients(zip(g, variables))
        return losses, aux

    def input_gradient(self, fn: Callable[[tf.Tensor], tf.Tensor], x: tf.Tensor
                       ) -> tuple[tf.Tensor, tf.Tensor]:
        """fn(x), and the gradient of its sum with respect to x, itself differentiable (for a
        penalty on it, such as R1, inside a `loss_fn`)."""
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            total = tf.reduce_sum(y)  # inside the tape, or it has nothing to differentiate
        return y, tape.gradient(total, x)


class Engine(Sampling):
    """A family, its random generator, its step counter and its watch: all a checkpoint holds."""

    def __init__(self, cfg: Config, images: np.ndarray, labels: np.ndarray | None = None
                 ) -> None:
        common.check(cfg, "tensorflow")
        self.cfg = cfg
        # None (the single-device path) or a tf.distribute strategy: the networks, optimizers
        # and counters are then mirrored variables, made in its scope.
        self.strategy = distribute.strategy(cfg.train.distribute)
        self.replicas = self.strategy.num_replicas_in_sync if self.strategy else 1
        if cfg.train.batch_size % self.replicas:
            raise ConfigError(f"train.batch_size {cfg.train.batch_size} must be divisible by the "
                              f"{self.replicas} replicas of train.distribute")
        keras.utils.set_random_seed(cfg.train.seed)  # the initial weights
        scope = self.strategy.scope if self.strategy else contextlib.nullcontext
        build = Build(POLICIES[cfg.train.mixed_precision],
                      self.strategy is not None and cfg.train.sync_batchnorm,
                      cfg.train.fused_batchnorm, cfg.train.mixed_precision == "float16",
                      self.replicas)
        with scope():
            self.family = build_family(cfg, build, labels)
        self.phases = self.family.phases
        self.rules = self.family.rules()
        # Not mirrored: a strategy's step draws the global batch's inputs from it once, outside
        # the replicas, exactly as one device does.
        self.rng = tf.random.Generator.from_seed(cfg.train.seed)
        once = tf.VariableAggregation.ONLY_FIRST_REPLICA  # counted once, not per replica
        with scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                    aggregation=once)
            # The first step whose values were not finite, or -1: kept on the device so that the
            # loop learns the exact step without pulling the values to the host every step.
            self.first_bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                              aggregation=once)
            # The failure watch (failure.py), on the device for the same reason.
            self.high_streak = tf.Variable(tf.zeros(len(self.rules), tf.int64), trainable=False,
                                           aggregation=once)
            self.loss_failed_at = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                              aggregation=once)
            self.failed_rule = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                           aggregation=once)
            # The last step's values, for the gates; only for a family with gates, so that the
            # others' checkpoints hold what they always held.
            self.names = tuple(n for p in self.phases for n in p.outputs)
            self.last = tf.Variable(tf.fill([len(self.names)], np.nan), trainable=False,
                                    aggregation=once) if any(p.gate for p in self.phases) else None
        self.images = images
        self.labels = None if labels is None else tf.constant(labels, tf.int32)
        self.sampler = Sampler(images, cfg.train.batch_size, cfg.data.sampling, cfg.train.seed)
        self.context = StepContext(self.replicas)
        self.frozen = StepContext(self.replicas, frozen=True)
        # Not compiled with XLA under a strategy (config.py refuses jit_compile = on there).
        # Traced as plain Python, without autograph: the step's branches are tf.cond already,
        # and autograph's rewriting of the Python it calls gave an error once in a full test
        # run, not reproduced (`tf__phases() takes 1 positional argument but 3 were given`;
        # tf__phases is autograph's rewrite of a function named phases, here only the
        # families' property). The same graph either way: the golden runs hold bit for bit.
        self.train_step = tf.function(
            self._step, jit_compile=False if self.strategy else use_xla(cfg.train),
            autograph=False)

    # --- the step ---
    def _step(self) -> dict[str, tf.Tensor]:
        draws = self.family.draw(self.rng, self.cfg.train.batch_size)
        return self._apply(draws, self.sampler.indices(self.step, self.rng))

    def step_with(self, draws: Draws, indices: np.ndarray) -> dict[str, tf.Tensor]:
        """One step on given random inputs and real images' indices, in place of the
        generator's: for comparing the engines on the same inputs."""
        def apply(per_sample: dict, per_batch: dict, indices: tf.Tensor) -> dict[str, tf.Tensor]:
            return self._apply(Draws(per_sample, per_batch), indices)

        step = tf.function(apply, jit_compile=False, autograph=False)
        return step(draws.per_sample, draws.per_batch, tf.constant(indices, tf.int64))

    def _apply(self, draws: Draws, indices: tf.Tensor) -> dict[str, tf.Tensor]:
        if self.labels is not None:  # the reals' labels, with them on every replica's slice
            draws = Draws({**draws.per_sample, LABELS: tf.gather(self.labels, indices)},
                          draws.per_batch)
        values: dict[str, tf.Tensor] = {}
        finite = tf.constant(True)
        gated = self.last is not None
        last = dict(zip(self.names, tf.unstack(self.last))) if gated else {}
        # What a gate reads: this step's outputs where their phase ran, else the last step's.
        seen = dict(last)
        for phase in self.phases:
            out, ran = self._phase(phase, indices, draws, seen)
            values.update(out)
            if gated:
                seen.update(out if ran is None else
                            {k: tf.where(ran, v, last[k]) for k, v in out.items()})
            ok = tf.reduce_all([tf.math.is_finite(v) for v in out.values()])
            finite &= ok if ran is None else (ok | ~ran)
        self.step.assign_add(1)
        after = common.after_step(self.family, values, draws)
        for v in after.values():
            finite &= tf.math.is_finite(v)
        values.update(after)
        self.first_bad_step.assign(tf.where((self.first_bad_step < 0) & ~finite, self.step,
                                            self.first_bad_step))
        self.watch(values)
        if gated:
            self.last.assign(tf.stack([seen[n] for n in self.names]))
        return values

    def watch(self, values: Mapping[str, tf.Tensor]) -> None:
        """One step of the family's failure rules (failure.watch), after the step's count."""
        if not self.rules:
            return
        state = (self.high_streak, self.loss_failed_at, self.failed_rule)
        for var, new in zip(state, failure.watch(self.rules, values, *state, self.step)):
            var.assign(new)

    def reals(self, indices: tf.Tensor) -> tf.Tensor:
        """The real batch at these indices (on one replica: its slice's)."""
        return self.sampler.batch(indices)

    def _phase(self, phase: Phase, indices: tf.Tensor, draws: Draws,
               seen: Mapping[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], tf.Tensor | None]:
        """The phase's outputs for the global batch, float32, and whether it ran (None: always;
        a held phase always runs, frozen while its gate is closed).
        """
        def run(ctx: StepContext = self.context) -> dict[str, tf.Tensor]:
            if self.strategy is None:
                out = self.family.run_phase(phase.name, self.reals(indices), draws, ctx)
                return {k: tf.cast(v, tf.float32) for k, v in out.items()}
            return self._replicated(phase, indices, draws, ctx)

        if phase.hold:
            return tf.cond(gate_open(phase, seen), run, lambda: run(self.frozen)), None
        conditions = due_conditions(phase, self.step, seen)
        if not conditions:
            return run(), None
        due = functools.reduce(tf.logical_and, conditions)
        skipped = {name: tf.constant(np.nan, tf.float32) for name in phase.outputs}
        return tf.cond(due, run, lambda: skipped), due

    def _replicated(self, phase: Phase, indices: tf.Tensor, draws: Draws, ctx: StepContext
                    ) -> dict[str, tf.Tensor]:
        """The phase on each replica's slice of the global batch (the values-function form of a
        distributed dataset); its outputs are the global batch's means."""
        strategy = self.strategy
        names = list(draws.per_sample)
        batch = (indices, *draws.per_sample.values())

        def replica_slice(ctx: tf.distribute.experimental.ValueContext) -> tuple[tf.Tensor, ...]:
            i = ctx.replica_id_in_sync_group
            return tuple(tf.split(x, self.replicas)[i] for x in batch)

        def replica_step(indices: tf.Tensor, *per_sample: tf.Tensor) -> dict[str, tf.Tensor]:
            sliced = Draws(dict(zip(names, per_sample)), draws.per_batch)
            out = self.family.run_phase(phase.name, self.reals(indices), sliced, ctx)
            mean = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.MEAN, [tf.cast(v, tf.float32) for v in out.values()])
            return dict(zip(out, mean))

        inputs = strategy.experimental_distribute_values_from_function(replica_slice)
        out = strategy.run(replica_step, args=inputs)
        # The means are the same on every replica.
        return {k: strategy.experimental_local_results(v)[0] for k, v in out.items()}

    # --- what the loop reads and keeps ---
    def checkpoint(self) -> tf.train.Checkpoint:
        state = {"rng": self.rng, "step": self.step, "high_streak": self.high_streak,
                 "loss_failed_at": self.loss_failed_at, "loss_failure": self.failed_rule}
        if self.last is not None:
            state["last_values"] = self.last
        return tf.train.Checkpoint(**self.family.checkpoint_objects(), **state)

    def open_checkpoints(self, directory: Path, keep: int) -> int:
        """Restores the directory's newest checkpoint that reads completely, if any, keeps the
        newest `keep` of those `save` writes there; returns the step reached."""
        checkpoints.check_backend(directory, "tensorflow", "resume them")
        self.manager = tf.train.CheckpointManager(self.checkpoint(), directory, keep)
        latest = checkpoints.newest_readable(directory)
        if latest:
            try:
                self.manager.checkpoint.restore(latest).assert_existing_objects_matched()
            except ValueError as e:  # TensorFlow's word for a weight of another shape
                raise checkpoints.misfit(f"{latest}: {' '.join(str(e).split())[:300]}") from None
        return self.step_count()

    def save(self, step: int) -> None:
        """A checkpoint of this step; an OSError naming it when the disk refuses it."""
        try:
            self.manager.save(checkpoint_number=step)
        except tf.errors.OpError as e:  # TensorFlow's own writer says it in its words
            text = e.message or ""
            code = (errno.ENOSPC if "No space left" in text else
                    errno.EFBIG if "File too large" in text else errno.EIO)
            raise OSError(code, os.strerror(code), str(Path(self.manager.directory) /
                                                       f"ckpt-{step}")) from None

    def step_count(self) -> int:
        return int(self.step.numpy())

    def first_bad(self) -> int:
        """The first step whose values were not finite, or -1."""
        return int(self.first_bad_step.numpy())

    def loss_failure(self) -> tuple[int, str] | None:
        """(step, reason) once the device-side watch has seen a rule hold past its patience."""
        step = int(self.loss_failed_at.numpy())
        if step < 0:
            return None
        return step, failure.describe(self.rules[int(self.failed_rule.numpy())], step)

    def fixed_latents(self, n: int) -> tf.Tensor:
        """The same latent batch for every sample grid of a run (its own seed stream)."""
        return grid_latents(self.family,
                            tf.random.Generator.from_seed(self.cfg.train.seed + GRID_SEED),
                                   n)

    def checkpoint_bytes(self) -> int:
        """About the size of one checkpoint: the networks' and optimizers' variables."""
        variables = [v for net in self.family.networks.values() for v in net.weights] + [
            v for opt in self.family.optimizers.values() for v in opt.variables]
        return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)

    def weights_finite(self) -> bool:
        return all(bool(tf.reduce_all(tf.math.is_finite(v)))
                   for net in self.family.networks.values() for v in net.weights)

    @property
    def export_suffix(self) -> str:
        return self.family.export_suffix

    def export(self, path: Path) -> None:
        """The family's export, written beside and renamed (runs.export_replacing)."""
        export_replacing(path, common.with_settings(self.family.export, self.cfg))
