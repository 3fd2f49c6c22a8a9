"""The settings' building blocks: the sections every family shares, as typed dataclasses, the
error a bad setting raises, and the checks that the common and the families' own sections use.

Nearly a leaf: it imports only the package's one error (`errors.py`), so that the families'
settings (`families/`) build on it and `config.py`, which gathers a run's sections by family,
builds on them. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keras_ganime import errors

DEFAULT_FAMILY = "dcgan"
OPTIMIZERS = ("adam", "adamax", "sgd")


class ConfigError(errors.Error, ValueError):
    """A bad setting; its message is one line naming the key. `key` is that key where one value
    alone is at fault, so that an error can be laid at the door of the file that set it."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


# --- the common sections: every family has them ---------------------------------------------


@dataclass
class ModelConfig:
    """The part of [model] that every family shares; a family's [model] extends it."""

    family: str = DEFAULT_FAMILY
    image_size: int = 64
    latent_dim: int = 100  # the size of one latent vector (generate's --walk indexes it)
    # The data's attributes G is asked for and D judges, comma-separated ("hair,eyes",
    # "character"); "" for none (docs/conditional.md). A family offers it (capability
    # "condition") or refuses it.
    condition: str = ""
    # Their values, as the run's data has them: JSON, attribute -> values. Written when the run
    # is made, so that generate and evaluate rebuild its networks without the data.
    condition_values: str = ""

    def conditions(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.condition.split(",") if name.strip())

    def vocabulary(self) -> dict[str, tuple[str, ...]]:
        """Each conditioned attribute's values, in the data's order (the labels' indices)."""
        if not self.condition_values:
            return {}
        return {name: tuple(values) for name, values in json.loads(self.condition_values).items()}


@dataclass
class DataConfig:
    path: str = ""  # an HDF5 file from `keras_ganime.data prepare`; empty: built-in synthetic faces
    # `path` made absolute when the run was made: found from any directory, as `path` is not.
    resolved_path: str = ""
    sampling: str = "uniform"  # uniform with replacement (reference) | epoch (shuffled by epoch)
    synth_n: int = 20000  # size of the built-in dataset when path is empty
    cache_dir: str = ""  # for the built-in dataset; empty: $XDG_CACHE_HOME or ~/.cache/keras_ganime


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamax | sgd
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    epsilon: float = 1e-8  # Keras 2.0's Adam and Adamax default, which the reference ran
    momentum: float = 0.0  # sgd only
    nesterov: bool = False  # sgd only


@dataclass
class TrainConfig:
    batch_size: int = 64
    steps: int = 100000
    seed: int = 0
    # Speed only; the maths stay the reference's except under mixed precision.
    jit_compile: str = "auto"  # XLA: on | off | auto (per device and batch: docs/performance.md)
    mixed_precision: str = "off"  # off | bfloat16 | float16 (with loss scaling); for GPUs
    fused_batchnorm: bool = True  # TensorFlow's fused kernel for Keras's BatchNorm maths
    # tf.distribute: none | mirrored (the GPUs of one machine) | multiworker (cluster in TF_CONFIG)
    distribute: str = "none"
    sync_batchnorm: bool = True  # under a strategy: BatchNorm on the global batch, as one device


@dataclass
class OutputConfig:
    runs_dir: str = "runs"
    name: str = "default"
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 10
    progress_s: float = 60.0  # without a terminal: a progress line at most this often
    # Steps at which the paper judged its runs (and where its failures came): the generator is
    # kept there, apart from the checkpoint ring, with a grid, and scored with eval.metrics.
    milestones: str = "30000,60000,70000,100000"  # comma-separated steps; "" for none


@dataclass
class EvalConfig:
    every: int = 0  # steps between evaluations during training (metrics.csv); 0: none
    samples: int = 2000  # generated images, and as many reals, per evaluation
    metrics: str = "swd,fid_anime,kid_anime,dup_anime,checkerboard"  # comma-separated
    inception_weights: str = ""  # InceptionV3 weights file, for the *_inception metrics


@dataclass
class FailureConfig:
    """What to do on failure, and the metric rules; a family adds its loss-watch limits."""

    action: str = "continue"  # continue (the paper's runs went on past failure) | stop
    duplicate_limit: float = 0.5  # duplicate rate that means collapse, after a lower one
    fid_jump: float = 2.0  # FID at an evaluation above this multiple of the run's best so far


# DiffAugment's operations, in the order they apply (families/augment.py has their arithmetic).
AUGMENT_POLICIES = ("color", "translation", "cutout")
AUGMENT_P = "augment_p"  # the adaptive p, logged and plotted


@dataclass
class AugmentConfig:
    """Differentiable augmentation of every image D sees, reals and fakes (families/augment.py;
    docs/augment.md). Off by default: a run without it draws and computes what it always did."""

    policy: str = ""  # comma-separated: color, translation, cutout; "" for none
    p: float = 1.0  # the probability that each operation applies to an image (adaptive: the start)
    adaptive: bool = False  # StyleGAN2-ADA's rule: p follows how far D overfits the reals
    target: float = 0.6  # ADA's target for E[sign(D's logit on the reals)]
    interval: int = 4  # steps between two adjustments of p (ADA's)
    speed_images: int = 500000  # images over which p could go from 0 to 1 (ADA's)

    def policies(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.policy.split(",") if name.strip())

    def logged(self) -> tuple[str, ...]:
        """What every family logs of it: the adaptive p."""
        return (AUGMENT_P,) if self.adaptive else ()


def augment_plots(cfg: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The loss plot's panel of the adaptive p, in a family that can adapt it."""
    return (("augmentation's p (adaptive)", (AUGMENT_P,)),) if cfg.augment.adaptive else ()


def augment_progress(cfg: Any) -> dict[str, str]:
    return {"p": AUGMENT_P} if cfg.augment.adaptive else {}


def parse_condition(text: str, vocabulary: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """`"hair=blue,eyes=red"` -> {attribute: value index}; ValueError naming the unknown part
    and listing what there is."""
    chosen: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or name not in vocabulary:
            raise ValueError(f"{part!r} is not ATTRIBUTE=VALUE with an attribute of "
                             f"{', '.join(vocabulary)}")
        if value not in vocabulary[name]:
            raise ValueError(f"{name}={value} is not a value of {name}: "
                             f"{', '.join(vocabulary[name])}")
        chosen[name] = vocabulary[name].index(value)
    return chosen


COMMON: dict[str, Callable[[], Any]] = {
    "model": ModelConfig, "data": DataConfig, "d_optim": OptimConfig, "g_optim": OptimConfig,
    "train": TrainConfig, "augment": AugmentConfig, "output": OutputConfig, "eval": EvalConfig,
    "failure": FailureConfig,
}


# --- checks, for the common sections and the families' own ------------------------------------


def get(cfg: Any, key: str) -> Any:
    """The value of `section.key` in a Config."""
    section, name = key.split(".")
    return getattr(cfg.sections[section], name)


def check_positive(cfg: Any, keys: Iterable[str]) -> None:
    for key in keys:
        if get(cfg, key) <= 0:
            raise ConfigError(f"{key} must be positive, got {get(cfg, key)}", key)


def check_not_negative(cfg: Any, keys: Iterable[str]) -> None:
    for key in keys:
        if get(cfg, key) < 0:
            raise ConfigError(f"{key} must not be negative, got {get(cfg, key)}", key)


def check_choices(cfg: Any, choices: Mapping[str, Sequence[str]]) -> None:
    for key, allowed in choices.items():
        if get(cfg, key) not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {get(cfg, key)!r}",
                              key)


def check_range(cfg: Any, keys: Iterable[str], low: float, high: float,
                closed: bool = True) -> None:
    """low <= value <= high, or < high when not `closed`."""
    for key in keys:
        value = get(cfg, key)
        if not (low <= value <= high if closed else low <= value < high):
            raise ConfigError(f"{key} must be in [{low:g}, {high:g}{']' if closed else ')'}, "
                              f"got {value}", key)
