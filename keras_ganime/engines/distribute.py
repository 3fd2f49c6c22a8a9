"""TensorFlow's own distribution engine for the training step: the strategy a config names, and
which process of a cluster is the chief (the only one that writes a run directory).

`none` is no strategy at all: the single-device code path, untouched. `mirrored` is
`tf.distribute.MirroredStrategy` over every GPU of this machine (or, with none, over every logical
CPU device: one, unless the process split its CPU, as the tests do). `multiworker` is
`tf.distribute.MultiWorkerMirroredStrategy`, the cluster and this process's place in it read from
the `TF_CONFIG` environment variable.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from keras_ganime.settings import ConfigError


@functools.cache
def strategy(kind: str) -> tf.distribute.Strategy | None:
    """The strategy for `train.distribute`; made once per process (a multi-worker strategy can
    only be made once, and before any other TensorFlow operation)."""
    if kind == "none":
        return None
    if kind == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if kind == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("train.distribute = multiworker needs the cluster in TF_CONFIG "
                              "(see docs/backends.md)")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise ConfigError(f"TF_CONFIG is not valid JSON ({e})") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"train.distribute must be one of none, mirrored, multiworker; got {kind!r}")


def is_chief(strat: tf.distribute.Strategy | None) -> bool:
    """True but for the non-chief workers of a multi-worker cluster: the `chief` task if the
    cluster names one, else worker 0."""
    resolver = getattr(strat, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())


def worker_dir(run_path: str | Path | None, config_toml: str) -> Path:
    """A private temporary run directory for a non-chief worker, whose outputs are thrown away.

    It holds the run's settings and, when the run is resumed (`run_path`, which the worker must
    be able to read: a shared file system), the chief's CSV rows and latest checkpoint, so that
    the worker restores the same state as the chief.
    """
    path = Path(tempfile.mkdtemp(prefix="keras_ganime-worker-"))
    (path / "config.toml").write_text(config_toml)
    if run_path is None:
        return path
    src = Path(run_path)
    # metrics.csv too: the FID-jump rule reads the earlier evaluations, and every worker must
    # reach the same failure decision, or a stopping chief would leave the others waiting.
    for name in ("run.json", "loss.csv", "metrics.csv"):
        if (src / name).is_file():
            shutil.copy2(src / name, path / name)
    latest = tf.train.latest_checkpoint(str(src / "checkpoints"))
    if latest:
        ckpts = path / "checkpoints"
        ckpts.mkdir()
        name = Path(latest).name
        for f in Path(latest).parent.glob(name + ".*"):
            shutil.copy2(f, ckpts / f.name)
        # The state file, naming the copy as the latest checkpoint (as CheckpointManager writes).
        (ckpts / "checkpoint").write_text(
            f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
    return path
