"""A write that fails (a full disk, a file size limit) ends the run with one line naming the
file, leaves no temporary debris, records the failure and its step in run.json, keeps the last
checkpoint the latest, and the run resumes once there is room."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_ganime.data import write_h5
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.runs import RunDir, Stop
from keras_ganime.training.loop import fit, new_run
from tests.helpers import random_images, tiny

ROOT = Path(__file__).resolve().parent.parent


def debris(run: Path) -> list[Path]:
    return [*run.rglob(".*.tmp*"), *run.rglob("*_temp*")]


def test_a_full_disk_ends_the_run_in_one_line_and_it_resumes(tmp_path, monkeypatch):
    images = random_images()
    cfg = tiny(**{"train.steps": 9, "output.checkpoint_every": 3, "output.sample_every": 100,
                  "output.runs_dir": str(tmp_path)})
    engine = Engine(cfg, images)
    replace = os.replace

    def full_at_step_6(src, dst):
        # The disk fills up as loss.csv is written before the checkpoint of step 6.
        if Path(dst).name == "loss.csv" and int(engine.step.numpy()) == 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", full_at_step_6)
    with new_run(cfg) as run, pytest.raises(Stop) as stop:
        fit(engine, run, progress=False)
    monkeypatch.setattr(os, "replace", replace)
    message = str(stop.value)
    assert stop.value.exit_code == 2 and "\n" not in message
    assert message.startswith(f"writing {run.path / 'loss.csv'} failed at step 6: the disk is "
                              f"full (")
    assert "the latest checkpoint is still ckpt-3" in message and "--resume" in message
    info = run.read_json("run.json")
    assert (info["status"], info["error_step"]) == ("write failed", 6)
    assert not debris(run.path)
    assert tf.train.latest_checkpoint(str(run.checkpoints)).endswith("ckpt-3")
    with RunDir(run.path) as again:
        fit(Engine(cfg, images), again, progress=False)
        assert again.read_json("run.json")["status"] == "done"
        assert [r["step"] for r in again.read_losses()] == list(range(1, 10))


def test_a_file_size_limit_hit_by_the_checkpoint(tmp_path):
    """`ulimit -f`, as the issue tried it: TensorFlow's own writer fails with EFBIG."""
    data = tmp_path / "d.h5"
    write_h5(data, random_images(), np.zeros(40), [], ["x"] * 40)
    runs = tmp_path / "runs"
    settings = ["model.image_size=16", "model.latent_dim=8", "train.batch_size=8",
                "train.warmup_steps=2", "output.checkpoint_every=3", "output.sample_every=100",
                f'output.runs_dir="{runs}"']
    train = [sys.executable, "-m", "keras_ganime.train", "--data", str(data), "--steps", "6",
             *(x for s in settings for x in ("--set", s))]
    # 1,000 KB (bash counts in 1,024 bytes): room for the CSV, plots and grids, not for a
    # checkpoint.
    done = subprocess.run(["bash", "-c", "ulimit -f 1000; exec \"$@\"", "bash", *train],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (run,) = runs.iterdir()
    stopped = [line for line in done.stderr.splitlines() if line.startswith("stopped: ")]
    assert len(stopped) == 1, done.stderr[-3000:]
    assert stopped[0].startswith(f"stopped: writing {run / 'checkpoints' / 'ckpt-3'} failed at "
                                 f"step 3: a file size limit was reached (1000.0 KB; see ulimit")
    assert "no checkpoint was written yet" in stopped[0]
    assert not debris(run)
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["error_step"]) == ("write failed", 3)


def test_a_run_warns_at_start_when_its_checkpoints_will_not_fit(tmp_path, monkeypatch, capsys):
    import shutil

    from keras_ganime.training import loop

    cfg = tiny(**{"train.steps": 1, "output.runs_dir": str(tmp_path)})
    engine = Engine(cfg, random_images())
    need = cfg.output.keep_checkpoints * engine.checkpoint_bytes()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(loop.shutil, "disk_usage",
                        lambda path: usage._replace(free=need // 2))
    with new_run(cfg) as run:
        loop.Loop(engine, run, progress=False)
    warning = capsys.readouterr().err.splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"warning: {loop._size(need // 2)} free "
                                                       f"for {run.path}, but its 10 checkpoints")
