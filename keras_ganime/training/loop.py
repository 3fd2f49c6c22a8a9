"""The training loop around an engine's `train_step` (`common.py`: TensorFlow's or JAX's), and
the run directory it trains in.

It draws nothing and computes nothing of its own: it runs steps, pulls the family's values to the
host every `log_every` steps, and writes the run directory (`runs.py`): CSV, TensorBoard, grids,
loss plot, checkpoints, and the metrics every eval.every steps. It records the run's first
failure (a family's loss rule that held too long, a collapse or a jump of FID) and, as
failure.action says, goes on or stops. It resumes from the last checkpoint, and stops cleanly on
SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import errno
import math
import resource
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
from tqdm import tqdm

from keras_ganime import config as config_lib
from keras_ganime import families
from keras_ganime.config import Config
from keras_ganime.engines import checkpoints, common
from keras_ganime.engines.common import GRID_COLUMNS
from keras_ganime.engines.protocol import Engine
from keras_ganime.evaluation.scorer import Evaluator
from keras_ganime.families.base import Phase
from keras_ganime.families.failure import metric_failure
from keras_ganime.images import viz
from keras_ganime.runs import (
    RUN_FORMAT,
    RunDir,
    Stop,
    atomic_write,
    json_text,
    new_run_dir,
    package_version,
)
from keras_ganime.training.scalars import ScalarWriter

GRID_SAMPLES = 64
# loss.csv and loss.png are rewritten whole (atomically): at most this often, so that they stay
# fresh on a slow CPU and cost nothing noticeable at GPU speeds.
REFRESH_S = 30.0


def _size(n: float) -> str:
    if n == resource.RLIM_INFINITY:
        return "unlimited"
    for unit in ("bytes", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _shown(value: float) -> str:
    """A progress value; '-' for a phase that did not run (its values are NaN then)."""
    return f"{value:.3f}" if math.isfinite(value) else "-"


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{s:02d}"


def clear_debris(run: RunDir) -> None:
    """Deletes what the trainer's writes cut short leave behind: our temporary files
    (.NAME.tmp*), TensorFlow's unmerged checkpoint shards (ckpt-N_temp/) and its half-written
    index (checkpoint.tmpHEX), the JAX engine's half-written archive (ckpt-N_temp.npz). For the
    process that holds the run's lock: only the trainer writes these places (eval/, which
    `evaluate` writes without the lock, is left alone): the run's folder and its folders of
    pictures (samples/, milestones/, a family's such as BEGAN's reconstructions/)."""
    places = [run.path, *(p for p in run.path.iterdir()
                          if p.is_dir() and p.name not in ("eval", "checkpoints"))]
    for debris in [*(p for place in places for p in place.glob(".*.tmp*")),
                   *run.checkpoints.glob("*_temp*"), *run.checkpoints.glob("checkpoint.tmp*")]:
        shutil.rmtree(debris) if debris.is_dir() else debris.unlink(missing_ok=True)


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


class Loop:
    """Trains `engine` in `run` up to cfg.train.steps, resuming from the run's newest readable
    checkpoint if it has one, scored by `evaluator` every eval.every steps and at each milestone.
    """

    def __init__(self, engine: Engine, run: RunDir, progress: bool = True,
                 evaluator: Evaluator | None = None) -> None:
        self.engine, self.run, self.evaluator = engine, run, evaluator
        clear_debris(run)  # a process killed mid-write left it; nothing else ever would
        self.cfg = cfg = engine.cfg
        spec = families.SPECS[cfg.family]
        self.logged, self.plots = spec.logged(cfg), spec.plots(cfg)
        self.progress_names = spec.progress(cfg)
        self.start = engine.open_checkpoints(run.checkpoints, cfg.output.keep_checkpoints)
        # Its settings as they now are (--steps may have changed), once its checkpoint fits.
        atomic_write(run.path / "config.toml", config_lib.to_toml(cfg))
        need = cfg.output.keep_checkpoints * engine.checkpoint_bytes()
        if (free := shutil.disk_usage(run.path).free) < need:
            print(f"warning: {_size(free)} free for {run.path}, but its "
                  f"{cfg.output.keep_checkpoints} checkpoints take about {_size(need)}",
                  file=sys.stderr)
        # Rows past the checkpoint belong to steps that will be run again.
        self.rows = [r for r in run.read_losses() if r["step"] <= self.start]
        self.scores = [r for r in run.read_csv("metrics.csv") if r["step"] <= self.start]
        self.failed = "failed_at" in run.read_json("run.json")
        self.wall0 = self.rows[-1]["wall_s"] if self.rows else 0.0
        self.written = self.t0 = time.perf_counter()
        self.bar = tqdm(total=cfg.train.steps, initial=self.start, desc=run.path.name,
                        unit="step", disable=None if progress else True, dynamic_ncols=True)
        # Without a terminal the bar turns itself off: a plain line every output.progress_s
        # seconds instead, so that a log file shows the run going.
        self.plain = progress and not sys.stderr.isatty()
        self.line_at = -math.inf

    # --- the run directory ---
    def write_plots(self) -> None:
        self.run.write_losses(self.rows, self.logged)
        if self.rows:
            viz.loss_plot(self.rows, self.plots, self.run.path / "loss.png", self.run.path.name)
        self.written = time.perf_counter()

    def save(self, status: str) -> None:
        """The CSV before the checkpoint: a kill between the two leaves rows that resume trims,
        never a gap. Nothing non-finite is ever saved."""
        step = self.engine.step_count()
        self.fail_if_bad(step, check_weights=True)
        self.write_plots()
        self.engine.save(step)
        self.update_json(status=status, step=step)

    def update_json(self, **values: Any) -> None:
        self.run.write_json("run.json", {**self.run.read_json("run.json"), **values})

    # --- failures ---
    def fail_if_bad(self, step: int, check_weights: bool = False) -> None:
        bad = self.engine.first_bad()
        if bad < 0 and (not check_weights or self.engine.weights_finite()):
            return
        self.bar.close()
        self.write_plots()
        reason = f"a value was NaN or infinite at step {bad}" if bad >= 0 else (
            f"the weights held NaN or infinite values at step {step}")
        self.update_json(status="failed", failed_at=bad if bad >= 0 else step, reason=reason)
        raise Stop(f"{reason}; the last good checkpoint is kept in {self.run.checkpoints}")

    def record_failure(self, step: int, reason: str) -> None:
        """The run's first failure goes into run.json; failure.action says whether to go on."""
        if self.failed:
            return
        self.failed = True
        self.update_json(failed_at=step, reason=reason)
        self.bar.write(f"failed at step {step}: {reason}")
        if self.cfg.failure.action == "stop":
            self.save("failed")
            self.bar.close()
            raise Stop(f"failed at step {step}: {reason}; checkpoint saved in "
                       f"{self.run.checkpoints}")

    # --- the phases of one iteration ---
    def log(self, step: int, values: dict[str, float], seconds: float, steps: int) -> None:
        """The only place values reach the host."""
        self.fail_if_bad(step)
        if (failure := self.engine.loss_failure()) is not None:
            self.record_failure(*failure)
        self.rows.append({"step": step, **values,
                          "images_per_s": round(steps * self.cfg.train.batch_size / seconds, 2),
                          "wall_s": self.wall_s()})
        self.scalars.write(values, step)
        self.bar.set_postfix({**{label: _shown(values[name])
                                 for label, name in self.progress_names.items()},
                              **{f"{p.name} starts": p.start + 1 for p in self.waiting(step)}},
                             refresh=False)
        if self.plain and time.perf_counter() - self.line_at >= self.cfg.output.progress_s:
            self.progress_line(step, values)
        if time.perf_counter() - self.written > REFRESH_S:
            self.write_plots()

    def waiting(self, step: int) -> list[Phase]:
        """The phases that have not run yet (G during the reference's warm-up): their values
        show as '-', and the progress says from which step they run."""
        return [p for p in self.engine.phases if p.start >= step]

    def progress_line(self, step: int, values: dict[str, float]) -> None:
        """step, the family's progress values, images/s, elapsed and the time left, on one line."""
        self.line_at = now = time.perf_counter()
        done = step - self.start
        left = (now - self.t0) / done * (self.cfg.train.steps - step) if done else math.nan
        shown = "  ".join(f"{label} {_shown(values[name])}"
                          for label, name in self.progress_names.items())
        shown += "".join(f"  ({p.name} starts at step {p.start + 1})" for p in self.waiting(step))
        print(f"{self.run.path.name} step {step}/{self.cfg.train.steps}  {shown}  "
              f"{self.rows[-1]['images_per_s']:.1f} images/s  elapsed {_clock(self.wall_s())}  "
              f"left {_clock(left)}", file=sys.stderr, flush=True)

    def evaluate(self, step: int) -> None:
        """Scores the generator as it is now. An evaluation that fails (train checked what it
        needs before step 1, so this is the unforeseen) is a line and an entry in run.json:
        training and checkpointing go on, and `evaluate RUN --all-checkpoints` can score the
        checkpoints kept later."""
        evaluator = self.evaluator
        start = time.perf_counter()
        try:
            values = evaluator(self.engine.family)
        # Any failure, a bug's too: hours of training are worth more than one evaluation, and
        # the line and run.json say what failed (tests that read metrics.csv still catch a bug).
        except Exception as e:  # noqa: BLE001
            first = next((line for line in str(e).splitlines() if line.strip()), "")
            error = f"{type(e).__name__}: {first[:200]}"
            failures = self.run.read_json("run.json").get("eval_failures", 0) + 1
            self.update_json(eval_failures=failures, last_eval_error=error,
                             last_eval_error_step=step)
            self.bar.write(f"evaluation at step {step} failed ({error}); training goes on, and "
                           f"python -m keras_ganime.evaluate {self.run.path} --all-checkpoints "
                           "scores the checkpoints kept", file=sys.stderr)
            return
        self.scores.append({"step": step, **values, "eval_s": round(time.perf_counter() - start, 2),
                            "wall_s": self.wall_s()})
        patches = [f"{n}_patches" for n in evaluator.names if f"{n}_patches" in values]
        self.run.write_csv("metrics.csv", self.scores,
                           ["step", *evaluator.names, *patches, "eval_s", "wall_s"])
        viz.metric_plot({self.run.path.name: self.scores}, evaluator.names,
                        self.run.path / "metrics.png", self.run.path.name)
        self.scalars.write({name: self.scores[-1][name] for name in evaluator.names}, step)
        if (reason := metric_failure(self.scores, self.cfg)) is not None:
            self.record_failure(step, reason)

    def wall_s(self) -> float:
        return round(self.wall0 + time.perf_counter() - self.t0, 3)

    def fit(self) -> None:
        """Trains to the end; a write that fails (a full disk, a size limit) ends the run with
        one line naming the file, no temporary debris, the failure in run.json and the last
        checkpoint still the latest, so that the run resumes once there is room."""
        try:
            self._train()
        except OSError as e:
            raise self.write_failed(e) from None

    def write_failed(self, e: OSError) -> Stop:
        step = self.engine.step_count()
        self.bar.close()
        clear_debris(self.run)
        if e.errno == errno.ENOSPC:
            why = f"the disk is full ({_size(shutil.disk_usage(self.run.path).free)} free)"
        elif e.errno == errno.EFBIG:
            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            why = f"a file size limit was reached ({_size(limit)}; see ulimit -f)"
        else:
            why = e.strerror or type(e).__name__
        reason = f"writing {e.filename} failed at step {step}: {why}"
        with contextlib.suppress(OSError):  # the disk that refused the file may refuse this too
            self.update_json(status="write failed", error=reason, error_step=step)
        latest = checkpoints.listed(self.run.checkpoints)
        kept = f"the latest checkpoint is still {Path(latest[-1]).name}" if latest else (
            "no checkpoint was written yet")
        return Stop(f"{reason}; {kept}; make room, then continue with python -m "
                    f"keras_ganime.train --resume {self.run.path}", exit_code=2)

    def _train(self) -> None:
        cfg, out, engine, run = self.cfg, self.cfg.output, self.engine, self.run
        fixed = engine.fixed_latents(GRID_SAMPLES)
        n = len(engine.images)
        pick = np.random.default_rng(cfg.train.seed).choice(n, GRID_SAMPLES, n < GRID_SAMPLES)
        reals = engine.images[pick]
        if self.start == 0:
            viz.save_grid(reals, run.path / "reals.png", 8)
        milestones = set(cfg.milestones())
        clock, last = time.perf_counter(), self.start
        with _Signals() as signals, ScalarWriter(run.path / "tensorboard") as self.scalars:
            for step in range(self.start + 1, cfg.train.steps + 1):
                values = engine.train_step()
                self.bar.update()
                if step % out.log_every == 0:
                    now = time.perf_counter()
                    self.log(step, {k: float(values[k]) for k in self.logged}, now - clock,
                             step - last)
                    clock, last = now, step
                milestone = step in milestones
                if self.evaluator is not None and (
                        milestone or cfg.eval.every and step % cfg.eval.every == 0):
                    self.evaluate(step)
                if milestone:  # the sampling network alone, kept beside the checkpoint ring
                    engine.export(run.milestones / f"{step:07d}{engine.export_suffix}")
                if step % out.sample_every == 0 or step == cfg.train.steps or milestone:
                    viz.save_grid(engine.generate(fixed), run.path / "samples" / f"{step:07d}.png",
                                  GRID_COLUMNS)
                    for name, images in engine.pictures(reals).items():  # of reals.png's faces
                        (run.path / name).mkdir(exist_ok=True)
                        viz.save_grid(images, run.path / name / f"{step:07d}.png", 8)
                    self.write_plots()
                if step % out.checkpoint_every == 0:
                    self.save("running")
                if signals.received:
                    self.save("interrupted")
                    self.bar.close()
                    name = signal.Signals(signals.received).name
                    raise Stop(f"{name} at step {step}: checkpoint saved; continue with "
                               f"python -m keras_ganime.train --resume {run.path}",
                               128 + signals.received)
        self.bar.close()
        self.save("done")
        engine.export(run.path / f"generator{engine.export_suffix}")


def fit(engine: Any, run: RunDir, progress: bool = True,
        evaluator: Evaluator | None = None) -> None:
    Loop(engine, run, progress, evaluator).fit()


def new_run(cfg: Config) -> RunDir:
    """A fresh numbered run directory holding its resolved settings, locked for this process."""
    info = {"status": "created", "step": 0, "argv": sys.argv, "keras_ganime": package_version(),
            "run_format": RUN_FORMAT, **common.versions()}
    return RunDir(new_run_dir(cfg.output.runs_dir, cfg.output.name, {
        "config.toml": config_lib.to_toml(cfg),
        "run.json": json_text(info)}))


@contextlib.contextmanager
def open_run(cfg: Config, resume: str | None, chief: bool = True) -> Iterator[RunDir]:
    """The run directory to train in: `resume`'s, or a new one. Under a multi-worker strategy only
    the chief writes it; every other worker trains alike in a temporary copy, then deletes it."""
    if chief:
        with RunDir(resume) if resume else new_run(cfg) as run:
            yield run
        return
    from keras_ganime.engines import distribute  # TensorFlow's multi-worker cluster only

    path = distribute.worker_dir(resume, config_lib.to_toml(cfg))
    try:
        with RunDir(path) as run:
            yield run
    finally:
        shutil.rmtree(path, ignore_errors=True)
