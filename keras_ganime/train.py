"""The training loop around `gan.GAN.train_step`; `python -m keras_ganime.train`.

It draws nothing and computes nothing of its own: it runs steps, pulls losses to the host every
`log_every` steps, and writes the run directory (`runs.py`): CSV, TensorBoard, grids, loss plot,
checkpoints, and the metrics every eval.every steps. It records the run's first failure (a loss
that stays above its limit, a collapse or a jump of FID) and, as failure.action says, goes on or
stops. It resumes from the last checkpoint, and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from keras_ganime import config as config_lib
from keras_ganime import distribute, viz
from keras_ganime.config import Config, ConfigError
from keras_ganime.data import DataError, load_images
from keras_ganime.evaluate import EvalError, Evaluator
from keras_ganime.features import FeatureError
from keras_ganime.gan import GAN, WATCHED
from keras_ganime.runs import RunDir, RunError, atomic_write, new_run_dir

GRID_SAMPLES = 64
# loss.csv and loss.png are rewritten whole (atomically): at most this often, so that they stay
# fresh on a slow CPU and cost nothing noticeable at GPU speeds.
REFRESH_S = 30.0


class Stop(Exception):
    """Training ended early; the message says why, in one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def loss_failure(gan: GAN) -> tuple[int, str] | None:
    """(step, reason) once the device-side watch has seen a loss stay above the limit."""
    step = int(gan.loss_failed_at.numpy())
    if step < 0:
        return None
    fail = gan.cfg.failure
    loss = WATCHED[int(gan.loss_failure.numpy())]
    patience = fail.g_patience if loss == "g_loss" else fail.d_patience
    return step, (f"{loss} above {fail.loss_limit:g} for more than {patience} steps in a row "
                  f"(since step {step - patience})")


def metric_failure(rows: list[dict[str, float]], cfg: Config) -> str | None:
    """Why the latest evaluation says the run has failed, or None. Both rules look for a jump
    from a healthy earlier evaluation, since an untrained generator is collapsed and far off at
    first: a duplicate rate back at failure.duplicate_limit after an evaluation below it, or an
    FID over failure.fid_jump times the best of the earlier ones."""
    fail, last, earlier = cfg.failure, rows[-1], rows[:-1]
    for name, value in last.items():
        if name.startswith("dup_") and value >= fail.duplicate_limit:
            best = min((r[name] for r in earlier), default=value)
            if best < fail.duplicate_limit:
                return (f"{name} jumped to {value:.3f} from {best:.3f}, reaching "
                        f"{fail.duplicate_limit:g}: mode collapse")
        if name.startswith("fid_") and earlier:
            best = min(r[name] for r in earlier)
            if value > fail.fid_jump * best:
                return f"{name} jumped to {value:.1f}, over {fail.fid_jump:g} x its best {best:.1f}"
    return None


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


def fit(gan: GAN, run: RunDir, progress: bool = True, evaluator: Evaluator | None = None) -> None:
    """Train in `run` up to cfg.train.steps, resuming from its latest checkpoint if it has one,
    scored by `evaluator` every eval.every steps."""
    cfg, out = gan.cfg, gan.cfg.output
    ckpt = gan.checkpoint()
    manager = tf.train.CheckpointManager(ckpt, run.checkpoints, out.keep_checkpoints)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    start = int(gan.step.numpy())
    # Rows past the checkpoint belong to steps that will be run again.
    rows = [r for r in run.read_losses() if r["step"] <= start]
    scores = [r for r in run.read_csv("metrics.csv") if r["step"] <= start]
    failed = "failed_at" in run.read_json("run.json")
    wall0 = rows[-1]["wall_s"] if rows else 0.0
    fixed_z = gan.fixed_noise(GRID_SAMPLES)
    writer = tf.summary.create_file_writer(str(run.path / "tensorboard"))
    if start == 0:
        n = len(gan.sampler.images)
        pick = np.random.default_rng(cfg.train.seed).choice(n, GRID_SAMPLES, n < GRID_SAMPLES)
        viz.save_grid(tf.gather(gan.sampler.images, pick).numpy(), run.path / "reals.png", 8)

    written = time.perf_counter()

    def write_plots() -> None:
        nonlocal written
        run.write_losses(rows)
        if rows:
            viz.loss_plot(rows, run.path / "loss.png", run.path.name)
        written = time.perf_counter()

    def fail_if_bad(step: int, check_weights: bool = False) -> None:
        bad = int(gan.first_bad_step.numpy())
        if bad < 0 and (not check_weights or gan.weights_finite()):
            return
        bar.close()
        write_plots()
        reason = f"a loss was NaN or infinite at step {bad}" if bad >= 0 else (
            f"the weights held NaN or infinite values at step {step}")
        run.write_json("run.json", {**run.read_json("run.json"), "status": "failed",
                                    "failed_at": bad if bad >= 0 else step, "reason": reason})
        raise Stop(f"{reason}; the last good checkpoint is kept in {run.checkpoints}")

    def record_failure(step: int, reason: str) -> None:
        """The run's first failure goes into run.json; failure.action says whether to go on."""
        nonlocal failed
        if failed:
            return
        failed = True
        run.write_json("run.json", {**run.read_json("run.json"), "failed_at": step,
                                    "reason": reason})
        bar.write(f"failed at step {step}: {reason}")
        if cfg.failure.action == "stop":
            save("failed")
            bar.close()
            raise Stop(f"failed at step {step}: {reason}; checkpoint saved in {run.checkpoints}")

    def evaluate(step: int) -> None:
        scores.append({"step": step, **evaluator(gan.generator),
                       "wall_s": round(wall0 + time.perf_counter() - t0, 3)})
        run.write_csv("metrics.csv", scores, ["step", *evaluator.names, "wall_s"])
        viz.metric_plot({run.path.name: scores}, evaluator.names, run.path / "metrics.png",
                        run.path.name)
        for name in evaluator.names:
            tf.summary.scalar(name, scores[-1][name], step=step)
        if (reason := metric_failure(scores, cfg)) is not None:
            record_failure(step, reason)

    def save(status: str) -> None:
        """The CSV before the checkpoint: a kill between the two leaves rows that resume trims,
        never a gap. Nothing non-finite is ever saved."""
        fail_if_bad(int(gan.step.numpy()), check_weights=True)
        write_plots()
        manager.save(checkpoint_number=int(gan.step.numpy()))
        run.write_json("run.json", {**run.read_json("run.json"), "status": status,
                                    "step": int(gan.step.numpy())})

    t0 = clock = time.perf_counter()
    last_step = start
    bar = tqdm(total=cfg.train.steps, initial=start, desc=run.path.name, unit="step",
               disable=None if progress else True, dynamic_ncols=True)
    with _Signals() as signals, writer.as_default():
        for step in range(start + 1, cfg.train.steps + 1):
            losses = gan.train_step()
            bar.update()
            if step % out.log_every == 0:  # the only place losses reach the host
                values = {k: float(v) for k, v in losses.items()}
                fail_if_bad(step)
                if (failure := loss_failure(gan)) is not None:
                    record_failure(*failure)
                now = time.perf_counter()
                speed = (step - last_step) * cfg.train.batch_size / (now - clock)
                clock, last_step = now, step
                rows.append({"step": step, **values, "images_per_s": round(speed, 2),
                             "wall_s": round(wall0 + now - t0, 3)})
                for k, v in values.items():
                    tf.summary.scalar(k, v, step=step)
                bar.set_postfix(d0=f"{values['d_loss0']:.3f}", d1=f"{values['d_loss1']:.3f}",
                                g=f"{values['g_loss']:.3f}", refresh=False)
                if now - written > REFRESH_S:
                    write_plots()
            if evaluator is not None and cfg.eval.every and step % cfg.eval.every == 0:
                evaluate(step)
            if step % out.sample_every == 0 or step == cfg.train.steps:
                viz.save_grid(gan.generate(fixed_z), run.path / "samples" / f"{step:07d}.png", 8)
                write_plots()
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
    gan.save_generator(run.path / "generator.keras")


def new_run(cfg: Config) -> RunDir:
    """A fresh numbered run directory holding its resolved settings, locked for this process."""
    run = RunDir(new_run_dir(cfg.output.runs_dir, cfg.output.name))
    atomic_write(run.path / "config.toml", config_lib.to_toml(cfg))
    run.write_json("run.json", {"status": "created", "step": 0, "argv": sys.argv,
                                "tensorflow": tf.__version__, "keras": keras.__version__})
    return run


@contextlib.contextmanager
def open_run(cfg: Config, resume: str | None, chief: bool = True) -> Iterator[RunDir]:
    """The run directory to train in: `resume`'s, or a new one. Under a multi-worker strategy only
    the chief writes it; every other worker trains alike in a temporary copy, then deletes it."""
    if chief:
        with RunDir(resume) if resume else new_run(cfg) as run:
            yield run
        return
    path = distribute.worker_dir(resume, config_lib.to_toml(cfg))
    try:
        with RunDir(path) as run:
            yield run
    finally:
        shutil.rmtree(path, ignore_errors=True)


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
    if args.resume:
        if args.config or args.set or args.seed is not None or args.data is not None:
            raise ConfigError("--resume continues a run with its own settings; only --steps "
                              "may change")
        path = Path(args.resume) / "config.toml"
        if not path.is_file():
            raise RunError(f"{args.resume}: not a run directory (no config.toml)")
        cfg = config_lib.from_dict(config_lib.read_toml(path), str(path))
        if args.steps is not None:
            config_lib.set_value(cfg, "train.steps", args.steps)
        return cfg.validate()
    cfg = config_lib.load(args.config, args.set)
    for key, value in (("train.steps", args.steps), ("train.seed", args.seed),
                       ("data.path", args.data)):
        if value is not None:
            config_lib.set_value(cfg, key, value)
    return cfg.validate()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = resolve(args)
        if args.dry_run:
            print(config_lib.to_toml(cfg), end="")
            return 0
        # First: a multi-worker strategy must be made before any other TensorFlow operation.
        chief = distribute.is_chief(distribute.strategy(cfg.train.distribute))
        images = load_images(cfg.data.path, cfg.data.synth_n, cfg.model.image_size)
        gan = GAN(cfg, images)  # bad data fails here, before any run directory is made
        evaluator = Evaluator(cfg, images) if cfg.eval.every else None
        with open_run(cfg, args.resume, chief) as run:
            print(f"run directory: {run.path}", file=sys.stderr)
            fit(gan, run, evaluator=evaluator)
    except Stop as e:
        print(f"stopped: {e}", file=sys.stderr)
        return e.exit_code
    except (ConfigError, DataError, RunError, EvalError, FeatureError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
