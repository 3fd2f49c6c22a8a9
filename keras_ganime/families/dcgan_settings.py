"""The DCGAN family's settings: forcecore's reference, as the paper ran it, is every default.

The family owns [labels], extends [model] with its networks' keys, [train] with the warm-up and
the BatchNorm mode of D's fakes, and [failure] with the loss watch's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keras_ganime import config
from keras_ganime.config import Config, ConfigError, FailureConfig, ModelConfig, OptimConfig
from keras_ganime.families.base import FamilySpec

INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                "lecun_normal", "orthogonal", "random_normal", "random_uniform", "truncated_normal")


@dataclass
class DCGANModel(ModelConfig):
    upsampling: str = "transpose"  # transpose (reference) | upsample (UpSampling2D + Conv2D)
    noise: str = "binary"  # binary (reference) | gaussian
    bn_momentum: float = 0.3
    leaky_slope: float = 0.2
    initializer: str = "glorot_uniform"


@dataclass
class LabelConfig:
    soft: float = 0.1  # real targets are 1 - soft * U[0,1), fake targets soft * U[0,1)
    flip: bool = False  # give the high target to fakes and the low one to reals
    flip_prob: float = 0.0  # chance that one sample's D target is swapped with the other class's


@dataclass
class DCGANTrain(config.TrainConfig):
    warmup_steps: int = 20  # D-only steps at the start, as the reference
    fake_bn: str = "inference"  # BatchNorm mode of G when making D's fakes: inference | training


@dataclass
class DCGANFailure(FailureConfig):
    # The reference author's signal: a D loss staying above 15 (the clipped BCE saturates at
    # 16.1), or G's above 15 for more than 30 mini-batches.
    loss_limit: float = 15.0
    d_patience: int = 30  # steps in a row with a D loss above loss_limit
    g_patience: int = 30  # steps in a row with G's loss above loss_limit


def validate(cfg: Config) -> None:
    config.check_positive(cfg, ["failure.loss_limit", "failure.d_patience",
                                "failure.g_patience"])
    size = cfg.model.image_size
    if size < 8 or size & (size - 1):
        raise ConfigError(f"model.image_size must be a power of two >= 8, got {size}")
    config.check_choices(cfg, {
        "model.upsampling": ("transpose", "upsample"),
        "model.noise": ("binary", "gaussian"),
        "model.initializer": INITIALIZERS,
        "train.fake_bn": ("inference", "training"),
    })
    config.check_range(cfg, ["model.bn_momentum", "labels.soft", "labels.flip_prob"], 0.0, 1.0)
    config.check_not_negative(cfg, ["model.leaky_slope", "train.warmup_steps"])


LOSSES = ("d_loss0", "d_loss1", "g_loss")  # D on fakes, D on reals, G through D
LOGGED = (*LOSSES, "real_score", "fake_score")  # the scores: D's mean output on each batch


def _logged(cfg: Any) -> tuple[str, ...]:
    return LOGGED


def _plots(cfg: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("loss", LOSSES),)  # as the paper's loss figures


def _progress(cfg: Any) -> dict[str, str]:
    return {"d0": "d_loss0", "d1": "d_loss1", "g": "g_loss"}


SPEC = FamilySpec(
    name="dcgan",
    module="keras_ganime.families.dcgan",
    description="forcecore's anime-face DCGAN, the reference of the paper",
    sections={"model": DCGANModel, "labels": LabelConfig, "train": DCGANTrain,
              "failure": DCGANFailure, "g_optim": lambda: OptimConfig(learning_rate=1e-4)},
    validate=validate,
    logged=_logged,
    plots=_plots,
    progress=_progress,
)
