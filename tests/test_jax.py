"""The JAX engine (engines/jax.py), on Keras's JAX backend: `make test-jax` (KERAS_BACKEND=jax).

One step of every family against TensorFlow's engine from the same weights and inputs (its side
in a subprocess on TensorFlow: tests/backend_step.py); a run from the command line that never
loads TensorFlow, with its grids, scalars, checkpoints, evaluation and export; a run SIGKILLed
twice, inside a checkpoint's write and after a step, that resumes bit for bit as the run in one
go; the run's generator read by generate on both backends.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_ganime.engines import checkpoints
from keras_ganime.runs import RunDir
from tests import backend_step
from tests.helpers import AUGMENTED, CONDITIONAL, as_set, labelled_h5, losses, random_images
from tests.test_torture import run_dir, train

pytestmark = [pytest.mark.jax, pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND") != "jax",
    reason="the JAX engine's: run with KERAS_BACKEND=jax (make test-jax)")]
ROOT = Path(__file__).resolve().parents[1]


def on(backend: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """python ARGS in a process of its own on `backend`."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": backend}, timeout=600,
                          check=False)


@pytest.mark.parametrize("case", list(backend_step.CASES))
def test_two_steps_equal_tensorflows_from_the_same_weights_and_inputs(case, tmp_path):
    done = on("tensorflow", "-m", "tests.backend_step", case, str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    backend_step.run(case, tmp_path)
    with (np.load(tmp_path / "tensorflow.npz") as t, np.load(tmp_path / "jax.npz") as j,
          np.load(tmp_path / "inputs.npz") as before):
        assert sorted(t.files) == sorted(j.files)
        values = [k for k in t.files if k.startswith("v")]
        assert len(values) >= 6 and all(k.startswith(("v0/", "v1/")) for k in values)
        for k in values:
            np.testing.assert_allclose(j[k], t[k], rtol=1e-5, atol=1e-6, err_msg=k)
        weights = [k for k in t.files if k.startswith("w/")]
        largest = max(float(np.max(np.abs(t[k] - j[k].astype(t[k].dtype)), initial=0))
                      for k in weights)
        moved = max(float(np.max(np.abs(t[k] - before[k]), initial=0)) for k in weights
                    if t[k].dtype.kind == "f")
        print(f"{case}: {len(weights)} variables, largest difference {largest:.1e}, "
              f"largest change in the steps {moved:.2f}")
        assert moved > 1e-3  # the steps moved the weights: their agreement says something
        for k in weights:
            # Each variable's change, so that an update missing on one side shows down to
            # 1e-5 (the rounding of two steps at lr 0.05 compounds to about 2e-6).
            np.testing.assert_allclose(j[k] - before[k], t[k] - before[k], rtol=1e-3,
                                       atol=1e-5, err_msg=k)


def test_data_parallel_over_two_devices_is_one_devices_step():
    """keras.distribution's data parallelism (train.distribute = mirrored) on two CPU devices
    against one device, each family, from the same weights and inputs (tests/data_parallel.py)."""
    done = subprocess.run([sys.executable, "-m", "tests.data_parallel"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "KERAS_BACKEND": "jax",
                               "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(report)
    assert set(report) == set(backend_step.CASES)
    for case, r in report.items():
        assert r["devices"] == 2 and r["weight_devices"] == 2 and r["all_reduces"] > 0, case
        assert r["values"] < 1e-5 and r["variables"] < 1e-5 and r["moved"] > 1e-3, case


@pytest.mark.parametrize("inputs, kernel, strides, padding", [
    ((4, 8, 8, 32), (4, 4, 16, 32), 2, "same"),  # a DCGAN G's upsampling layer
    ((4, 1, 1, 20), (4, 4, 32, 20), 1, "valid"),  # its stem, z to 4x4
    ((4, 4, 4, 16), (5, 5, 8, 16), 2, "same"),  # carpedm20's 5x5
])
def test_the_cpu_transposed_convolution_is_keras_with_a_faster_kernel_gradient(
        inputs, kernel, strides, padding):
    """jax_engine's transposed convolution on CPU: Keras's forward pass and input gradient bit
    for bit, its kernel gradient to rounding (another order of summation)."""
    import jax
    from keras.src.backend.jax import nn as keras_jax_nn

    from keras_ganime.engines import jax as jax_engine

    assert keras_jax_nn.conv_transpose is jax_engine._conv_transpose  # installed on CPU
    keras_op, ours = jax_engine._keras_conv_transpose, jax_engine._conv_transpose
    rng = np.random.default_rng(0)
    x, w = (rng.normal(size=s).astype("float32") for s in (inputs, kernel))
    dy = rng.normal(size=keras_op(x, w, strides, padding).shape).astype("float32")

    def gradients(op):
        return jax.jit(jax.grad(lambda a, b: (op(a, b, strides, padding) * dy).sum(),
                                (0, 1)))(x, w)

    np.testing.assert_array_equal(ours(x, w, strides, padding), keras_op(x, w, strides, padding))
    (dx, dw), (keras_dx, keras_dw) = gradients(ours), gradients(keras_op)
    np.testing.assert_array_equal(dx, keras_dx)
    np.testing.assert_allclose(dw, keras_dw, rtol=1e-5, atol=1e-5 * float(np.abs(keras_dw).max()))


def jax_run_args(data: Path, runs: Path, steps: int, *settings: str) -> list[str]:
    tiny = ["model.image_size=16", "model.latent_dim=8", "train.batch_size=8",
            "output.log_every=1", "output.checkpoint_every=4",
            "output.sample_every=5", 'output.milestones=""', f'output.runs_dir="{runs}"',
            *settings]
    return ["--backend", "jax", "--data", str(data), "--steps", str(steps),
            *(x for s in tiny for x in ("--set", s))]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "d.h5"
    return labelled_h5(path, random_images())  # the labels for a conditional run


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory, data) -> tuple[Path, dict]:
    """Five steps from the command line with an evaluation (SWD and the anime encoder's FID),
    in a process that reports whether TensorFlow was ever loaded."""
    runs = tmp_path_factory.mktemp("runs")
    args = jax_run_args(data, runs, 5, "eval.every=5", "eval.samples=40",
                        'eval.metrics="swd,fid_anime"')
    script = ("import json, sys; from keras_ganime import train; "
              f"rc = train.main({args!r}); "
              "print(json.dumps({'rc': rc, 'tensorflow': 'tensorflow' in sys.modules}))")
    done = on("jax", "-c", script, cwd=runs)
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir(runs), json.loads(done.stdout.strip().splitlines()[-1])


def test_a_run_from_the_command_line_never_loads_tensorflow(jax_run):
    run, report = jax_run
    assert report == {"rc": 0, "tensorflow": False}
    info = json.loads((run / "run.json").read_text())
    assert info["backend"] == "jax" and info["status"] == "done" and "jax" in info
    assert [Path(p).name for p in checkpoints.listed(run / "checkpoints")] == [
        "ckpt-4.npz", "ckpt-5.npz"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["0000005.png"]
    assert (run / "generator.keras").is_file() and (run / "loss.png").is_file()
    with RunDir(run) as r:
        assert [row["step"] for row in r.read_losses()] == [1, 2, 3, 4, 5]
        (score,) = r.read_csv("metrics.csv")
    assert score["step"] == 5 and np.isfinite(score["swd"]) and score["fid_anime"] > 0


def test_its_scalars_are_tensorboards(jax_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(jax_run[0] / "tensorboard"))
    events.Reload()
    assert {"d_loss0", "g_loss", "fid_anime"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("d_loss0")] == [1, 2, 3, 4, 5]


def test_generate_reads_its_checkpoint_on_either_backend(jax_run, tmp_path):
    """Its archive checkpoints are backend-neutral: TensorFlow's generate reads them too. The
    run without its generator.keras, so that generate restores the checkpoint."""
    run = tmp_path / "run"
    shutil.copytree(jax_run[0], run, ignore=shutil.ignore_patterns("generator.keras"))
    for backend in ("jax", "tensorflow"):
        out = tmp_path / backend
        done = on(backend, "-m", "keras_ganime.generate", str(run), "--out", str(out), "--n",
                  "16", "--seed", "3")
        assert done.returncode == 0, done.stderr[-3000:]
        assert list(out.glob("*.png"))


SAMPLE = """import sys, numpy as np
from keras_ganime import config
from keras_ganime import restore as sampling
from keras_ganime.restore import latest_checkpoint
run, z, out = sys.argv[1:]
family = sampling.build(config.read_run_config(run))
sampling.restore(family, latest_checkpoint(__import__("pathlib").Path(run)))
np.save(out, np.asarray(family.sampler()(np.load(z), training=False)))
"""


def test_its_checkpoint_makes_the_same_faces_on_both_backends(jax_run, tmp_path):
    """The same latents through the generator restored from the archive, on each backend: the
    same images in [-1, 1], to float32's rounding."""
    z = tmp_path / "z.npy"
    np.save(z, np.random.default_rng(0).normal(size=(16, 1, 1, 8)).astype(np.float32))
    faces = {}
    for backend in ("jax", "tensorflow"):
        done = on(backend, "-c", SAMPLE, str(jax_run[0]), str(z), str(tmp_path / backend))
        assert done.returncode == 0, done.stderr[-3000:]
        faces[backend] = np.load(tmp_path / f"{backend}.npy")
    assert faces["jax"].shape == (16, 16, 16, 3)
    assert faces["jax"].std(axis=0).mean() > 1e-3  # the faces differ with z
    np.testing.assert_allclose(faces["jax"], faces["tensorflow"], atol=1e-5)


def test_data_parallel_from_the_command_line_never_loads_tensorflow(data, tmp_path):
    args = jax_run_args(data, tmp_path, 3, 'train.distribute="mirrored"')
    script = ("import json, sys; from keras_ganime import train; "
              f"rc = train.main({args!r}); "
              "print(json.dumps({'rc': rc, 'tensorflow': 'tensorflow' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, check=False,
                          env={**os.environ, "KERAS_BACKEND": "jax",
                               "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"rc": 0, "tensorflow": False}


def test_a_tensorflow_resume_of_it_is_one_line(jax_run):
    done = on("tensorflow", "-m", "keras_ganime.train", "--resume", str(jax_run[0]),
              "--steps", "6")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {jax_run[0] / 'checkpoints'}: its checkpoints were written on the JAX backend, "
        "and the TensorFlow backend cannot resume them; run it with --backend jax (or "
        "KERAS_BACKEND=jax)")


def archive_values(run: Path) -> dict[str, np.ndarray]:
    arrays, _ = checkpoints.read_npz(checkpoints.listed(run / "checkpoints")[-1])
    return arrays


@pytest.mark.parametrize("family", ["dcgan", "stylegan"])
def test_sigkilled_twice_then_resumed_ends_bit_for_bit_as_one_go(family, tmp_path, data):
    """20 steps, killed inside the write of ckpt-8 (the archive complete, not yet renamed) and
    again after step 14, each time resumed; StyleGAN with its R1 at steps 0 and 16. Both
    augmented, p adapted every 2 steps by 0.16: the draws, p and its signs resume too; the
    DCGAN conditioned on hair: its labels' draws too."""
    extra = ('model.family="stylegan"', 'model.channels="16,16,8"', "model.w_dim=8") \
        if family == "stylegan" else ("train.warmup_steps=2", *as_set(CONDITIONAL))
    extra += as_set(AUGMENTED)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for runs in (whole, killed):
        runs.mkdir()
    assert train(whole, jax_run_args(data, whole, 20, *extra), None).returncode == 0
    done = train(killed, jax_run_args(data, killed, 20, *extra), "replace:ckpt-8.npz:1")
    assert done.returncode == -9 and "torture: SIGKILL" in done.stderr, done.stderr[-2000:]
    for kill_at in ("step:14", None):
        done = train(killed, ["--resume", str(run_dir(killed))], kill_at)
        assert done.returncode == (-9 if kill_at else 0), done.stderr[-2000:]
    a, b = archive_values(run_dir(whole)), archive_values(run_dir(killed))
    assert a.keys() == b.keys() and len(a) > 20
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    with RunDir(run_dir(whole)) as ra, RunDir(run_dir(killed)) as rb:
        np.testing.assert_array_equal(np.array(losses(ra)), np.array(losses(rb)))
    frames = sorted(p.name for p in (run_dir(whole) / "samples").iterdir())
    assert frames == ["0000005.png", "0000010.png", "0000015.png", "0000020.png"]
    _, mismatch, errors = filecmp.cmpfiles(run_dir(whole) / "samples",
                                           run_dir(killed) / "samples", frames, shallow=False)
    assert not mismatch and not errors


def test_the_ring_keeps_the_newest_and_a_damaged_newer_archive_is_set_aside(tmp_path):
    """keep = 2: after steps 1 to 3, ckpt-2 and ckpt-3. ckpt-3 cut short: a new engine resumes
    from ckpt-2, sets ckpt-3 aside as ckpt-3.npz.damaged, and its own step 3 equals the first
    engine's, bit for bit."""
    from keras_ganime.engines.jax import JaxEngine

    cfg = backend_step.config("dcgan")
    images = random_images(40, 16)
    first = JaxEngine(cfg, images)
    first.open_checkpoints(tmp_path, keep=2)
    for step in (1, 2, 3):
        first.train_step()
        first.save(step)
    names = lambda: [Path(p).name for p in checkpoints.listed(tmp_path)]
    assert names() == ["ckpt-2.npz", "ckpt-3.npz"]
    good, _ = checkpoints.read_npz(tmp_path / "ckpt-3.npz")
    damaged = tmp_path / "ckpt-3.npz"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    second = JaxEngine(cfg, images)
    assert second.open_checkpoints(tmp_path, keep=2) == 2
    assert names() == ["ckpt-2.npz"] and (tmp_path / "ckpt-3.npz.damaged").is_file()
    second.train_step()
    second.save(3)
    again, _ = checkpoints.read_npz(tmp_path / "ckpt-3.npz")
    assert again.keys() == good.keys()
    for key in good:
        np.testing.assert_array_equal(again[key], good[key], err_msg=key)


def test_evaluate_scores_every_checkpoint_of_it_on_jax(jax_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(jax_run[0], run)
    done = on("jax", "-m", "keras_ganime.evaluate", str(run), "--all-checkpoints", "--metrics",
              "fid_anime,swd", "--samples", "40", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    scores = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [s["step"] for s in scores] == [4, 5]
    assert all(s["fid_anime"] > 0 and np.isfinite(s["swd"]) for s in scores)
    assert (run / "eval" / "0000005" / "metrics.json").is_file()


def test_bfloat16_trains_on_jax():
    """train.mixed_precision = bfloat16: the layers compute in bfloat16, the weights stay
    float32, and two steps of each family are finite."""
    from keras_ganime import config as config_lib
    from keras_ganime.engines.jax import JaxEngine

    for case in ("dcgan", "began"):
        cfg = backend_step.config(case)
        config_lib.set_value(cfg, "train.mixed_precision", "bfloat16")
        engine = JaxEngine(cfg, random_images(40, 16))
        for _ in range(2):
            out = engine.train_step()
        assert all(np.isfinite(float(v)) for v in out.values()), (case, out)
        g = engine.family.generator
        assert any(layer.compute_dtype == "bfloat16" for layer in g.layers)
        assert all(w.dtype == "float32" for w in g.weights)


def test_a_tensorflow_checkpoint_on_jax_is_one_line(data, tmp_path):
    """A TensorFlow run's checkpoint (its generator.keras removed, so that generate needs the
    checkpoint) read by generate on JAX."""
    runs = tmp_path / "runs"
    args = [a if a != "jax" else "tensorflow" for a in jax_run_args(data, runs, 4)]
    tmp_path.joinpath("runs").mkdir()
    done = on("tensorflow", "-m", "keras_ganime.train", *args, cwd=runs)
    assert done.returncode == 0, done.stderr[-3000:]
    run = run_dir(runs)
    (run / "generator.keras").unlink()
    done = on("jax", "-m", "keras_ganime.generate", str(run), "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {run / 'checkpoints' / 'ckpt-4'}: a TensorFlow checkpoint, which only the "
        f"TensorFlow backend reads; run with KERAS_BACKEND=tensorflow")
