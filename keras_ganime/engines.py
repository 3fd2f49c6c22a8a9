"""The training engine of the backend Keras runs on, and what both engines share.

`engine.py` is TensorFlow's (one `tf.function` step, tf.distribute, TensorFlow checkpoints);
`jax_engine.py` is JAX's (one `jax.jit` step over the variables' values, backend-neutral NumPy
checkpoints). Both run the same family code (`families/`) and give the loop (`loop.py`) the same
surface: `train_step`, `step_count`, `first_bad`, `loss_failure`, `open_checkpoints`, `save`,
`fixed_latents`, `generate`, `pictures`, `export`, `weights_finite`, `checkpoint_bytes`, and the
run's uint8 `images`. The backend is Keras's (`KERAS_BACKEND`, or `--backend` before Keras
loads); this module imports neither TensorFlow nor JAX until an engine is made.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_ganime import families
from keras_ganime.config import Config, ConfigError
from keras_ganime.families.base import Build, Family, Phase

BACKENDS = ("tensorflow", "jax")
POLICIES = {"off": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
GRID_SEED = 1_000_003  # the fixed latents of a run's sample grids: a seed stream of their own


def choose(backend: str | None, cfg: Config) -> str:
    """Sets Keras's backend (None: KERAS_BACKEND, else TensorFlow) before Keras loads, and
    returns it; ConfigError for an unknown one, a setting its engine lacks (`check`), or once
    Keras runs on another."""
    name = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}; got {name!r}")
    check(cfg, name)
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != name:
        raise ConfigError(f"Keras already runs on {loaded.backend.backend()}; set "
                          f"KERAS_BACKEND={name} before it loads")
    os.environ["KERAS_BACKEND"] = name
    return name


def check(cfg: Config, backend: str) -> None:
    """ConfigError for a setting the backend's engine does not have."""
    if backend != "jax":
        return
    if cfg.train.distribute == "multiworker":
        raise ConfigError("train.distribute = multiworker is tf.distribute's; on the JAX "
                          "backend use mirrored (this machine's devices) or none",
                          "train.distribute")
    if cfg.train.distribute == "mirrored" and not cfg.train.sync_batchnorm:
        raise ConfigError("train.sync_batchnorm = false (BatchNorm per replica) is "
                          "tf.distribute's; on the JAX backend BatchNorm always sees the global "
                          "batch", "train.sync_batchnorm")
    if cfg.train.mixed_precision == "float16":
        raise ConfigError("train.mixed_precision = float16 needs TensorFlow's loss scaling; on "
                          "the JAX backend use bfloat16", "train.mixed_precision")


def backend() -> str:
    """The backend Keras runs on (this loads Keras)."""
    import keras

    return keras.backend.backend()


def versions() -> dict[str, str]:
    """The backend and the versions of what trains, for run.json."""
    import keras

    name = backend()
    library = __import__(name)
    return {"backend": name, name: library.__version__, "keras": keras.__version__}


def generator(seed: int) -> Any:
    """The backend's random generator from a seed, with `uniform` and `normal` (the families'
    draws): `tf.random.Generator`, or a JAX key's (jax_engine.KeyRng)."""
    if backend() == "jax":
        from keras_ganime import jax_engine

        return jax_engine.generator(seed)
    import tensorflow as tf

    return tf.random.Generator.from_seed(seed)


def gate_open(phase: Phase, seen: Mapping[str, Any]) -> Any:
    """The phase's gate on the values seen so far, as a boolean tensor of Keras's backend."""
    from keras import ops

    return ops.cast(phase.gate(seen), "bool")


def step_conditions(phase: Phase, step: Any) -> list[Any]:
    """What must hold for the phase to run at `step` (a tensor of either backend, or an int),
    whatever the values: from `start`, every `every` steps after it."""
    conditions = []
    if phase.start:
        conditions.append(step >= phase.start)
    if phase.every > 1:
        conditions.append((step - phase.start) % phase.every == 0)
    return conditions


def due_conditions(phase: Phase, step: Any, seen: Mapping[str, Any]) -> list[Any]:
    """What must all hold for the phase to run at `step` (a tensor of either backend): its
    `step_conditions`, and its gate; [] when it always runs."""
    conditions = step_conditions(phase, step)
    if phase.gate is not None:
        conditions.append(gate_open(phase, seen))
    return conditions


def build_family(cfg: Config, build: Build | None = None) -> Family:
    """The family `cfg` names; by default with Keras's own layers in float32, as for sampling."""
    return families.load(cfg.family)(cfg, build or Build())


def create(cfg: Config, images: np.ndarray) -> Any:
    """The engine of Keras's backend for `cfg`, on these uint8 images."""
    if backend() == "jax":
        from keras_ganime.jax_engine import JaxEngine

        return JaxEngine(cfg, images)
    from keras_ganime.engine import Engine

    return Engine(cfg, images)


class Sampling:
    """What both engines make alike from the family's networks as they are (the JAX engine
    keeps them current after every step): the sample grids' images and the family's pictures."""

    family: Family

    def generate(self, z: Any) -> np.ndarray:
        from keras_ganime.sampling import render

        return render(self.family.sampler(), np.asarray(z))

    def pictures(self, reals: np.ndarray) -> dict[str, np.ndarray]:
        """The family's other pictures (Family.pictures) of uint8 reals, as uint8 images."""
        from keras_ganime.batches import to_float, to_uint8

        out = self.family.pictures(to_float(reals))
        return {name: to_uint8(images) for name, images in out.items()}


def remove(path: Path) -> None:
    """A file or a folder, if there."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def export_replacing(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` beside `path`, then renamed: never half a file under the name. A folder (a
    SavedModel) replaces an older one whole: the old is renamed aside first."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    old = path.with_name(f".{path.stem}.old{path.suffix}")
    try:
        if old.exists() and not path.exists():  # a kill between the two renames below
            os.replace(old, path)
        for leftover in (tmp, old):
            remove(leftover)
        write(tmp)
        if path.is_dir():
            os.replace(path, old)
        os.replace(tmp, path)
        remove(old)
    except OSError as e:
        remove(tmp)
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise OSError(e.errno, e.strerror, str(path)) from None
