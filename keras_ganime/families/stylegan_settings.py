"""The StyleGAN family's settings: StyleGAN2 (NVlabs, as stylegan2-ada configures it at 64x64)
without progressive growing, as "GAN Versus: Anime Faces" compared it (docs/stylegan.md;
experiments/stylegan-*.toml are its presets).

The family owns [stylegan] (the regularisers and the averages), extends [model] with the
mapping and synthesis widths, [train] and both optimizers with NVlabs' defaults. Its losses are
softplus on logits and have no ceiling: no loss watch, only the metric rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keras_ganime import settings
from keras_ganime.families.base import FamilySpec
from keras_ganime.settings import ConfigError, ModelConfig, OptimConfig

if TYPE_CHECKING:
    from keras_ganime.config import Config  # the whole run's settings; config.py builds on these

# The named layer ranges of a style-mixing grid, by the resolutions (px) their styles drive, as
# NVlabs' figure groups them (the GAN Versus report calls its 8x8 layers "middle").
MIX_RANGES = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1024)}
# The psi of the GAN Versus report's Fig. 8 (v1's).
TRUNCATION_STRIP = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)


@dataclass
class StyleGANModel(ModelConfig):
    latent_dim: int = 512  # z, drawn from N(0, 1) and normalised by its second moment
    w_dim: int = 512
    mapping_layers: int = 2  # stylegan2-ada's automatic config at 64x64 (v1: 8)
    mapping_lr_mul: float = 0.01
    # Feature maps at 4, 8, 16, ... px up to image_size, one per resolution (D mirrors them).
    channels: str = "256,256,256,128,64"
    mbstd_group: int = 4  # minibatch standard deviation over contiguous groups of this many


@dataclass
class StyleGANConfig:
    # R1 on D's gradient at the reals, (gamma / 2) E||grad||^2, lazily every r1_every steps
    # (scaled by r1_every; D's Adam rate and betas scaled by r1_every / (r1_every + 1)). Gamma:
    # stylegan2-ada's 0.0002 res^2 / batch at 64x64, batch 32.
    r1_gamma: float = 0.0256
    r1_every: int = 16
    mixing_prob: float = 0.9  # two z's and a crossover layer per batch, this often
    ema_half_life: float = 10000.0  # images: G's weight average decays by half over so many
    # ... or over this share of the images seen so far, if fewer (stylegan2-ada's ramp-up at
    # 64x64); 0: no ramp-up
    ema_rampup: float = 0.05
    w_avg_beta: float = 0.995  # w_avg <- the batch mean of w + (w_avg - it) x this, every step


@dataclass
class StyleGANTrain(settings.TrainConfig):
    batch_size: int = 32
    steps: int = 109375  # the GAN Versus report's 3,500 kimg at batch 32


def _optim() -> OptimConfig:
    return OptimConfig(learning_rate=0.0025, beta_1=0.0, beta_2=0.99, epsilon=1e-8)


def channels(cfg: Any) -> list[int]:
    """model.channels as integers, one per resolution from 4x4 up."""
    return [int(c) for c in cfg.channels.split(",")]


def num_ws(image_size: int) -> int:
    """One w per synthesis layer: the conv at 4x4, two convs per higher resolution, and the
    last ToRGB's (each ToRGB shares the w of the next resolution's first conv, as NVlabs)."""
    return 2 * (image_size.bit_length() - 1) - 2


def ws_of(name: str, image_size: int) -> tuple[int, int]:
    """The [first, last) w indices of a named layer range (MIX_RANGES) or of `A-B` (w indices,
    B included). w's 2r and 2r + 1 are resolution 4 x 2^r's, as NVlabs groups them (w 2r + 1
    drives that resolution's ToRGB and the next one's first conv)."""
    count = num_ws(image_size)
    if name in MIX_RANGES:
        low, high = MIX_RANGES[name]
        chosen = [i for i in range(count) if low <= 4 << (i // 2) <= high]
        if not chosen:
            raise ValueError(f"layers {name} ({low} to {high} px): none at {image_size}x"
                             f"{image_size}")
        return chosen[0], chosen[-1] + 1
    first, _, last = name.partition("-")
    try:
        a, b = int(first), int(last)
    except ValueError:
        raise ValueError(f"layers must be coarse, middle, fine or A-B (w indices), got "
                         f"{name!r}") from None
    if not 0 <= a <= b < count:
        raise ValueError(f"layers {name}: outside the {count} w's (0-{count - 1}) of "
                         f"{image_size}x{image_size}")
    return a, b + 1


def validate(cfg: Config) -> None:
    size = cfg.model.image_size
    if size < 8 or size > 1024 or size & (size - 1):
        raise ConfigError(f"model.image_size must be a power of two from 8 to 1024 for "
                          f"StyleGAN, got {size}", "model.image_size")
    try:
        widths = channels(cfg.model)
    except ValueError:
        raise ConfigError(f"model.channels must be integers separated by commas, got "
                          f"{cfg.model.channels!r}", "model.channels") from None
    wanted = size.bit_length() - 2  # 4, 8, ..., size
    if len(widths) != wanted or min(widths) <= 0:
        raise ConfigError(f"model.channels needs {wanted} positive widths (4 to {size} px) at "
                          f"image_size {size}, got {cfg.model.channels!r}", "model.channels")
    settings.check_positive(cfg, ["model.w_dim", "model.mapping_layers", "model.mapping_lr_mul",
                                "model.mbstd_group", "stylegan.r1_every",
                                "stylegan.ema_half_life"])
    settings.check_not_negative(cfg, ["stylegan.r1_gamma", "stylegan.ema_rampup"])
    settings.check_range(cfg, ["stylegan.mixing_prob", "stylegan.w_avg_beta"], 0.0, 1.0)
    if cfg.train.batch_size % cfg.model.mbstd_group:
        raise ConfigError(f"train.batch_size {cfg.train.batch_size} must be a multiple of "
                          f"model.mbstd_group {cfg.model.mbstd_group}", "train.batch_size")
    if cfg.train.mixed_precision != "off":
        raise ConfigError("train.mixed_precision: the StyleGAN family runs in float32 only "
                          "(its demodulation is not checked in lower precision)",
                          "train.mixed_precision")


LOGGED = ("d_loss", "g_loss", "r1", "real_logit", "fake_logit")


def _logged(cfg: Any) -> tuple[str, ...]:
    return (*LOGGED, *cfg.augment.logged())


def _plots(cfg: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("loss", ("d_loss", "g_loss")), ("R1 (every r1_every steps)", ("r1",)),
            ("D's mean logit", ("real_logit", "fake_logit")), *settings.augment_plots(cfg))


def _progress(cfg: Any) -> dict[str, str]:
    return {"d": "d_loss", "g": "g_loss", **settings.augment_progress(cfg)}


SPEC = FamilySpec(
    name="stylegan",
    module="keras_ganime.families.stylegan",
    description="StyleGAN2 at 64x64 without progressive growing, as NVlabs' StyleGAN",
    sections={"model": StyleGANModel, "stylegan": StyleGANConfig, "train": StyleGANTrain,
              "d_optim": _optim, "g_optim": _optim},
    validate=validate,
    logged=_logged,
    plots=_plots,
    progress=_progress,
    capabilities=frozenset({"truncation", "style_mixing", "noise"}),
    truncation_strip=TRUNCATION_STRIP,
    style_count=lambda cfg: num_ws(cfg.model.image_size),
    style_range=lambda cfg, name: ws_of(name, cfg.model.image_size),
    note=("Samples, grids and scores are the EMA generator's, with its per-layer noise fixed. "
          "The GAN Versus report's FID 39.4 was measured with Inception features on 50,000 "
          "samples against its 19,000 training faces; fid_anime uses the shipped anime encoder "
          "on eval.samples images: the two numbers are not on one scale."),
)
