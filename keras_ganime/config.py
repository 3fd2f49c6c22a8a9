"""Every setting of a run, as typed dataclasses: the one source of truth.

A config is `experiments/default.toml`, then an experiment file over it, then command-line
`--set section.key=value` overrides over both. Validation raises `ConfigError` with one line that
names the key at fault.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_ganime.features import METRICS

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
OPTIMIZERS = ("adam", "adamax", "sgd")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                "lecun_normal", "orthogonal", "random_normal", "random_uniform", "truncated_normal")


class ConfigError(ValueError):
    """A bad setting; its message is one line naming the key."""


@dataclass
class ModelConfig:
    image_size: int = 64
    latent_dim: int = 100
    upsampling: str = "transpose"  # transpose (reference) | upsample (UpSampling2D + Conv2D)
    noise: str = "binary"  # binary (reference) | gaussian
    bn_momentum: float = 0.3
    leaky_slope: float = 0.2
    initializer: str = "glorot_uniform"


@dataclass
class DataConfig:
    path: str = ""  # an HDF5 file from `keras_ganime.data prepare`; empty: built-in synthetic faces
    sampling: str = "uniform"  # uniform with replacement (reference) | epoch (shuffled by epoch)
    synth_n: int = 20000  # size of the built-in dataset when path is empty


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
class LabelConfig:
    soft: float = 0.1  # real targets are 1 - soft * U[0,1), fake targets soft * U[0,1)
    flip: bool = False  # give the high target to fakes and the low one to reals
    flip_prob: float = 0.0  # chance that one sample's D target is swapped with the other class's


@dataclass
class TrainConfig:
    batch_size: int = 64
    steps: int = 100000
    warmup_steps: int = 20  # D-only steps at the start, as the reference
    seed: int = 0
    fake_bn: str = "inference"  # BatchNorm mode of G when making D's fakes: inference | training
    # Speed only; the maths stay the reference's except under mixed precision.
    jit_compile: str = "auto"  # XLA: on | off | auto (chosen per device and batch; see README)
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


@dataclass
class EvalConfig:
    every: int = 0  # steps between evaluations during training (metrics.csv); 0: none
    samples: int = 2000  # generated images, and as many reals, per evaluation
    metrics: str = "swd,fid_anime,kid_anime,dup_anime,checkerboard"  # comma-separated
    inception_weights: str = ""  # InceptionV3 weights file, for the *_inception metrics


@dataclass
class FailureConfig:
    # The reference author's signals: a D loss staying above 15 (the clipped BCE saturates at
    # 16.1), or G's above 15 for more than 30 mini-batches; then the metrics at evaluations.
    action: str = "continue"  # continue (the paper's runs went on past failure) | stop
    loss_limit: float = 15.0
    d_patience: int = 30  # steps in a row with a D loss above loss_limit
    g_patience: int = 30  # steps in a row with G's loss above loss_limit
    duplicate_limit: float = 0.5  # duplicate rate that means collapse, after a lower one
    fid_jump: float = 2.0  # FID at an evaluation above this multiple of the run's best so far


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    d_optim: OptimConfig = field(default_factory=OptimConfig)
    g_optim: OptimConfig = field(default_factory=lambda: OptimConfig(learning_rate=1e-4))
    labels: LabelConfig = field(default_factory=LabelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    failure: FailureConfig = field(default_factory=FailureConfig)

    def validate(self) -> Config:
        for key, value in flatten(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {value}")
        positive = [
            "model.image_size", "model.latent_dim", "data.synth_n", "train.batch_size",
            "train.steps", "output.log_every", "output.sample_every",
            "output.checkpoint_every", "output.keep_checkpoints",
            "d_optim.learning_rate", "g_optim.learning_rate",
            "failure.loss_limit", "failure.d_patience", "failure.g_patience",
            "failure.duplicate_limit", "failure.fid_jump",
        ]
        for key in positive:
            if get(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {get(self, key)}")
        size = self.model.image_size
        if size < 8 or size & (size - 1):
            raise ConfigError(f"model.image_size must be a power of two >= 8, got {size}")
        choices = {
            "model.upsampling": ("transpose", "upsample"),
            "model.noise": ("binary", "gaussian"),
            "data.sampling": ("uniform", "epoch"),
            "d_optim.name": OPTIMIZERS,
            "g_optim.name": OPTIMIZERS,
            "train.fake_bn": ("inference", "training"),
            "train.jit_compile": ("auto", "on", "off"),
            "train.mixed_precision": ("off", "bfloat16", "float16"),
            "train.distribute": ("none", "mirrored", "multiworker"),
            "model.initializer": INITIALIZERS,
            "failure.action": ("continue", "stop"),
        }
        for key, allowed in choices.items():
            if get(self, key) not in allowed:
                raise ConfigError(
                    f"{key} must be one of {', '.join(allowed)}; got {get(self, key)!r}")
        if self.train.distribute != "none" and self.train.jit_compile == "on":
            raise ConfigError("train.jit_compile = on needs train.distribute = none: the "
                              "distributed step is not compiled with XLA")
        for key in ("model.bn_momentum", "labels.soft", "labels.flip_prob"):
            if not 0.0 <= get(self, key) <= 1.0:
                raise ConfigError(f"{key} must be in [0, 1], got {get(self, key)}")
        # A beta or momentum of 1 would never forget: Adam then divides by zero.
        for key in ("d_optim.beta_1", "d_optim.beta_2", "g_optim.beta_1", "g_optim.beta_2",
                    "d_optim.momentum", "g_optim.momentum"):
            if not 0.0 <= get(self, key) < 1.0:
                raise ConfigError(f"{key} must be in [0, 1), got {get(self, key)}")
        if not 0 <= self.train.seed < 2**32:
            raise ConfigError(f"train.seed must be in [0, 2**32), got {self.train.seed}")
        for key in ("model.leaky_slope", "train.warmup_steps", "eval.every", "d_optim.epsilon",
                    "g_optim.epsilon"):
            if get(self, key) < 0:
                raise ConfigError(f"{key} must not be negative, got {get(self, key)}")
        if not self.output.name or "/" in self.output.name:
            raise ConfigError(f"output.name must be a plain name, got {self.output.name!r}")
        unknown = [m for m in self.eval_metrics() if m not in METRICS]
        if unknown:
            raise ConfigError(f"eval.metrics: unknown metric {unknown[0]!r}; known: "
                              f"{', '.join(METRICS)}")
        if any(m.endswith("_inception") for m in self.eval_metrics()) and not (
                self.eval.inception_weights):
            raise ConfigError("eval.metrics names an *_inception metric but "
                              "eval.inception_weights names no weights file")
        if self.eval.samples < 2:
            raise ConfigError(f"eval.samples must be at least 2, got {self.eval.samples}")
        if not self.output.runs_dir:
            raise ConfigError("output.runs_dir must not be empty")
        return self

    def eval_metrics(self) -> list[str]:
        return [m.strip() for m in self.eval.metrics.split(",") if m.strip()]


def flatten(cfg: Config) -> dict[str, Any]:
    """{"section.key": value} for every setting."""
    return {f"{s}.{k}": v for s, values in to_dict(cfg).items() for k, v in values.items()}


def get(cfg: Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check a value from TOML or the command line against the type of the field's default."""
    kind = type(default)
    if kind is float and type(value) is int:
        return float(value)
    if type(value) is not kind:
        raise ConfigError(f"{key} must be {kind.__name__}, got {value!r}")
    return value


def set_value(cfg: Config, key: str, value: Any) -> None:
    parts = key.split(".")
    sections = {f.name for f in dataclasses.fields(cfg)}
    if len(parts) != 2 or parts[0] not in sections:
        raise ConfigError(f"unknown setting {key!r}; sections are {', '.join(sorted(sections))}")
    section = getattr(cfg, parts[0])
    names = {f.name for f in dataclasses.fields(section)}
    if parts[1] not in names:
        raise ConfigError(f"unknown setting {key!r}; {parts[0]} has {', '.join(sorted(names))}")
    setattr(section, parts[1], _coerce(key, value, getattr(section, parts[1])))


def merge(cfg: Config, table: dict[str, Any], source: str) -> None:
    for section, values in table.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: {section!r} must be a [section] table")
        for name, value in values.items():
            try:
                set_value(cfg, f"{section}.{name}", value)
            except ConfigError as e:
                raise ConfigError(f"{source}: {e}") from None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None


def parse_override(text: str) -> tuple[str, Any]:
    """`section.key=value`; the value is read as TOML (1e-3, true, "x"), else as a bare string."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set needs section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def load(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """default.toml, then the experiment file at `path`, then `section.key=value` overrides."""
    cfg = Config()
    default = EXPERIMENTS_DIR / "default.toml"
    merge(cfg, read_toml(default), str(default))
    if path is not None and Path(path).resolve() != default.resolve():
        merge(cfg, read_toml(Path(path)), str(path))
    for text in overrides:
        set_value(cfg, *parse_override(text))
    return cfg.validate()


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    return dataclasses.asdict(cfg)


def from_dict(table: dict[str, Any], source: str) -> Config:
    cfg = Config()
    merge(cfg, table, source)
    return cfg.validate()


def to_toml(cfg: Config) -> str:
    lines = []
    for section, values in to_dict(cfg).items():
        lines.append(f"[{section}]")
        for name, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = repr(value)
            lines.append(f"{name} = {text}")
        lines.append("")
    return "\n".join(lines)
