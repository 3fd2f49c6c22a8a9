"""The training step and loop; `python -m keras_ganime.train`.

One mini-batch does what the reference does, in its order: D on reals (`d_loss1`), D on fakes
(`d_loss0`) as a separate update, then G through D with the real targets (`g_loss`), G being left
alone during the first `warmup_steps`. It is all one compiled `tf.function` (`GAN.train_step`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Self

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from keras_ganime import config as config_lib
from keras_ganime import viz
from keras_ganime.batches import Sampler, to_uint8
from keras_ganime.config import Config, ConfigError, OptimConfig
from keras_ganime.data import DataError, load_images
from keras_ganime.models import build_discriminator, build_generator, sample_noise
from keras_ganime.runs import RunDir, RunError, atomic_write, new_run_dir

# Keras 2.0's binary cross-entropy clipped probabilities to [1e-7, 1 - 1e-7], which caps a loss at
# about 16.1: the reference author's "loss above 15" failure signal is this saturation.
EPSILON = 1e-7
GRID_SAMPLES = 64


def bce(target: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    """Mean binary cross-entropy of probabilities p (batch, 1) against targets (batch,)."""
    p = tf.clip_by_value(tf.cast(tf.reshape(p, [-1]), tf.float32), EPSILON, 1.0 - EPSILON)
    return tf.reduce_mean(-(target * tf.math.log(p) + (1.0 - target) * tf.math.log(1.0 - p)))


def build_optimizer(cfg: OptimConfig) -> keras.optimizers.Optimizer:
    if cfg.name == "sgd":
        return keras.optimizers.SGD(cfg.learning_rate, momentum=cfg.momentum,
                                    nesterov=cfg.nesterov)
    kind = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax}[cfg.name]
    return kind(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon)


class GAN:
    """G, D, their optimizers, the random generator and the step counter: all a checkpoint holds."""

    def __init__(self, cfg: Config, images: np.ndarray) -> None:
        self.cfg = cfg
        keras.utils.set_random_seed(cfg.train.seed)  # the initial weights
        self.generator = build_generator(cfg.model)
        self.discriminator = build_discriminator(cfg.model)
        self.g_optim = build_optimizer(cfg.g_optim)
        self.d_optim = build_optimizer(cfg.d_optim)
        self.g_optim.build(self.generator.trainable_variables)
        self.d_optim.build(self.discriminator.trainable_variables)
        self.rng = tf.random.Generator.from_seed(cfg.train.seed)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.sampler = Sampler(images, cfg.train.batch_size, cfg.data.sampling, cfg.train.seed)
        self.train_step = tf.function(self._train_step)

    def checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                   g_optim=self.g_optim, d_optim=self.d_optim,
                                   rng=self.rng, step=self.step)

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
        return self.update(reals, z, d_real_target, d_fake_target, g_target)

    def update(self, reals: tf.Tensor, z: tf.Tensor, d_real_target: tf.Tensor,
               d_fake_target: tf.Tensor, g_target: tf.Tensor) -> dict[str, tf.Tensor]:
        """The arithmetic of one mini-batch, on inputs already drawn."""
        # The reference makes D's fakes with predict(): G's BatchNorm in inference mode.
        fakes = self.generator(z, training=self.cfg.train.fake_bn == "training")
        d_loss1, p_real = self.d_update(reals, d_real_target)
        d_loss0, p_fake = self.d_update(fakes, d_fake_target)
        g_loss = tf.cond(self.step >= self.cfg.train.warmup_steps,
                         lambda: self.g_update(z, g_target),
                         lambda: tf.constant(np.nan, tf.float32))
        self.step.assign_add(1)
        return {"d_loss0": d_loss0, "d_loss1": d_loss1, "g_loss": g_loss,
                "real_score": tf.reduce_mean(p_real), "fake_score": tf.reduce_mean(p_fake)}

    def d_update(self, images: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One optimizer step of D alone; returns its loss and its outputs before the step."""
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            p = self.discriminator(images, training=True)
            loss = bce(target, p)
        self.d_optim.apply_gradients(zip(tape.gradient(loss, d_vars), d_vars))
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
        self.g_optim.apply_gradients(zip(tape.gradient(loss, g_vars), g_vars))
        return loss

    def fixed_noise(self) -> tf.Tensor:
        """The same latent batch for every sample grid of a run (its own seed stream)."""
        rng = tf.random.Generator.from_seed(self.cfg.train.seed + 1_000_003)
        return sample_noise(rng, GRID_SAMPLES, self.cfg.model.latent_dim, self.cfg.model.noise)

    def generate(self, z: tf.Tensor) -> np.ndarray:
        return to_uint8(self.generator(z, training=False))


class Stop(Exception):
    """Training ended early; the message says why, in one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Signals:
    """SIGINT/SIGTERM ask the loop to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __enter__(self) -> Self:
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signum

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def fit(gan: GAN, run: RunDir, progress: bool = True) -> None:
    """Train in `run` up to cfg.train.steps, resuming from its latest checkpoint if it has one."""
    cfg = gan.cfg
    ckpt = gan.checkpoint()
    manager = tf.train.CheckpointManager(ckpt, run.checkpoints, cfg.output.keep_checkpoints)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    start = int(gan.step.numpy())
    # Rows past the checkpoint belong to steps that will be run again.
    rows = [r for r in run.read_losses() if r["step"] <= start]
    wall0 = rows[-1]["wall_s"] if rows else 0.0
    out = cfg.output
    fixed_z = gan.fixed_noise()
    writer = tf.summary.create_file_writer(str(run.path / "tensorboard"))
    if start == 0:
        viz.save_grid(gan.sampler.images[:GRID_SAMPLES].numpy(), run.path / "reals.png", cols=8)

    def save(status: str, **extra: object) -> None:
        manager.save(checkpoint_number=int(gan.step.numpy()))
        run.write_losses(rows)
        if rows:
            viz.loss_plot(rows, run.path / "loss.png", run.path.name)
        run.write_json("run.json", {**run.read_json("run.json"), "status": status,
                                    "step": int(gan.step.numpy()), **extra})

    t0, clock, last_step = time.perf_counter(), time.perf_counter(), start
    bar = tqdm(total=cfg.train.steps, initial=start, desc=run.path.name, unit="step",
               disable=not progress, dynamic_ncols=True)
    with _Signals() as signals, writer.as_default():
        for step in range(start + 1, cfg.train.steps + 1):
            losses = gan.train_step()
            bar.update()
            logged = step % out.log_every == 0 or step == cfg.train.steps
            # Losses reach the host only here, and always before a checkpoint is written, so
            # that a non-finite loss is never saved over the last good checkpoint.
            if logged or step % out.checkpoint_every == 0:
                values = {k: float(v) for k, v in losses.items()}
                warming = step <= cfg.train.warmup_steps
                bad = [k for k, v in values.items()
                       if not np.isfinite(v) and not (k == "g_loss" and warming)]
                if bad:
                    bar.close()
                    run.write_losses(rows)
                    run.write_json("run.json", {**run.read_json("run.json"), "status": "failed",
                                                "failed_at": step, "reason": f"non-finite {bad[0]}"})
                    raise Stop(f"{bad[0]} is {values[bad[0]]} at step {step}; the last good "
                               f"checkpoint is kept in {run.checkpoints}")
            if logged:
                now = time.perf_counter()
                speed = (step - last_step) * cfg.train.batch_size / (now - clock)
                clock, last_step = now, step
                rows.append({"step": step, **values, "images_per_s": round(speed, 2),
                             "wall_s": round(wall0 + now - t0, 3)})
                for k, v in values.items():
                    tf.summary.scalar(k, v, step=step)
                bar.set_postfix(d0=f"{values['d_loss0']:.3f}", d1=f"{values['d_loss1']:.3f}",
                                g=f"{values['g_loss']:.3f}", refresh=False)
            if step % out.sample_every == 0 or step == cfg.train.steps:
                viz.save_grid(gan.generate(fixed_z), run.path / "samples" / f"{step:07d}.png", 8)
                run.write_losses(rows)
                viz.loss_plot(rows, run.path / "loss.png", run.path.name)
            if step % out.checkpoint_every == 0:
                save("running")
            if signals.received:
                save("interrupted")
                bar.close()
                name = signal.Signals(signals.received).name
                raise Stop(f"{name} at step {step}: checkpoint saved; continue with "
                           f"python -m keras_ganime.train --resume {run.path}",
                           128 + signals.received)
    bar.close()
    save("done")
    gan.generator.save(run.path / "generator.keras")


def new_run(cfg: Config) -> RunDir:
    """A fresh numbered run directory holding its resolved settings, locked for this process."""
    run = RunDir(new_run_dir(cfg.output.runs_dir, cfg.output.name))
    atomic_write(run.path / "config.toml", config_lib.to_toml(cfg))
    run.write_json("run.json", {"status": "created", "step": 0, "argv": sys.argv,
                                "tensorflow": tf.__version__, "keras": keras.__version__})
    return run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.train", description=__doc__)
    p.add_argument("--config", help="experiment TOML (default: experiments/default.toml)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting; repeatable")
    p.add_argument("--steps", type=int, help="total mini-batches (train.steps)")
    p.add_argument("--data", help="prepared HDF5 file (data.path); default: built-in faces")
    p.add_argument("--seed", type=int, help="train.seed")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    return p.parse_args(argv)


def resolve(args: argparse.Namespace) -> Config:
    overrides = list(args.set)
    for key, value in (("train.steps", args.steps), ("train.seed", args.seed)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.data is not None:
        overrides.append(f"data.path={args.data!r}".replace("'", '"'))
    if args.resume:
        if args.config or args.set or args.seed is not None or args.data is not None:
            raise ConfigError("--resume continues a run with its own settings; only --steps "
                              "may change")
        path = Path(args.resume) / "config.toml"
        if not path.is_file():
            raise RunError(f"{args.resume}: not a run directory (no config.toml)")
        cfg = config_lib.from_dict(config_lib.read_toml(path), str(path))
        if args.steps is not None:
            cfg.train.steps = args.steps
        return cfg.validate()
    return config_lib.load(args.config, overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = resolve(args)
        if args.dry_run:
            print(config_lib.to_toml(cfg), end="")
            return 0
        images = load_images(cfg.data.path, cfg.data.synth_n, cfg.model.image_size)
        gan = GAN(cfg, images)  # bad data fails here, before any run directory is made
        with RunDir(args.resume) if args.resume else new_run(cfg) as run:
            print(f"run directory: {run.path}", file=sys.stderr)
            fit(gan, run)
    except Stop as e:
        print(f"stopped: {e}", file=sys.stderr)
        return e.exit_code
    except (ConfigError, DataError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
