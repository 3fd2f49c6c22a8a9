"""Failure detection: the device-side loss watch, the metric rules, and what a run records."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_ganime.engines.tensorflow import Engine
from keras_ganime.families.failure import metric_failure
from keras_ganime.runs import RunDir, Stop
from keras_ganime.training.loop import fit, new_run
from tests.helpers import tiny


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)


def feed(gan: Engine, d_loss0: list[float], d_loss1: list[float], g_loss: list[float]) -> None:
    """Runs the watch over these losses, one step each, as the training step would."""
    for values in zip(d_loss0, d_loss1, g_loss, strict=True):
        gan.step.assign_add(1)
        gan.watch(dict(zip(("d_loss0", "d_loss1", "g_loss"),
                           (tf.constant(v, tf.float32) for v in values))))


def test_g_loss_above_the_limit_for_more_than_its_patience(images):
    gan = Engine(tiny(**{"failure.g_patience": 3}), images)
    # Steps 1-2 warm-up (NaN), 3-5 high, 6 low (the streak restarts), 7-10 high: the fourth
    # step in a row above 15 is step 10.
    g = [np.nan, np.nan, 16, 16, 16, 1, 16, 16, 16, 16, 16]
    feed(gan, [0.5] * 11, [0.5] * 11, g)
    reason = "g_loss above 15 for more than 3 steps in a row (since step 7)"
    assert gan.loss_failure() == (10, reason)
    assert gan.high_streak.numpy().tolist() == [0, 0, 5]


def test_a_d_loss_must_stay_high_itself(images):
    gan = Engine(tiny(**{"failure.d_patience": 2}), images)
    # d_loss0 and d_loss1 take turns above the limit: neither stays, so no failure ...
    feed(gan, [16, 1, 16, 1], [1, 16, 1, 1], [1, 1, 1, 1])
    assert gan.loss_failure() is None
    # ... until d_loss1 stays above it for three steps (5, 6, 7); the first failure is kept.
    feed(gan, [1, 1, 1, 1], [16, 16, 16, 16], [1, 1, 1, 1])
    assert gan.loss_failure()[0] == 7
    assert gan.loss_failure()[1].startswith("d_loss1 above 15 for more than 2 steps")


def test_losses_at_the_limit_are_not_above_it(images):
    gan = Engine(tiny(**{"failure.d_patience": 1, "failure.g_patience": 1}), images)
    feed(gan, [15] * 5, [15] * 5, [15] * 5)
    assert gan.loss_failure() is None


@pytest.mark.parametrize(("rows", "expected"), [
    ([{"step": 10, "dup_anime": 0.02, "fid_anime": 90.0}], None),
    # An untrained generator is collapsed: only a return to collapse counts.
    ([{"step": 10, "dup_anime": 1.0}, {"step": 20, "dup_anime": 0.6}], None),
    ([{"step": 10, "dup_anime": 1.0}, {"step": 20, "dup_anime": 0.05},
      {"step": 30, "dup_anime": 0.5}],
     "dup_anime jumped to 0.500 from 0.050, reaching 0.5: mode collapse"),
    ([{"step": 10, "fid_anime": 50.0}, {"step": 20, "fid_anime": 40.0},
      {"step": 30, "fid_anime": 80.0}], None),
    ([{"step": 10, "fid_anime": 50.0}, {"step": 20, "fid_anime": 40.0},
      {"step": 30, "fid_anime": 80.5}], "fid_anime jumped to 80.5, over 2 x its best 40.0"),
])
def test_metric_rules(rows, expected):
    assert metric_failure(rows, tiny()) == expected


def run_with_limit(tmp_path, images, action: str) -> tuple[RunDir, Engine]:
    # A limit of 0 puts every D loss above it: the watch fires on step patience + 1 = 4.
    cfg = tiny(**{"failure.loss_limit": 1e-9, "failure.d_patience": 3, "failure.action": action,
                  "train.steps": 9, "output.log_every": 2, "output.checkpoint_every": 100,
                  "output.runs_dir": str(tmp_path)})
    gan = Engine(cfg, images)
    return new_run(cfg), gan


def test_stop_records_the_step_and_keeps_a_checkpoint(tmp_path, images):
    run, gan = run_with_limit(tmp_path, images, "stop")
    with run, pytest.raises(Stop, match="failed at step 4: d_loss0 above 1e-09"):
        fit(gan, run, progress=False)
    info = json.loads((run.path / "run.json").read_text())
    # Losses are looked at every 2 steps: the exact step is 4, the loop stops at that check.
    assert (info["status"], info["failed_at"], info["step"]) == ("failed", 4, 4)
    assert info["reason"].startswith("d_loss0 above")
    assert tf.train.latest_checkpoint(str(run.checkpoints)).endswith("ckpt-4")


def test_continue_records_the_failure_and_trains_to_the_end(tmp_path, images):
    run, gan = run_with_limit(tmp_path, images, "continue")
    with run:
        fit(gan, run, progress=False)
    info = json.loads((run.path / "run.json").read_text())
    assert (info["status"], info["failed_at"], info["step"]) == ("done", 4, 9)
