"""Checkpoints and resume: equivalence, kills at any moment, signals, locks, non-finite losses."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_ganime.data import write_h5
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.families import dcgan
from keras_ganime.runs import RunDir, RunError, Stop, new_run_dir
from keras_ganime.training.loop import Loop, fit, new_run
from tests.helpers import AUGMENTED, assert_same_end, checkpoint_values, losses, tiny


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)


@pytest.fixture(scope="module", autouse=True)
def deterministic_ops():
    tf.config.experimental.enable_op_determinism()


def whole_and_part(tmp_path, images, steps: int, every: int, log_every: int, **extra):
    """A run of `steps` in one go and the same run stopped at step 6, with its settings."""
    settings = {"output.checkpoint_every": every, "output.log_every": log_every,
                "output.runs_dir": str(tmp_path), **extra}
    full = tiny(**settings, **{"train.steps": steps})
    part = tiny(**settings, **{"train.steps": 6})
    with new_run(full) as a:
        fit(Engine(full, images), a, progress=False)
    with new_run(part) as b:
        fit(Engine(part, images), b, progress=False)
    return full, a, b


@pytest.mark.parametrize("extra", [{}, AUGMENTED], ids=["plain", "augmented"])
def test_half_resume_half_equals_one_go(tmp_path, images, extra):
    full, a, b = whole_and_part(tmp_path, images, steps=12, every=4, log_every=2, **extra)
    # As if killed after step 6 was logged but before its checkpoint: the latest is step 4, and
    # the CSV holds rows past it that the resumed run must replace, not repeat.
    for f in b.checkpoints.glob("ckpt-6.*"):
        f.unlink()
    tf.compat.v1.train.update_checkpoint_state(str(b.checkpoints), str(b.checkpoints / "ckpt-4"))
    assert [r["step"] for r in b.read_losses()] == [2, 4, 6]
    with RunDir(b.path) as b:
        fit(Engine(full, images), b, progress=False)
    assert [row[0] for row in losses(a)] == [2, 4, 6, 8, 10, 12]
    assert_same_end(a, b)
    if extra:  # p moved, and its checkpointed value is the one the resumed run went on from
        ps = [float(row["augment_p"]) for row in a.read_losses()]
        (kept,) = [v for k, v in checkpoint_values(a).items() if k.startswith("augment_p/")]
        assert len(set(ps)) > 1 and np.isclose(kept, ps[-1]), (ps, kept)


def test_a_resume_clears_what_a_kill_left_half_written(tmp_path, images):
    """Our temporary files, TensorFlow's unmerged shards and its index half written: nothing else
    would ever delete them. eval/ is `evaluate`'s, which may be writing there now."""
    cfg = tiny(**{"train.steps": 3, "output.runs_dir": str(tmp_path)})
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False)
    debris = [run.path / ".loss.csv.tmp", run.path / "samples" / ".0000006.png.tmp",
              run.checkpoints / "ckpt-6_temp" / "part-00000-of-00001.index",
              run.checkpoints / "checkpoint.tmp0123abcd"]
    evaluating = run.path / "eval" / "0000003" / ".metrics.json.tmp"
    for path in [*debris, evaluating]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("cut short")
    with RunDir(run.path) as again:
        Loop(Engine(cfg, images), again, progress=False)
    assert not [p for p in debris if p.exists()] and not (run.checkpoints / "ckpt-6_temp").exists()
    assert evaluating.exists()


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, images, monkeypatch):
    cfg = tiny(**{"train.steps": 4, "output.checkpoint_every": 2, "output.runs_dir": str(tmp_path)})
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False)
    good = checkpoint_values(run)
    monkeypatch.setitem(dcgan.LOSS_FORMS, "clipped_bce",
                        lambda y, p: tf.constant(np.nan) + tf.reduce_mean(p) * 0)
    # Losses reach the host every 4 steps, yet the message names the first bad step.
    cfg = tiny(**{"train.steps": 12, "output.checkpoint_every": 2, "output.log_every": 4})
    with RunDir(run.path) as run, pytest.raises(Stop, match="NaN or infinite at step 5;"):
        fit(Engine(cfg, images), run, progress=False)
    after = checkpoint_values(run)
    assert all(np.array_equal(good[k], after[k]) for k in good)
    assert run.read_json("run.json")["failed_at"] == 5
    assert [r["step"] for r in run.read_losses()] == [1, 2, 3, 4]


def test_a_resume_whose_settings_no_longer_fit_its_checkpoint_is_one_line(tmp_path, images):
    """config.toml edited to another latent size, then resumed as a command: one line naming
    the checkpoint and the way back, nothing after it (TensorFlow's warnings, as it tears down,
    about the checkpoint it could not restore), and every file of the run as it was
    (config.toml is rewritten only once the checkpoint is restored)."""
    import hashlib

    write_h5(tmp_path / "d.h5", images, np.zeros(len(images)), [], ["x"] * len(images))
    cfg = tiny(**{"output.runs_dir": str(tmp_path / "runs"), "data.path": str(tmp_path / "d.h5")})
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False)
    toml = run.path / "config.toml"
    assert "latent_dim = 8\n" in toml.read_text()
    toml.write_text(toml.read_text().replace("latent_dim = 8\n", "latent_dim = 5\n"))

    def sha256s() -> dict[str, str]:
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(run.path.rglob("*")) if p.is_file()}

    before = sha256s()
    done = subprocess.run([sys.executable, "-m", "keras_ganime.train", "--resume", str(run.path),
                           "--steps", "8"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and not done.stdout
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: {run.path / 'checkpoints' / 'ckpt-6'}: ")
    assert line.endswith(": it does not fit the networks that config.toml describes; put "
                         "config.toml back as the run wrote it (a resume changes only --steps)")
    assert sha256s() == before


def test_a_new_run_folder_is_whole_or_not_there(tmp_path, monkeypatch):
    """Its files are written before it takes its number: killed between config.toml and
    run.json (here an interrupt there), no numbered folder is left for --resume to stumble on."""
    from keras_ganime import runs

    cfg = tiny(**{"output.runs_dir": str(tmp_path)})
    real = runs.atomic_write

    def interrupted(path, data):
        if path.name == "run.json":
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(runs, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        new_run(cfg)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    with new_run(cfg) as run:
        assert run.path.name == "00000-default"
        assert {".lock", "config.toml", "run.json"} <= {p.name for p in run.path.iterdir()}
        umask = os.umask(0)
        os.umask(umask)
        assert run.path.stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir makes a folder
    with new_run(cfg) as run:
        assert run.path.name == "00001-default"


def test_a_run_in_use_is_refused(tmp_path):
    path = new_run_dir(tmp_path, "busy")
    with RunDir(path), pytest.raises(RunError, match="in use by another training process"):
        RunDir(path)
    RunDir(path).close()  # free again once the first holder is gone


def _start(tmp_path, *args):
    data = tmp_path / "d.h5"
    if not data.exists():
        rng = np.random.default_rng(0)
        write_h5(data, rng.integers(0, 256, (40, 16, 16, 3), np.uint8), np.zeros(40), [],
                 ["x"] * 40)
    settings = ["model.image_size=16", "model.latent_dim=8", "train.batch_size=8",
                "train.warmup_steps=2", "output.log_every=5", "output.checkpoint_every=5",
                "output.sample_every=1000", f'output.runs_dir="{tmp_path / "runs"}"']
    command = [sys.executable, "-m", "keras_ganime.train", *args]
    if "--resume" not in args:
        command += ["--data", str(data)] + [x for s in settings for x in ("--set", s)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(tmp_path, process, step: int):
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        state = list((tmp_path / "runs").glob("*/checkpoints/checkpoint"))
        if state and f"ckpt-{step}" in state[0].read_text():
            return state[0].parent.parent
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no checkpoint at step {step}: {process.communicate()[1][-2000:]}")


@pytest.mark.integration
def test_sigkill_mid_run_then_resume_to_the_end(tmp_path):
    process = _start(tmp_path, "--steps", "400")
    run = _wait_for_checkpoint(tmp_path, process, 10)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    resumed = _start(tmp_path, "--resume", str(run), "--steps", "40")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    with RunDir(run) as r:
        assert r.read_json("run.json")["status"] == "done"
        assert [row["step"] for row in r.read_losses()] == list(range(5, 41, 5))
    assert (run / "generator.keras").is_file()


def test_sigint_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    process = _start(tmp_path, "--steps", "100000")
    run = _wait_for_checkpoint(tmp_path, process, 5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if line.startswith("stopped: SIGINT at step")]
    assert message and "--resume" in message[0], err[-2000:]
    with RunDir(run) as r:
        state = r.read_json("run.json")
        assert state["status"] == "interrupted"
        assert f"ckpt-{state['step']}" in (run / "checkpoints" / "checkpoint").read_text()


def test_a_damaged_newest_checkpoint_is_skipped_for_the_one_before(tmp_path, images, capsys):
    """ckpt-6 cut short (as by a full disk or an interrupted copy): resume says so in one line,
    goes on from ckpt-3, and ends where a run in one go does."""
    full, a, b = whole_and_part(tmp_path, images, steps=9, every=3, log_every=1)
    os.truncate(next(b.checkpoints.glob("ckpt-6.data-*")), 1000)
    capsys.readouterr()
    with RunDir(b.path) as b:
        fit(Engine(full, images), b, progress=False)
    assert capsys.readouterr().err.splitlines() == [
        (f"skipped checkpoint {b.checkpoints / 'ckpt-6'}: it does not read completely "
        f"(Read less bytes than requested)")]
    assert_same_end(a, b)
