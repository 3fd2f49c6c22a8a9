"""The BEGAN family's settings: carpedm20/BEGAN-tensorflow's defaults, which the paper's section
3.3 ran (docs/began.md; experiments/began*.toml are the paper's runs).

The family owns [began] (the equilibrium and the learning-rate schedule), extends [model] with
the networks' widths, [train] and both optimizers with the repo's defaults, and [failure] with
the k_t watch. The DCGAN's BCE limit does not exist here: BEGAN's losses are L1 reconstructions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keras_ganime import settings
from keras_ganime.families.base import FamilySpec
from keras_ganime.settings import ConfigError, FailureConfig, ModelConfig, OptimConfig

if TYPE_CHECKING:
    from keras_ganime.config import Config  # the whole run's settings; config.py builds on these


@dataclass
class BEGANModel(ModelConfig):
    latent_dim: int = 64  # z, drawn from U(-1, 1)
    filters: int = 128  # n, the repo's conv_hidden_num: D's encoder widens to n x scales
    hidden: int = 64  # h, D's bottleneck


@dataclass
class BEGANConfig:
    gamma: float = 0.5  # the diversity ratio: the equilibrium aims at L_fake = gamma L_real
    lambda_k: float = 0.001  # k_t's proportional gain
    # Every lr_update_step steps both rates become max(rate / 2, lr_floor), as the repo does: a
    # rate below the floor is raised to it at the first decay.
    lr_update_step: int = 100000
    lr_floor: float = 2e-5


@dataclass
class BEGANTrain(settings.TrainConfig):
    batch_size: int = 16
    steps: int = 500000


@dataclass
class BEGANFailure(FailureConfig):
    # k_t starts at 0 legitimately; held at 0 or at 1 this long after k_start, the equilibrium
    # has broken (the repo's issue 12: k_t stayed at 0 and the samples collapsed).
    k_start: int = 5000
    k_patience: int = 5000


def validate(cfg: Config) -> None:
    size = cfg.model.image_size
    if size < 16 or size > 128 or size & (size - 1):
        raise ConfigError(f"model.image_size must be a power of two from 16 to 128 for BEGAN, "
                          f"got {size}", "model.image_size")
    settings.check_positive(cfg, ["model.filters", "model.hidden", "began.lr_update_step",
                                "began.lr_floor", "began.lambda_k", "failure.k_patience"])
    settings.check_range(cfg, ["began.gamma"], 0.0, 1.0)
    settings.check_not_negative(cfg, ["failure.k_start"])
    if cfg.augment.adaptive:
        raise ConfigError("augment.adaptive reads the sign of D's logit on the reals, and "
                          "BEGAN's D has none (it reconstructs images): set augment.p instead",
                          "augment.adaptive")


LOSSES = ("L_real", "L_fake", "d_loss", "g_loss")
LOGGED = (*LOSSES, "k_t", "M_global")


def _logged(cfg: Any) -> tuple[str, ...]:
    return LOGGED


def _plots(cfg: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("loss", LOSSES), ("k_t", ("k_t",)), ("M_global", ("M_global",)))


def _progress(cfg: Any) -> dict[str, str]:
    return {"d": "d_loss", "g": "g_loss", "k": "k_t", "M": "M_global"}


def _optim() -> OptimConfig:
    return OptimConfig(learning_rate=8e-5)


SPEC = FamilySpec(
    name="began",
    module="keras_ganime.families.began",
    description="BEGAN (carpedm20/BEGAN-tensorflow), the paper's section 3.3",
    sections={"model": BEGANModel, "began": BEGANConfig, "train": BEGANTrain,
              "failure": BEGANFailure, "d_optim": _optim, "g_optim": _optim},
    validate=validate,
    logged=_logged,
    plots=_plots,
    progress=_progress,
    condition_note=("BEGAN's D is an auto-encoder with no logit to project a label on, and no "
                    "standard conditional BEGAN exists"),
    note=("At BEGAN's equilibrium g_loss is about gamma x L_real, and d_loss = L_real - k_t x "
          "g_loss is at least (1 - gamma) x L_real: at gamma 0.5, G's loss below D's is the "
          "steady state BEGAN aims at, not by itself a sign of collapse. Judge collapse by the "
          "duplicate rate (dup_anime) and by M_global, the convergence measure, with k_t."),
)
