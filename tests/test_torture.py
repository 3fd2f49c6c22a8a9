"""Kills at any moment (issue 17, item 3): one run SIGKILLed at 20 moments, resumed after each,
ends bit for bit where a run in one go ends. `make test-torture`; outside `make test`.

The kills come from tests/torture/sitecustomize.py, on the PYTHONPATH of these subprocesses
only: each process dies at the N-th write of one kind, counted from its own start, so that the
moments land at the places below whatever the speed of the machine. Each resume restarts from
the newest checkpoint that reads, so some kills cost no progress and the plan is written with
the checkpoint each process starts from in mind (every 4 steps; 3 kept).
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_ganime.runs import RunDir
from tests.helpers import (
    AUGMENTED,
    CONDITIONAL,
    as_set,
    assert_same_end,
    labelled_h5,
    random_images,
)

pytestmark = pytest.mark.torture

TORTURE = Path(__file__).resolve().parent / "torture"
STEPS = 40
# Narrow (model.filters=8): the kills land at writes, whatever a step's arithmetic; a run writes
# 10 checkpoints, of 28 MB each at the reference's width and 0.6 MB here.
SETTINGS = ["model.image_size=16", "model.latent_dim=8", "model.filters=8", "train.batch_size=8",
            "train.warmup_steps=2", "output.log_every=1", "output.checkpoint_every=4",
            "output.keep_checkpoints=3", "output.sample_every=5", 'output.milestones="20"',
            *as_set(AUGMENTED),  # augmented: its draws, p and its signs resume too
            *as_set(CONDITIONAL)]  # and conditional: its labels' draws too

# (the kill, the step it lands at, the moment in words). The comment before each is the
# checkpoint its process resumes from; the first makes the run.
PLAN = [
    # new run
    ("replace:run.json:1", 0, "the new run's run.json before its rename (config.toml alone)"),
    # no checkpoint yet: each of these starts the run again from step 0
    ("replace:config.toml:1", 0, "the resume's rewrite of config.toml"),
    ("replace:reals.png:1", 0, "the grid of real images"),
    ("step:3", 3, "mid-run, after step 3, before its logging"),
    ("merge:1", 4, "ckpt-4: shards written to ckpt-4_temp/, not yet merged and renamed"),
    ("state:1", 4, "ckpt-4 merged and renamed, not yet listed in checkpoints/checkpoint"),
    ("replace:run.json:1", 4, "ckpt-4 listed, run.json not yet updated"),
    # ckpt-4
    ("replace:0*.png:1", 5, "the sample grid of step 5"),
    ("replace:loss.csv:2", 8, "loss.csv in step 8's save, before ckpt-8"),
    ("replace:loss.png:2", 8, "loss.png in step 8's save: loss.csv already past ckpt-4"),
    ("step:10", 10, "after step 10, before its sample grid (ckpt-8 done)"),
    # ckpt-8
    ("replaced:loss.csv:1", 10, "step 10: loss.csv renamed, loss.png not yet"),
    ("merge:2", 16, "ckpt-16's shards written, not merged (ckpt-12 done)"),
    # ckpt-12
    ("state:2", 16, "ckpt-16 listed, ckpt-4 deleted by the sweep but still in the index"),
    # ckpt-16
    ("replace:metrics.csv:1", 20, "the metrics of milestone 20"),
    ("replace:0*.keras:1", 20, "the generator of milestone 20"),
    ("replace:run.json:2", 24, "run.json in step 24's save (ckpt-24 listed)"),
    # ckpt-24
    ("state:3", 32, "ckpt-32 written, not yet listed (ckpt-28 done)"),
    # ckpt-28
    ("merge:4", 40, "the end's save rewriting ckpt-40 over the one listed (status running)"),
    # ckpt-40
    ("replace:generator.keras:1", 40, "the final generator.keras before its rename"),
]


def train(runs: Path, args: list[str], kill_at: str | None) -> subprocess.CompletedProcess:
    """python -m keras_ganime.train in its own process, to be killed at `kill_at` (None: not)."""
    # Op determinism as in the in-process resume tests: a bit-identical end must not hinge on
    # a kernel's order of summation.
    env = {**os.environ, "TF_DETERMINISTIC_OPS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(TORTURE),
                                                       os.environ.get("PYTHONPATH")]))}
    env.pop("GANIME_TORTURE_KILL_AT", None)
    if kill_at:
        env["GANIME_TORTURE_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "keras_ganime.train", *args], cwd=runs.parent,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def new_run_args(data: Path, runs: Path) -> list[str]:
    return ["--data", str(data), "--steps", str(STEPS),
            *(x for s in [*SETTINGS, f'output.runs_dir="{runs}"'] for x in ("--set", s))]


def run_dir(runs: Path) -> Path:
    (run,) = runs.iterdir()
    return run


def debris(run: Path) -> list[Path]:
    """What a write cut short leaves: our temporary files, TensorFlow's shards and index."""
    return [*run.rglob(".*.tmp*"), *run.rglob("*_temp*"), *run.rglob("checkpoint.tmp*")]


def test_twenty_kills_and_resumes_end_bit_for_bit_as_one_go(tmp_path):
    assert len(PLAN) == 20
    data = tmp_path / "d.h5"
    labelled_h5(data, random_images())
    start = time.monotonic()
    whole = tmp_path / "whole"
    done = train(whole, new_run_args(data, whole), None)
    assert done.returncode == 0, done.stderr[-3000:]
    one_go = time.monotonic() - start

    killed = tmp_path / "killed"
    moments = []
    for i, (kill_at, step, what) in enumerate(PLAN):
        args = ["--resume", str(run_dir(killed))] if i else new_run_args(data, killed)
        done = train(killed, args, kill_at)
        said = [line for line in done.stderr.splitlines() if line.startswith("torture: ")]
        # -9, and the line from sitecustomize: the kill was the planned one, not a crash or an
        # end that came before the moment did; at the step planned, or the words above are wrong.
        assert done.returncode == -9 and len(said) == 1, (
            f"kill {i + 1} ({kill_at}) did not happen: exit status {done.returncode}\n"
            f"{done.stderr[-3000:]}")
        assert said[0].endswith(f"(step {step})"), f"kill {i + 1}: {said[0]}, not at step {step}"
        moment = said[0].removeprefix("torture: SIGKILL at ").replace(f"{run_dir(killed)}/", "")
        moments.append(f"{i + 1:2d}  {moment}\n    {what}")
    run = run_dir(killed)
    done = train(killed, ["--resume", str(run)], None)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"\n{len(moments)} kills and resumes, then the last resume to the end, in "
          f"{time.monotonic() - start - one_go:.0f} s (the run in one go: {one_go:.0f} s):\n"
          + "\n".join(moments))

    reference = run_dir(whole)
    with RunDir(reference) as a, RunDir(run) as b:
        assert_same_end(a, b)
        assert [r["step"] for r in b.read_losses()] == list(range(1, STEPS + 1))
        assert b.read_json("run.json")["status"] == "done"
    assert not debris(run), debris(run)
    frames = sorted(p.name for p in (reference / "samples").iterdir())
    assert frames == sorted(p.name for p in (run / "samples").iterdir()) and len(frames) == 8
    _, mismatch, errors = filecmp.cmpfiles(reference / "samples", run / "samples", frames,
                                           shallow=False)
    assert not mismatch and not errors
    assert (run / "generator.keras").is_file() and (run / "milestones" / "0000020.keras").is_file()
