"""The distributed runs of tests/test_distribute.py, each in a process of its own: a process's
devices (two logical CPUs) and its multi-worker cluster (TF_CONFIG) are fixed before TensorFlow
starts, once per process.

    python -m tests.distributed mirrored OUT.json
    TF_CONFIG=... python -m tests.distributed multiworker OUT_DIR
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

GLOBAL_BATCH = 64


def images(size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (200, size, size, 3), dtype=np.uint8)


COMMON = ("model.image_size=16", "model.latent_dim=8", f"train.batch_size={GLOBAL_BATCH}",
          "train.warmup_steps=0")
# Every augmentation at p = 0.5, adapted after the step: each replica augments its slice of
# the global batch's draws, and p moves by the global batch's mean sign.
AUGMENTED = ('augment.policy="color,translation,cutout"', "augment.adaptive=true",
             "augment.p=0.5", "augment.interval=1", "augment.speed_images=640")


# Conditioned on hair, image i's the (i mod 3)-th colour: each replica gets its slice of the
# reals' labels and of the fakes' drawn ones.
CONDITIONAL = ('model.condition="hair"',
               """model.condition_values='{"hair": ["red", "blue", "green"]}'""")


def labels_for(cfg, n: int) -> np.ndarray | None:
    return (np.arange(n) % 3).astype(np.int32)[:, None] if cfg.model.conditions() else None


def config(*overrides: str):
    from keras_ganime import config as config_lib

    return config_lib.load(None, [*COMMON, *overrides])


def state(gan) -> list[np.ndarray]:
    """Every variable a step changes: weights, moving statistics, optimizer slots."""
    family = gan.family
    variables = (family.generator.weights + family.discriminator.weights
                 + family.g_optim.variables + family.d_optim.variables)
    return [np.asarray(v.numpy()) for v in variables]


def relative_differences(out_1: dict, out_2: dict) -> float:
    """The largest relative difference of two steps' values (an exact 0 compared exactly)."""
    return max(abs(float(out_1[k]) - float(out_2[k])) / abs(float(out_1[k])) if float(out_1[k])
               else abs(float(out_2[k])) for k in out_1)


def augment_p(gan) -> float:
    p = getattr(gan.family, "augmenter", None)
    return float(p.p.numpy()) if p is not None and p.adaptive else float("nan")


def pre_bn_biases(model) -> set[str]:
    """The biases of the layers that feed a BatchNorm, whose gradient is exactly zero, and the
    moving means that they shift."""
    return {path for a, b in itertools.pairwise(model.layers)
            if isinstance(b, keras.layers.BatchNormalization)
            and getattr(a, "bias", None) is not None
            for path in (a.bias.path, b.moving_mean.path)}


def one_step(*overrides: str) -> dict[str, float]:
    """One step from the same start on one device and on two replicas."""
    from keras_ganime.engines.tensorflow import Engine

    data = images()
    labels = labels_for(config(*overrides), len(data))
    single = Engine(config("train.distribute=none", *overrides), data, labels)
    mirrored = Engine(config("train.distribute=mirrored", *overrides), data, labels)
    assert mirrored.replicas == 2, mirrored.replicas
    before = max(float(np.abs(a - b).max()) for a, b in zip(state(single), state(mirrored)))
    out_1, out_2 = single.train_step(), mirrored.train_step()
    weights_1, weights_2 = ([w for net in gan.family.networks.values() for w in net.weights]
                            for gan in (single, mirrored))
    diffs = {w.path: float(np.abs(w.numpy() - v.numpy()).max())
             for w, v in zip(weights_1, weights_2)}
    worst = max(diffs, key=diffs.get)
    noise = pre_bn_biases(single.family.generator) | pre_bn_biases(single.family.discriminator)
    return {
        "max_abs_diff_but_zero_gradient_biases": max(d for k, d in diffs.items() if k not in noise),
        "initial_max_abs_diff": before,
        "max_abs_weight_diff": diffs[worst],
        "worst_weight": worst,
        "max_abs_state_diff": max(float(np.abs(a - b).max())
                                  for a, b in zip(state(single), state(mirrored))),
        "max_rel_loss_diff": relative_differences(out_1, out_2),
        "augment_p": [augment_p(single), augment_p(mirrored)],
        "steps": [int(single.step.numpy()), int(mirrored.step.numpy())],
        "first_bad_step": int(mirrored.first_bad_step.numpy()),
    }


def mirrored(out: Path) -> None:
    from keras_ganime.engines.tensorflow import Engine
    from keras_ganime.settings import ConfigError

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    results = {}
    for name, overrides in {
        "adam": (),  # the reference's optimizers
        "sgd": ("d_optim.name=sgd", "g_optim.name=sgd"),
        "adam_replica_bn": ("train.sync_batchnorm=false",),
        "sgd_augmented": ("d_optim.name=sgd", "g_optim.name=sgd", *AUGMENTED),
        "sgd_conditional": ("d_optim.name=sgd", "g_optim.name=sgd", *CONDITIONAL),
    }.items():
        t0 = time.perf_counter()
        results[name] = {**one_step(*overrides), "seconds": round(time.perf_counter() - t0, 1)}
    for name, optimizer in (("began_adam", "adam"), ("began_sgd", "sgd")):
        results[name] = began_step(optimizer)
    results["stylegan_adam"] = stylegan_step("adam")  # its preset's optimizer
    results["stylegan_augmented"] = stylegan_step("adam", *AUGMENTED)
    try:
        Engine(config("train.distribute=mirrored", "train.batch_size=63"), images())
    except ConfigError as e:
        results["odd_batch_error"] = str(e)
    results["toy"] = toy_steps()
    out.write_text(json.dumps(results, indent=2))


def began_step(optimizer: str) -> dict[str, float]:
    """One BEGAN step from the same start on one device and on two replicas: its losses, k_t
    (from the global batch's means) and every weight."""
    from keras_ganime import config as config_lib
    from keras_ganime.engines.tensorflow import Engine

    settings = ['model.family="began"', "model.image_size=16", "model.filters=8",
                "model.hidden=8", "model.latent_dim=8", f"train.batch_size={GLOBAL_BATCH}",
                f"d_optim.name={optimizer}", f"g_optim.name={optimizer}"]
    single, mirrored = (Engine(config_lib.load(None, [*settings, f"train.distribute={d}"]),
                               images()) for d in ("none", "mirrored"))
    before = max(float(np.abs(a - b).max()) for a, b in zip(state(single), state(mirrored)))
    out_1, out_2 = single.train_step(), mirrored.train_step()
    return {
        "initial_max_abs_diff": before,
        "values": {k: [float(out_1[k]), float(out_2[k])] for k in out_1},
        "max_rel_value_diff": max(abs(float(out_1[k]) - float(out_2[k])) / abs(float(out_1[k]))
                                  for k in out_1),
        "k_t": [float(single.family.k_t.numpy()), float(mirrored.family.k_t.numpy())],
        "max_abs_weight_diff": max(
            float(np.abs(w.numpy() - v.numpy()).max()) for w, v in zip(
                *([w for net in gan.family.networks.values() for w in net.weights]
                  for gan in (single, mirrored)))),
    }


def stylegan_step(optimizer: str, *extra: str) -> dict[str, float]:
    """One StyleGAN step (D, R1 at step 0 with its input gradient per replica, G, then the EMA
    and w_avg) from the same start on one device and on two replicas: its values, w_avg and
    every weight, the EMA generator's included. Minibatch-stddev groups are contiguous: the same
    groups of 4 on one device as in each replica's half."""
    from keras_ganime import config as config_lib
    from keras_ganime.engines.tensorflow import Engine

    settings = ['model.family="stylegan"', "model.image_size=16", 'model.channels="16,16,8"',
                "model.latent_dim=8", "model.w_dim=8", f"train.batch_size={GLOBAL_BATCH}",
                f"d_optim.name={optimizer}", f"g_optim.name={optimizer}", *extra]
    single, mirrored = (Engine(config_lib.load(None, [*settings, f"train.distribute={d}"]),
                               images()) for d in ("none", "mirrored"))
    out_1, out_2 = single.train_step(), mirrored.train_step()
    weights = [[w.numpy() for net in gan.family.networks.values() for w in net.weights]
               for gan in (single, mirrored)]
    return {
        "values": {k: [float(out_1[k]), float(out_2[k])] for k in out_1},
        "max_rel_value_diff": relative_differences(out_1, out_2),
        "augment_p": [augment_p(single), augment_p(mirrored)],
        "max_abs_w_avg_diff": float(np.abs(single.family.w_avg.numpy()
                                           - mirrored.family.w_avg.numpy()).max()),
        "w_avg_abs_max": float(np.abs(single.family.w_avg.numpy()).max()),
        # Relative to the weight above 1: the mapping network stores its weights scaled by
        # 1 / its learning-rate multiplier (about 200 at most here), where one float32 step is
        # 1.5e-5, and a processor with other kernels (oneDNN on AVX) rounds one step otherwise.
        "max_weight_diff": max(float((np.abs(a - b) / np.maximum(np.abs(a), 1)).max())
                               for a, b in zip(*weights, strict=True)),
    }


def toy_steps(steps: int = 8) -> dict:
    """The test family (tests/toy_family.py), whose gate, every-2 phase, per-batch draw and
    after-step state all go through the strategy's path: its logged values over `steps` steps
    and its final weights, on one device and on two replicas."""
    from keras_ganime import config as config_lib
    from keras_ganime.engines.tensorflow import Engine
    from tests import toy_family  # noqa: F401  (registers the family)

    data = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    rows, weights = [], []
    for distribute in ("none", "mirrored"):
        cfg = config_lib.load(None, ['model.family="toy"', "train.batch_size=8",
                                     "toy.gate_ratio=0.5", f"train.distribute={distribute}"])
        engine = Engine(cfg, data)
        rows.append([[float(v) for v in engine.train_step().values()] for _ in range(steps)])
        weights.append([w.numpy() for net in engine.family.networks.values()
                        for w in net.weights] + [engine.family.balance.numpy()])
    a, b = np.array(rows[0]), np.array(rows[1])
    return {"nan_pattern_equal": bool(np.array_equal(np.isnan(a), np.isnan(b))),
            "skipped": int(np.isnan(a).sum()),
            "max_abs_value_diff": float(np.nanmax(np.abs(a - b))),
            "max_abs_weight_diff": max(float(np.abs(x - y).max())
                                       for x, y in zip(*weights, strict=True))}


def multiworker(out: Path) -> None:
    """One worker of a 2-worker cluster: a run in one go through the command line, then the same
    run stopped halfway and resumed, through the loop's own run directories (the chief's; a
    temporary one on the other worker). `out/faces.h5` holds `images()`."""
    from keras_ganime.engines import distribute
    from keras_ganime.engines.tensorflow import Engine
    from keras_ganime.train import main as train_main
    from keras_ganime.training.loop import fit, open_run

    strategy = distribute.strategy("multiworker")  # before any other TensorFlow operation
    chief = distribute.is_chief(strategy)
    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    settings = ("train.distribute=multiworker", "train.warmup_steps=2", "output.log_every=1",
                "output.sample_every=3", "output.checkpoint_every=3",
                f'output.runs_dir="{out / "runs"}"')
    data = images()
    report: dict = {"chief": chief, "task": task, "seconds": []}
    barrier = tf.function(lambda: strategy.reduce(
        "SUM", strategy.run(lambda: tf.ones([])), axis=None))

    t0 = time.perf_counter()
    cli = [x for s in (*COMMON, *settings, "output.name=whole") for x in ("--set", s)]
    assert train_main([*cli, "--data", str(out / "faces.h5"), "--steps", "6"]) == 0
    barrier()  # the chief has written its run
    report["seconds"].append(round(time.perf_counter() - t0, 1))
    gan = Engine(config(*settings), data)
    # Its final state, from the chief's checkpoint (the other worker's run is gone).
    gan.checkpoint().restore(tf.train.latest_checkpoint(str(out / "runs/00000-whole/checkpoints")))
    np.savez(out / f"whole-6-task{task}.npz", *state(gan))

    for steps, resume in ((3, None), (6, out / "runs" / "00001-half")):
        cfg = config(*settings, f"train.steps={steps}", "output.name=half")
        t0 = time.perf_counter()
        gan = Engine(cfg, data)
        with open_run(cfg, str(resume) if resume else None, chief) as run:
            report.setdefault("run_dirs", []).append(str(run.path))
            fit(gan, run, progress=False)
        barrier()  # the chief has written its run before any worker reads it to resume
        report["seconds"].append(round(time.perf_counter() - t0, 1))
        np.savez(out / f"half-{steps}-task{task}.npz", *state(gan))
    (out / f"task{task}.json").write_text(json.dumps(report))


def main(argv: list[str]) -> None:
    {"mirrored": mirrored, "multiworker": multiworker}[argv[0]](Path(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
