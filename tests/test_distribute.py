"""tf.distribute: the step on two replicas equals the step on one device; a two-worker cluster on
this machine trains, resumes, and ends with the same weights on both workers; only the chief
writes. No GPU needed: the replicas are logical CPU devices, the workers local processes, each
run in a process of its own (`tests/distributed.py`)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from keras_ganime import config as config_lib
from keras_ganime.engines import distribute
from keras_ganime.runs import RunDir
from keras_ganime.settings import ConfigError

ROOT = Path(__file__).resolve().parent.parent
LOSSES = ("d_loss0", "d_loss1", "g_loss", "real_score", "fake_score")


def _env(**extra: str) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _helper(mode: str, out: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.distributed", mode, str(out)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _finish(processes: list[subprocess.Popen], timeout: float) -> list[str]:
    """Each process's output once all have exited 0; killed, and the test failed, past timeout."""
    deadline = time.monotonic() + timeout
    outputs = []
    try:
        for p in processes:
            outputs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    except subprocess.TimeoutExpired:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        pytest.fail(f"distributed run still going after {timeout} s")
    for p, out in zip(processes, outputs):
        assert p.returncode == 0, out[-3000:]
    return outputs


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("mirrored") / "result.json"
    _finish([_helper("mirrored", out, _env())], timeout=400)
    return json.loads(out.read_text())


@pytest.mark.distribute
def test_two_replicas_equal_one_device_with_synchronised_batchnorm(mirrored):
    """One step, global batch 64 on 2 replicas of 32, from the same weights and random draws."""
    print(json.dumps(mirrored, indent=1))
    for case in ("adam", "sgd", "adam_replica_bn", "sgd_conditional"):
        r = mirrored[case]
        assert r["initial_max_abs_diff"] == 0.0, case
        assert r["steps"] == [1, 1] and r["first_bad_step"] == -1, case
    # SGD moves each weight by lr times its gradient: the global-batch gradient to float
    # precision; conditioned on hair too, each replica's slice of the labels with its images.
    for case in ("sgd", "sgd_conditional"):
        assert mirrored[case]["max_abs_state_diff"] < 1e-5, mirrored[case]
        assert mirrored[case]["max_rel_loss_diff"] < 1e-5, mirrored[case]
    adam = mirrored["adam"]
    assert adam["max_rel_loss_diff"] < 1e-6, adam
    # Adam's first step is about lr * sign(gradient). The biases of convolutions feeding a
    # BatchNorm have a gradient of exactly 0, computed as float noise of either sign, so they may
    # move by up to lr either way, on one device as on two (and the BatchNorm's moving mean with
    # them); every other weight stays close.
    assert adam["max_abs_weight_diff"] <= 2 * 2e-4, adam
    assert adam["max_abs_diff_but_zero_gradient_biases"] < 2e-5, adam


@pytest.mark.distribute
def test_began_and_stylegan_on_two_replicas_equal_one_device(mirrored):
    """BEGAN's one forward pass feeds both updates, and k_t's control step reads the global
    batch's means; StyleGAN's R1 takes each replica's input gradient, and its EMA and w_avg
    read the global batch: on two replicas as on one device. No BatchNorm: every gradient is a
    real one, so Adam's first step (about lr x its sign) agrees as closely as SGD's."""
    for case in ("began_sgd", "began_adam"):
        r = mirrored[case]
        assert r["initial_max_abs_diff"] == 0.0, case
        assert r["max_rel_value_diff"] < 1e-5, r
        assert abs(r["k_t"][0] - r["k_t"][1]) < 1e-9 and r["k_t"][0] > 0, r
        assert r["max_abs_weight_diff"] < 1e-5, r
    r = mirrored["stylegan_adam"]
    assert r["max_rel_value_diff"] < 1e-5, r
    assert np.isfinite(r["values"]["r1"]).all() and r["values"]["r1"][0] > 0, r
    assert r["max_abs_w_avg_diff"] < 1e-6 and r["w_avg_abs_max"] > 0, r
    assert r["max_weight_diff"] < 1e-5, r  # absolute below 1, relative above
    # Augmented, p adapted: each replica augments its slice with its slice of the draws, and p
    # moves by the global batch's mean sign.
    for case, limit in (("sgd_augmented", "max_abs_state_diff"),
                        ("stylegan_augmented", "max_weight_diff")):
        r = mirrored[case]
        assert r[limit] < 1e-5 and r["augment_p"][0] == r["augment_p"][1] != 0.5, r
    assert mirrored["sgd_augmented"]["max_rel_loss_diff"] < 1e-5, mirrored["sgd_augmented"]
    assert mirrored["stylegan_augmented"]["max_rel_value_diff"] < 1e-5
    # Per-replica BatchNorm normalises each half batch with its own statistics: another step.
    replica_bn = mirrored["adam_replica_bn"]
    assert replica_bn["max_rel_loss_diff"] > 1e-4, replica_bn
    assert replica_bn["max_abs_diff_but_zero_gradient_biases"] > 1e-3, replica_bn
    assert mirrored["odd_batch_error"] == (
        "train.batch_size 63 must be divisible by the 2 replicas of train.distribute")


@pytest.mark.distribute
def test_every_part_of_the_family_contract_under_two_replicas(mirrored):
    """The toy family over 8 steps: the same phases skipped (its gate and its every-2 phase, with
    the per-batch draw and the after-step state in play) and the same values, to float noise."""
    toy = mirrored["toy"]
    assert toy["nan_pattern_equal"] and toy["skipped"] >= 4, toy
    assert toy["max_abs_value_diff"] < 1e-5 and toy["max_abs_weight_diff"] < 1e-5, toy


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _state(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b) > 50
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


@pytest.mark.distribute
def test_two_workers_train_alike_resume_and_only_the_chief_writes(tmp_path):
    from keras_ganime.data import write_h5
    from tests.distributed import images

    write_h5(tmp_path / "faces.h5", images(), np.zeros(len(images())), [], ["x"] * len(images()))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    t0 = time.perf_counter()
    workers = [_helper("multiworker", tmp_path, _env(TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}}))) for i in range(2)]
    _finish(workers, timeout=540)
    wall = time.perf_counter() - t0
    reports = [json.loads((tmp_path / f"task{i}.json").read_text()) for i in range(2)]
    assert [r["chief"] for r in reports] == [True, False]
    whole = _state(tmp_path / "whole-6-task0.npz")  # the command line's run, from its checkpoint
    half = [_state(tmp_path / f"half-3-task{i}.npz") for i in range(2)]
    resumed = [_state(tmp_path / f"half-6-task{i}.npz") for i in range(2)]
    diffs = {"workers": _max_diff(*half), "workers_resumed": _max_diff(*resumed),
             "resumed_vs_whole": _max_diff(whole, resumed[0])}
    print(f"2-worker run: {wall:.1f} s wall, phases {reports[0]['seconds']} s; "
          f"max abs differences {diffs}")
    assert diffs == {"workers": 0.0, "workers_resumed": 0.0, "resumed_vs_whole": 0.0}

    # The chief wrote the two runs; the worker's temporary directories are gone.
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["00000-whole", "00001-half"]
    assert reports[0]["run_dirs"] == [str(runs / "00001-half")] * 2
    assert not any(Path(p).exists() for p in reports[1]["run_dirs"])
    for name in ("00000-whole", "00001-half"):
        with RunDir(runs / name) as run:
            assert run.read_json("run.json")["status"] == "done"
            assert [r["step"] for r in run.read_losses()] == [1, 2, 3, 4, 5, 6]
            for f in ("loss.png", "reals.png", "generator.keras", "samples/0000006.png"):
                assert (run.path / f).is_file(), f
    with RunDir(runs / "00000-whole") as a, RunDir(runs / "00001-half") as b:
        np.testing.assert_array_equal(  # NaN (the warm-up's g_loss) == NaN here
            [[r[k] for k in LOSSES] for r in a.read_losses()],
            [[r[k] for k in LOSSES] for r in b.read_losses()])

    # The chief's losses are one device's, to float precision.
    from keras_ganime.engines.tensorflow import Engine
    from keras_ganime.training.loop import fit, new_run
    from tests.distributed import config

    cfg = config("train.warmup_steps=2", "train.steps=6", "output.log_every=1",
                 "output.sample_every=3", "output.checkpoint_every=3",
                 f'output.runs_dir="{tmp_path / "single"}"')
    with new_run(cfg) as single:
        fit(Engine(cfg, images()), single, progress=False)
    with RunDir(runs / "00000-whole") as a:
        got = np.array([[r[k] for k in LOSSES] for r in a.read_losses()])
    want = np.array([[r[k] for k in LOSSES] for r in single.read_losses()])
    finite = np.isfinite(want)
    print("chief's losses against one device's: max relative difference",
          float(np.max(np.abs(got[finite] - want[finite]) / np.abs(want[finite]))))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-3)


def test_default_is_no_strategy():
    cfg = config_lib.load(None, ["model.image_size=16"])
    assert cfg.train.distribute == "none" and cfg.train.sync_batchnorm is True
    assert distribute.strategy("none") is None
    with pytest.raises(ConfigError, match="train.distribute must be one of none, mirrored"):
        config_lib.load(None, ["train.distribute=tpu"])
    with pytest.raises(ConfigError, match="train.jit_compile = on needs train.distribute = none"):
        config_lib.load(None, ["train.distribute=mirrored", "train.jit_compile=on"])


def test_multiworker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the cluster in TF_CONFIG"):
        distribute.strategy.__wrapped__("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{nope")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        distribute.strategy.__wrapped__("multiworker")


@pytest.mark.parametrize("task_type, task_id, has_chief, chief", [
    ("worker", 0, False, True), ("worker", 1, False, False), ("worker", 0, True, False),
    ("chief", 0, True, True), (None, None, False, True),
])
def test_who_is_chief(task_type, task_id, has_chief, chief):
    spec = {"worker": ["a:1", "b:1"], **({"chief": ["c:1"]} if has_chief else {})}
    resolver = SimpleNamespace(task_type=task_type, task_id=task_id,
                               cluster_spec=lambda: SimpleNamespace(as_dict=lambda: spec))
    assert distribute.is_chief(SimpleNamespace(cluster_resolver=resolver)) is chief
    assert distribute.is_chief(None)
