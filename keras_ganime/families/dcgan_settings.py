"""The DCGAN family's settings: forcecore's reference, as the paper ran it, is every default.

The family owns [labels], extends [model] with its networks' keys, [train] with the form of the
loss and of the step (the warm-up, how D and G are updated, the paper's section 3.4 tricks), and
[failure] with the loss watch's limits. The other sources' DCGANs are these settings
(`experiments/seed00N.toml`, `experiments/carpedm20*.toml`; docs/dcgan.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keras_ganime import settings
from keras_ganime.families.base import FamilySpec
from keras_ganime.settings import ConfigError, FailureConfig, ModelConfig, OptimConfig

if TYPE_CHECKING:
    from keras_ganime.config import Config  # the whole run's settings; config.py builds on these

# Keras's own, by name (`random_normal` is N(0, 0.05), Keras's default), and the sources' own:
# N(0, 0.02) and truncated N(0, 0.02) of the DCGAN paper's code, and PyTorch's default for
# convolutions, kaiming_uniform(a=sqrt 5) = U(+-sqrt(1 / fan_in)) (families/dcgan.py builds them).
KERAS_INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                      "lecun_uniform", "lecun_normal", "orthogonal", "random_normal",
                      "random_uniform", "truncated_normal")
INITIALIZERS = (*KERAS_INITIALIZERS, "normal_0.02", "truncated_normal_0.02", "torch_default")
GAMMA_INITIALIZERS = ("ones", "normal_1_0.02")  # Keras's and PyTorch's; the DCGAN tutorial's
# The clipped BCE of Keras 2 on probabilities caps a loss at -log(1e-7) = 16.1, PyTorch's BCELoss
# (its log clamped at -100) at 100; on logits nothing caps it.
LOSS_CAPS = {"clipped_bce": 16.118, "torch_bce": 100.0, "logits": float("inf")}


@dataclass
class DCGANModel(ModelConfig):
    upsampling: str = "transpose"  # transpose (reference) | upsample (UpSampling2D + Conv2D)
    noise: str = "binary"  # binary (reference) | gaussian | uniform (on [-1, 1])
    bn_momentum: float = 0.3  # Keras's sense: PyTorch's momentum 0.1 is 0.9 here
    bn_epsilon: float = 0.001  # Keras's default; PyTorch's is 1e-5
    leaky_slope: float = 0.2
    g_activation: str = "leaky_relu"  # G's: leaky_relu (reference) | relu; D's is always leaky
    kernel_size: int = 4  # of every convolution but the stem, the head and the 3x3 extra conv
    # The width: filters of G's last block and D's first (every source's 64); each block
    # nearer the 4x4 stem has twice as many, up to 8 times. Smaller trains faster.
    filters: int = 64
    extra_conv: bool = True  # the reference's 3x3 Conv2D before G's output layer
    use_bias: bool = True  # biases of the convolutions (Dense layers always have one)
    g_stem: str = "transpose"  # z -> 4x4: transpose (a 4x4 valid Conv2DTranspose) | dense
    d_head: str = "dense"  # 4x4 -> one output: dense (Flatten + Dense) | conv (a 4x4 valid Conv2D)
    d_first_bn: bool = False  # BatchNorm after D's first convolution too
    initializer: str = "glorot_uniform"  # of every kernel, unless d_conv_initializer says
    d_conv_initializer: str = ""  # of D's convolutions; empty: model.initializer
    gamma_initializer: str = "ones"  # of BatchNorm's scale: ones | normal_1_0.02


@dataclass
class LabelConfig:
    soft: float = 0.1  # real targets are 1 - soft * U[0,1), fake targets soft * U[0,1)
    flip: bool = False  # give the high target to fakes and the low one to reals
    flip_prob: float = 0.0  # chance that one sample's D target is swapped with the other class's


@dataclass
class DCGANTrain(settings.TrainConfig):
    warmup_steps: int = 20  # D-only steps at the start, as the reference
    # clipped_bce: Keras 2's, on probabilities clipped to [1e-7, 1 - 1e-7] (reference) |
    # torch_bce: PyTorch's BCELoss, log clamped at -100 | logits: BCE on D's logits
    loss: str = "clipped_bce"
    # separate: D stepped on reals, then on fakes (reference) | summed: once on the sum
    d_update: str = "separate"
    fake_bn: str = "inference"  # BatchNorm mode of G when making D's fakes: inference | training
    # What G's step scores: same_z (G run again on D's z, reference) | fresh_z | same_fakes (the
    # very batch D saw: G's moving statistics move once a step, as PyTorch's one forward pass)
    g_input: str = "same_z"
    # D's moving statistics in G's step: frozen (reference) | updated (PyTorch, TF 1 in training)
    g_step_d_stats: str = "frozen"
    g_steps: int = 1  # G updates per step, on the same input (carpedm20's own change: 2)
    # The paper's section 3.4 "D skip": D's update skipped while the last step's g_loss is above
    # this times its d_loss (d_loss0 + d_loss1); 0: never. Needs d_update = summed.
    d_skip_ratio: float = 0.0
    l2: float = 0.0  # weight of an L2 penalty (Keras's l2: weight x sum of squares) on kernels


@dataclass
class DCGANFailure(FailureConfig):
    # The reference author's signal: a D loss staying above 15 (the clipped BCE saturates at
    # 16.1), or G's above 15 for more than 30 mini-batches.
    loss_limit: float = 15.0
    d_patience: int = 30  # steps in a row with a D loss above loss_limit
    g_patience: int = 30  # steps in a row with G's loss above loss_limit


def validate(cfg: Config) -> None:
    settings.check_positive(cfg, ["failure.loss_limit", "failure.d_patience",
                                "failure.g_patience"])
    size = cfg.model.image_size
    if size < 8 or size & (size - 1):
        raise ConfigError(f"model.image_size must be a power of two >= 8, got {size}")
    settings.check_choices(cfg, {
        "model.upsampling": ("transpose", "upsample"),
        "model.noise": ("binary", "gaussian", "uniform"),
        "model.g_activation": ("leaky_relu", "relu"),
        "model.g_stem": ("transpose", "dense"),
        "model.d_head": ("dense", "conv"),
        "model.initializer": INITIALIZERS,
        "model.d_conv_initializer": ("", *INITIALIZERS),
        "model.gamma_initializer": GAMMA_INITIALIZERS,
        "train.loss": tuple(LOSS_CAPS),
        "train.d_update": ("separate", "summed"),
        "train.fake_bn": ("inference", "training"),
        "train.g_input": ("same_z", "fresh_z", "same_fakes"),
        "train.g_step_d_stats": ("frozen", "updated"),
    })
    settings.check_range(cfg, ["model.bn_momentum", "labels.soft", "labels.flip_prob"], 0.0, 1.0)
    settings.check_positive(cfg, ["model.bn_epsilon", "train.g_steps", "model.filters"])
    settings.check_not_negative(cfg, ["model.leaky_slope", "train.warmup_steps",
                                    "train.d_skip_ratio", "train.l2"])
    if cfg.model.kernel_size not in (4, 5):
        raise ConfigError(f"model.kernel_size must be 4 or 5, got {cfg.model.kernel_size}")
    train = cfg.train
    if train.g_input == "same_fakes" and train.fake_bn != "training":
        raise ConfigError("train.g_input = same_fakes needs train.fake_bn = training: D's fakes "
                          "are G's training-mode output")
    if train.d_skip_ratio and train.d_update != "summed":
        raise ConfigError("train.d_skip_ratio needs train.d_update = summed: D's update is "
                          "skipped whole")
    cap = LOSS_CAPS[train.loss]
    if cfg.failure.loss_limit >= cap:
        raise ConfigError(f"failure.loss_limit {cfg.failure.loss_limit} can never be reached: "
                          f"train.loss = {train.loss} caps a loss at {cap:g}; set it below")


LOSSES = ("d_loss0", "d_loss1", "g_loss")  # D on fakes, D on reals, G through D
LOGGED = (*LOSSES, "real_score", "fake_score")  # the scores: D's mean probability on each batch
SKIPPED = "d_skipped"  # the share of D's updates skipped since the last logged step


def _logged(cfg: Any) -> tuple[str, ...]:
    skipped = (SKIPPED,) if cfg.train.d_skip_ratio else ()
    return (*LOGGED, *skipped, *cfg.augment.logged())


def _plots(cfg: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    loss = ("loss", LOSSES)  # as the paper's loss figures
    skipped = (("D updates skipped", (SKIPPED,)),) if cfg.train.d_skip_ratio else ()
    return (loss, *skipped, *settings.augment_plots(cfg))


def _progress(cfg: Any) -> dict[str, str]:
    shown = {"d0": "d_loss0", "d1": "d_loss1", "g": "g_loss"}
    skipped = {"skipped": SKIPPED} if cfg.train.d_skip_ratio else {}
    return {**shown, **skipped, **settings.augment_progress(cfg)}


def _scores(row: Mapping[str, float]) -> dict[str, float] | None:
    """Anik et al.'s per-epoch line of one logged step: G's loss, D's (on reals plus on fakes), and
    D's mean output on reals and on fakes."""
    if "real_score" not in row:
        return None
    return {"g_loss": row["g_loss"], "d_loss": row["d_loss0"] + row["d_loss1"],
            "real_score": row["real_score"], "fake_score": row["fake_score"]}


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
    scores=_scores,
    capabilities=frozenset({"condition"}),
    bench_settings={"train.warmup_steps": 0},
)
