"""What both engines share, written once: the backend's choice and checks, the seeds, when a
phase is due, the family's build, and the pictures made from its networks. It imports neither
TensorFlow nor JAX.
"""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_ganime import config as config_lib
from keras_ganime import families
from keras_ganime.config import Config
from keras_ganime.families.base import Build, Family, Phase
from keras_ganime.settings import ConfigError

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


# oneDNN's instruction-set caps (ONEDNN_MAX_CPU_ISA, or its old name DNNL_MAX_CPU_ISA) under
# which it has no bfloat16 convolutions; TensorFlow, which asks the processor rather than the
# cap, would send them to oneDNN all the same, to fail in the first step.
NO_BFLOAT16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI"}


def check(cfg: Config, backend: str) -> None:
    """ConfigError for a setting the backend's engine does not have."""
    if backend != "jax":
        cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
        if cfg.train.mixed_precision == "bfloat16" and cap.upper() in NO_BFLOAT16_ISAS:
            raise ConfigError(f"train.mixed_precision = bfloat16: oneDNN is capped at {cap} "
                              f"(ONEDNN_MAX_CPU_ISA), where it has no bfloat16 convolutions; "
                              f"unset the cap, or train in float32", "train.mixed_precision")
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


def build_family(cfg: Config, build: Build | None = None, labels: np.ndarray | None = None
                 ) -> Family:
    """The family `cfg` names; by default with Keras's own layers in float32, as for sampling;
    with the data's `labels` (a conditional run's table, families/condition.py) for its fakes'
    labels. A family whose constructor filled no `networks` is refused (it would checkpoint no
    weights), and one whose spec logs or shows a value that neither a phase nor `after_step`
    gives (a KeyError at the first logged step otherwise)."""
    family = families.load(cfg.family)(cfg, build or Build())
    if labels is not None:
        family.condition.table = labels
    if not family.networks:
        raise TypeError(f"the {cfg.family} family's constructor filled no networks (name -> "
                        f"keras.Model), so its checkpoints would hold no weights")
    spec = families.SPECS[cfg.family]
    given = {n for p in family.phases for n in p.outputs} | set(family.after_outputs)
    wanted = [*spec.logged(cfg), *spec.progress(cfg).values()]
    missing = sorted({n for n in wanted if n not in given})
    if missing:
        raise TypeError(f"the {cfg.family} family's spec logs or shows {', '.join(missing)}, "
                        f"which neither a phase outputs nor after_outputs names (they give "
                        f"{', '.join(sorted(given))})")
    return family


GRID_COLUMNS = 8  # of the training's sample grids
GRID_ROWS = 16  # at most, of a conditional run's grid: hair's 12 colours, not 176 characters


def grid_latents(family: Family, rng: Any, n: int) -> Any:
    """The latents of every sample grid of a run: n of them, or for a conditional run a row of
    GRID_COLUMNS per value of its first attribute, where it has at most GRID_ROWS values."""
    z = family.latents(rng, n)
    if family.condition is None or family.condition.sizes[0] > GRID_ROWS:
        return z
    return family.condition.by_rows(z, family.cfg.model.latent_dim, GRID_COLUMNS)


def after_step(family: Family, values: Mapping[str, Any], draws: Any) -> dict[str, Any]:
    """family.after_step's values, checked (as an engine traces its step) to be the ones its
    `after_outputs` names."""
    after = family.after_step(values, draws)
    if set(after) != set(family.after_outputs):
        raise TypeError(f"the {family.cfg.family} family's after_step gave "
                        f"{sorted(after) or 'nothing'}, its after_outputs names "
                        f"{sorted(family.after_outputs) or 'nothing'}")
    return after


# The run's settings in each .keras export, so that a generator away from its run is read as
# what it is (its family, its latents' size and distribution), not guessed from its input. They
# go in the archive's comment, after this line: Keras extracts the whole archive to a temporary
# folder when it holds more than its own three members.
EXPORT_SETTINGS = b"keras_ganime settings (TOML)\n"


def with_settings(export: Callable[[Path], None], cfg: Config) -> Callable[[Path], None]:
    """`export`, then the settings written into the comment of the file it wrote where that is
    a .keras archive."""
    def write(path: Path) -> None:
        export(path)
        if path.suffix == ".keras" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path, "a") as archive:
                archive.comment = EXPORT_SETTINGS + config_lib.to_toml(cfg).encode("utf-8")
    return write


class Sampling:
    """What both engines make alike from the family's networks as they are (the JAX engine
    keeps them current after every step): the sample grids' images and the family's pictures."""

    family: Family

    def generate(self, z: Any) -> np.ndarray:
        from keras_ganime.images.convert import render

        return render(self.family.sampler(), np.asarray(z))

    def pictures(self, reals: np.ndarray) -> dict[str, np.ndarray]:
        """The family's other pictures (Family.pictures) of uint8 reals, as uint8 images."""
        from keras_ganime.images.convert import to_float, to_uint8

        out = self.family.pictures(to_float(reals))
        return {name: to_uint8(images) for name, images in out.items()}
