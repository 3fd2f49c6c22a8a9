"""StyleGAN: StyleGAN2 as stylegan2-ada configures it at 64x64, as "GAN Versus: Anime Faces"
compared it.

G maps z, normalised, through a few equalised dense layers (learning rate x 0.01) to w, the
style; the synthesis network starts from a learned 4x4 constant and, at each resolution, runs
3x3 convolutions whose weights each sample's style scales (modulation) and renormalises
(demodulation), adds per-layer noise of learned strength, and sums a ToRGB per resolution, up-
sampled, into the image. There is one w per layer: style mixing feeds two, switching at a
crossover layer. D is residual, down to 4x4, with the minibatch standard deviation before its
last convolution and a logit out. Every weight is drawn N(0, 1) and scaled at run time by
1 / sqrt(fan_in) (the equalised learning rate). One step:

    d     softplus(D(G(z))) + softplus(-D(x))                          D
    r1    (r1_gamma / 2) E||grad_x D(x)||^2 x r1_every, every r1_every   D
    g     softplus(-D(G(z)))                                            G
    then  G_ema <- G + (G_ema - G) beta,  w_avg <- mean w + (w_avg - mean w) w_avg_beta

with style mixing on both G passes. Samples come from G_ema, its noise fixed, truncated around
w_avg when asked: w' = w_avg + psi (w - w_avg). Departures from NVlabs, for plainness: bilinear
up-sampling and 2x2 average pooling where NVlabs filters with [1, 3, 3, 1]; no path-length
regulariser. Settings: `stylegan_settings.py`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

from keras_ganime.families import augment, base, stylegan_settings
from keras_ganime.families.base import Draws, Phase, StepContext, Tensor
from keras_ganime.families.optimizers import build_optimizer
from keras_ganime.families.stylegan_settings import StyleGANModel, channels, num_ws
from keras_ganime.settings import ConfigError, OptimConfig

SQRT2 = math.sqrt(2.0)


def lrelu(x: Tensor) -> Tensor:
    """Leaky ReLU 0.2 with NVlabs' gain sqrt(2), which keeps unit variance through a layer. As
    a selection: TensorFlow's graph optimiser fails on LeakyRelu's second derivative (R1's),
    with an error line in the log; and at exactly 0 (an augmented image's zeros through a bias
    still 0) a selection's gradient is 1 on either backend, where a maximum's tie is 1 on
    TensorFlow and 0.6 in JAX."""
    return ops.where(x >= 0, x, 0.2 * x) * SQRT2


# --- equalised layers --------------------------------------------------------------------------


class EqualDense(layers.Layer):
    """Dense with weights N(0, 1 / lr_mul) used as lr_mul / sqrt(fan_in) x them, and a bias
    used as lr_mul x it, so that Adam's steps on them are lr_mul times the rate."""

    def __init__(self, units: int, lr_mul: float = 1.0, bias_init: float = 0.0,
                 activation: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units, self.lr_mul, self.bias_init, self.activation = (units, lr_mul, bias_init,
                                                                    activation)

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.fan_in = input_shape[-1]
        self.kernel = self.add_weight((self.fan_in, self.units), keras.initializers.RandomNormal(
            0.0, 1.0 / self.lr_mul), name="kernel")
        self.bias = self.add_weight((self.units,), keras.initializers.Constant(
            self.bias_init / self.lr_mul), name="bias")

    def call(self, x: Tensor) -> Tensor:
        y = ops.matmul(x, self.kernel * (self.lr_mul / math.sqrt(self.fan_in)))
        y = y + self.bias * self.lr_mul
        return lrelu(y) if self.activation else y

    def multiply_adds(self) -> int:
        return self.fan_in * self.units


class EqualConv(layers.Layer):
    """D's convolution: 'same' padding, equalised weights, a bias unless told, leaky ReLU unless
    told; `down` halves the size first (2x2 average)."""

    def __init__(self, filters: int, kernel: int, down: bool = False, bias: bool = True,
                 activation: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.k, self.down = filters, kernel, down
        self.use_bias, self.activation = bias, activation

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.c_in, self.size = input_shape[-1], input_shape[1] // (2 if self.down else 1)
        self.kernel = self.add_weight((self.k, self.k, self.c_in, self.filters),
                                      keras.initializers.RandomNormal(0.0, 1.0), name="kernel")
        self.bias = self.add_weight((self.filters,), "zeros", name="bias") if self.use_bias \
            else None

    def call(self, x: Tensor) -> Tensor:
        if self.down:
            x = ops.average_pool(x, 2, 2)
        scale = 1.0 / math.sqrt(self.k * self.k * self.c_in)
        x = ops.conv(x, self.kernel * scale, padding="same")
        if self.bias is not None:
            x = x + self.bias
        return lrelu(x) if self.activation else x

    def multiply_adds(self) -> int:
        return self.size * self.size * self.k * self.k * self.c_in * self.filters


class ModulatedConv(layers.Layer):
    """A convolution whose input channels each sample's style scales, s = affine(w) (bias 1), and
    whose output channels are then divided by their weights' norm for that style
    (demodulation), so each output keeps unit variance; noise of learned strength, a bias and
    leaky ReLU follow. Modulating the input and demodulating the output is the same sum as
    NVlabs' per-sample weights, done with one shared kernel. ToRGB is one: 1x1, no
    demodulation, no noise, linear. `up` doubles the size first (bilinear)."""

    def __init__(self, filters: int, kernel: int = 3, up: bool = False, demodulate: bool = True,
                 noise: bool = True, activation: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.k, self.up = filters, kernel, up
        self.demodulate, self.noise, self.activation = demodulate, noise, activation

    def build(self, x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> None:
        self.c_in, self.size = x_shape[-1], x_shape[1] * (2 if self.up else 1)
        self.affine = EqualDense(self.c_in, bias_init=1.0, name="affine")
        self.affine.build(w_shape)
        self.kernel = self.add_weight((self.k, self.k, self.c_in, self.filters),
                                      keras.initializers.RandomNormal(0.0, 1.0), name="kernel")
        self.bias = self.add_weight((self.filters,), "zeros", name="bias")
        self.strength = self.add_weight((), "zeros", name="noise_strength") if self.noise \
            else None

    def call(self, x: Tensor, w: Tensor, noise: Tensor | None = None) -> Tensor:
        if self.up:
            x = ops.image.resize(x, (self.size, self.size), "bilinear")
        styles = self.affine(w)  # (n, c_in)
        kernel = self.kernel * (1.0 / math.sqrt(self.k * self.k * self.c_in))
        x = ops.conv(x * styles[:, None, None, :], kernel, padding="same")
        if self.demodulate:
            # sum over the kernel's taps and inputs of (kernel x style)^2, per output channel
            energy = ops.matmul(ops.square(styles), ops.sum(ops.square(kernel), axis=(0, 1)))
            x = x * ops.rsqrt(energy + 1e-8)[:, None, None, :]
        if self.strength is not None and noise is not None:
            x = x + noise * self.strength
        x = x + self.bias
        return lrelu(x) if self.activation else x

    def multiply_adds(self) -> int:
        demodulation = self.c_in * self.filters if self.demodulate else 0
        return (self.size * self.size * self.k * self.k * self.c_in * self.filters
                + self.affine.multiply_adds() + demodulation)


# --- the networks ------------------------------------------------------------------------------


def build_mapping(cfg: StyleGANModel) -> keras.Model:
    """z -> w: z divided by its root mean square, then mapping_layers equalised dense layers."""
    z = keras.Input((cfg.latent_dim,), name="z")
    x = z * ops.rsqrt(ops.mean(ops.square(z), axis=1, keepdims=True) + 1e-8)
    for i in range(cfg.mapping_layers):
        x = EqualDense(cfg.w_dim, cfg.mapping_lr_mul, activation=True, name=f"fc{i}")(x)
    return keras.Model(z, x, name="mapping")


class Synthesis(layers.Layer):
    """ws (n, num_ws, w_dim) -> image: the constant, one modulated conv at 4x4, then per
    resolution an up-sampling conv and a conv; a ToRGB per resolution, the image so far
    up-sampled and added to. The noise: a list of one (n, size, size, 1) image per conv, or
    None for the fixed noise this layer keeps (drawn once, N(0, 1))."""

    def __init__(self, cfg: StyleGANModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg, self.widths = cfg, channels(cfg)
        self.num_ws = num_ws(cfg.image_size)
        # Each layer and noise image an attribute of its own: TensorFlow's checkpoint follows
        # attributes, not the lists Keras keeps them in.
        convs = 0
        for i, width in enumerate(self.widths):
            for up in ((True, False) if i else (False,)):
                setattr(self, f"conv{convs}", ModulatedConv(width, up=up, name=f"conv{convs}"))
                convs += 1
            setattr(self, f"to_rgb{i}", ModulatedConv(3, 1, demodulate=False, noise=False,
                                                      activation=False, name=f"to_rgb{i}"))
        self.conv_count = convs

    @property
    def convs(self) -> list[ModulatedConv]:
        return [getattr(self, f"conv{i}") for i in range(self.conv_count)]

    @property
    def to_rgb(self) -> list[ModulatedConv]:
        return [getattr(self, f"to_rgb{i}") for i in range(len(self.widths))]

    @property
    def fixed_noise(self) -> list[Any]:
        return [getattr(self, f"noise{i}") for i in range(self.conv_count)]

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        """(size, size, 1) of each conv's noise, in order."""
        return [(4,) * 2 + (1,)] + [(4 << i, 4 << i, 1) for i in range(1, len(self.widths))
                                    for _ in range(2)]

    def build(self, ws_shape: tuple[int, ...]) -> None:
        w_shape = (None, ws_shape[-1])
        self.const = self.add_weight((4, 4, self.widths[0]), keras.initializers.RandomNormal(
            0.0, 1.0), name="const")
        for i, shape in enumerate(self.noise_shapes()):
            setattr(self, f"noise{i}", self.add_weight(
                shape, keras.initializers.RandomNormal(0.0, 1.0), trainable=False,
                name=f"noise{i}"))
        shape = (None, 4, 4, self.widths[0])
        for i, conv in enumerate(self.convs):
            conv.build(shape, w_shape)
            shape = (None, conv.size, conv.size, conv.filters)
            if i % 2 == 0:  # the conv a ToRGB follows: the first at 4x4, the second after
                self.to_rgb[i // 2].build(shape, w_shape)

    def call(self, ws: Tensor, noise: list[Tensor] | None = None) -> Tensor:
        n = ops.shape(ws)[0]
        if noise is None:
            noise = [ops.broadcast_to(f[None], (n, *f.shape)) for f in self.fixed_noise]
        x = ops.broadcast_to(self.const[None], (n, *self.const.shape))
        x = self.convs[0](x, ws[:, 0], noise[0])
        image = self.to_rgb[0](x, ws[:, 1])
        for r in range(1, len(self.widths)):
            x = self.convs[2 * r - 1](x, ws[:, 2 * r - 1], noise[2 * r - 1])
            x = self.convs[2 * r](x, ws[:, 2 * r], noise[2 * r])
            size = 4 << r
            image = ops.image.resize(image, (size, size), "bilinear") + self.to_rgb[r](
                x, ws[:, 2 * r + 1])
        return image

    def multiply_adds(self) -> int:
        return sum(layer.multiply_adds() for layer in (*self.convs, *self.to_rgb))


class Generator(keras.Model):
    """The mapping and the synthesis; called on z, it gives the untruncated image with the fixed
    noise."""

    def __init__(self, cfg: StyleGANModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping = build_mapping(cfg)
        self.synthesis = Synthesis(cfg, name="synthesis")
        self.num_ws = self.synthesis.num_ws
        self.synthesis.build((None, self.num_ws, cfg.w_dim))
        self.build((None, cfg.latent_dim))

    def call(self, z: Tensor) -> Tensor:
        return self.synthesis(self.broadcast(self.mapping(z)))

    def broadcast(self, w: Tensor) -> Tensor:
        return ops.repeat(w[:, None], self.num_ws, axis=1)

    def multiply_adds(self) -> int:
        dense = sum(layer.multiply_adds() for layer in self.mapping.layers
                    if isinstance(layer, EqualDense))
        return dense + self.synthesis.multiply_adds()


def build_generator(cfg: StyleGANModel) -> Generator:
    return Generator(cfg, name="generator")


def minibatch_stddev(x: Tensor, group: int) -> Tensor:
    """x with one more channel: the standard deviation over each contiguous group of `group`
    samples, averaged over features and pixels, the same for every sample of the group."""
    _, h, w, c = x.shape
    y = ops.reshape(x, (-1, group, h, w, c))
    y = ops.sqrt(ops.var(y, axis=1) + 1e-8)  # (n / group, h, w, c)
    y = ops.mean(y, axis=(1, 2, 3))[:, None, None, None, None]
    y = ops.reshape(ops.broadcast_to(y, (ops.shape(y)[0], group, h, w, 1)), (-1, h, w, 1))
    return ops.concatenate([x, y], axis=-1)


class MinibatchStddev(layers.Layer):
    def __init__(self, group: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group = group

    def call(self, x: Tensor) -> Tensor:
        return minibatch_stddev(x, self.group)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        # Said, not traced: JAX's symbolic batch size cannot be proved a multiple of the group.
        return (*input_shape[:-1], input_shape[-1] + 1)


def build_discriminator(cfg: StyleGANModel) -> keras.Model:
    """image -> logit: FromRGB, then per resolution down to 8x8 a residual block (two convs, the
    second after 2x2 pooling, beside a pooled 1x1 skip; their sum / sqrt 2), then at 4x4 the
    minibatch standard deviation, a conv, a dense of the 4x4 width and a dense to one logit."""
    widths = channels(cfg)
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = EqualConv(widths[-1], 1, name="from_rgb")(image)
    for r in range(len(widths) - 1, 0, -1):
        skip = EqualConv(widths[r - 1], 1, down=True, bias=False, activation=False,
                         name=f"skip{r}")(x)
        x = EqualConv(widths[r], 3, name=f"conv{r}a")(x)
        x = EqualConv(widths[r - 1], 3, down=True, name=f"conv{r}b")(x)
        x = layers.Rescaling(math.sqrt(0.5), name=f"merge{r}")(layers.Add()([x, skip]))
    x = MinibatchStddev(cfg.mbstd_group, name="mbstd")(x)
    x = EqualConv(widths[0], 3, name="conv0")(x)
    x = layers.Flatten()(x)
    x = EqualDense(widths[0], activation=True, name="fc")(x)
    return keras.Model(image, EqualDense(1, name="logit")(x), name="discriminator")


# --- the family --------------------------------------------------------------------------------


def d_optimizer(opt: OptimConfig, every: int) -> keras.optimizers.Optimizer:
    """D's Adam with the lazy regulariser's correction c = every / (every + 1): rate x c and
    betas ^ c (on a copy of the settings; they stay as written)."""
    c = every / (every + 1)
    return build_optimizer(dataclasses.replace(
        opt, learning_rate=opt.learning_rate * c, beta_1=opt.beta_1 ** c, beta_2=opt.beta_2 ** c))


class Family(base.Family):
    spec = stylegan_settings.SPEC

    @classmethod
    def forward_networks(cls, cfg: Any) -> tuple[keras.Model, keras.Model]:
        return build_generator(cfg.model), build_discriminator(cfg.model)

    @classmethod
    def step_flops(cls, cfg: Any, g_forward: int, d_forward: int) -> int:
        """FLOPs of one image through one training step (make bench), a backward pass costing twice
        its forward pass:
            d    G forward, D forward on the fake and the real, D's backward on both     G + 6D
            g    G forward, D forward, backward through D to its input and through G    3G + 3D
            r1   every r1_every steps: D forward, its input gradient (a backward),
                 and the backward of that (about twice again)                           ~ 5D
        = 4 G + 9 D + 5 D / r1_every.
        """
        return 4 * g_forward + 9 * d_forward + 5 * d_forward // cfg.stylegan.r1_every
    export_suffix = ".savedmodel"  # a SavedModel folder: generator.savedmodel in a run
    export_needs_tensorflow = True

    def __init__(self, cfg: Any, build: base.Build) -> None:
        super().__init__(cfg, build)
        self.generator = build_generator(cfg.model)
        self.generator_ema = Generator(cfg.model, name="generator_ema")
        self.generator_ema.set_weights(self.generator.get_weights())
        self.discriminator = build_discriminator(cfg.model)
        self.g_optim = build_optimizer(cfg.g_optim)
        self.d_optim = d_optimizer(cfg.d_optim, cfg.stylegan.r1_every)
        self.g_optim.build(self.generator.trainable_variables)
        self.d_optim.build(self.discriminator.trainable_variables)
        self.networks = {"generator": self.generator, "generator_ema": self.generator_ema,
                         "discriminator": self.discriminator}
        self.optimizers = {"g_optim": self.g_optim, "d_optim": self.d_optim}
        self.augmenter = augment.Augmenter(cfg.augment, cfg.train.batch_size)
        self.w_avg = keras.Variable(ops.zeros((cfg.model.w_dim,)), trainable=False,
                                    name="w_avg", aggregation="only_first_replica")
        self.num_ws = self.generator.num_ws
        share, group = cfg.train.batch_size // build.replicas, cfg.model.mbstd_group
        if share % group:
            raise ConfigError(f"train.batch_size {cfg.train.batch_size} gives each of the "
                              f"{build.replicas} replicas {share} images, not a multiple of "
                              f"model.mbstd_group {group}", "train.batch_size")

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("d", ("d_loss", "real_logit", "fake_logit", *self.augmenter.outputs)),
                Phase("r1", ("r1",), every=self.cfg.stylegan.r1_every),
                Phase("g", ("g_loss",)))

    # --- the step ---
    def draw(self, rng: Any, n: int) -> Draws:
        """For each of D's and G's passes: two z's, one crossover layer (num_ws: no mixing) and
        one noise image per conv."""
        per_sample, per_batch = {}, {}
        for p in ("d", "g"):
            per_sample[f"{p}_z"] = self.latents(rng, n)
            per_sample[f"{p}_z2"] = self.latents(rng, n)
            mix = rng.uniform((), 0.0, 1.0) < self.cfg.stylegan.mixing_prob
            crossover = rng.uniform((), 1, self.num_ws, dtype="int32")
            per_batch[f"{p}_crossover"] = ops.where(mix, crossover, self.num_ws)
            for i, shape in enumerate(self.generator.synthesis.noise_shapes()):
                per_sample[f"{p}_noise{i}"] = rng.normal((n, *shape))
        per_sample.update(self.augmenter.draw(rng, n, ("d_real", "d_fake", "g", "r1")))
        return Draws(per_sample, per_batch)

    def mixed(self, generator: Generator, z: Tensor, z2: Tensor, crossover: Tensor) -> Tensor:
        """ws: the first z's w for the layers before `crossover`, the second's from it on."""
        w, w2 = generator.mapping(z), generator.mapping(z2)
        layer = ops.arange(self.num_ws)[None, :, None]
        return ops.where(layer < crossover, w[:, None], w2[:, None])

    def fakes(self, draws: Draws, p: str) -> Tensor:
        s, synthesis = draws.per_sample, self.generator.synthesis
        ws = self.mixed(self.generator, s[f"{p}_z"], s[f"{p}_z2"],
                        draws.per_batch[f"{p}_crossover"])
        return synthesis(ws, [s[f"{p}_noise{i}"] for i in range(synthesis.conv_count)])

    def run_phase(self, name: str, reals: Tensor, draws: Draws, ctx: StepContext
                  ) -> dict[str, Tensor]:
        d, cfg = self.discriminator, self.cfg.stylegan
        aug, s = self.augmenter, draws.per_sample  # what D sees, augmented per [augment]
        if name == "d":
            def d_loss() -> tuple[Tensor, tuple[Tensor, Tensor]]:
                on_fakes = d(aug(self.fakes(draws, "d"), s, "d_fake"), training=True)
                on_reals = d(aug(reals, s, "d_real"), training=True)
                loss = ops.mean(ops.softplus(on_fakes)) + ops.mean(ops.softplus(-on_reals))
                return loss, (ops.mean(on_reals), ops.mean(on_fakes), aug.sign(on_reals))

            loss, (real_logit, fake_logit, sign) = ctx.update(self.d_optim,
                                                              d.trainable_variables, d_loss)
            return {"d_loss": loss, "real_logit": real_logit, "fake_logit": fake_logit, **sign}
        if name == "r1":
            def r1_loss() -> tuple[Tensor, Tensor]:
                # The gradient at the reals themselves, through their augmentation (as
                # stylegan2-ada's loss takes it).
                _, grad = ctx.input_gradient(lambda x: d(aug(x, s, "r1"), training=True), reals)
                penalty = ops.mean(ops.sum(ops.square(grad), axis=(1, 2, 3)))
                return penalty * (cfg.r1_gamma / 2 * cfg.r1_every), penalty

            _, penalty = ctx.update(self.d_optim, d.trainable_variables, r1_loss)
            return {"r1": penalty}

        def g_loss() -> tuple[Tensor, None]:
            on_fakes = d(aug(self.fakes(draws, "g"), s, "g"), training=True)
            return ops.mean(ops.softplus(-on_fakes)), None

        loss, _ = ctx.update(self.g_optim, self.generator.trainable_variables, g_loss)
        return {"g_loss": loss}

    def ema_beta(self, steps: Tensor) -> Tensor:
        """The weight average's decay at the step after `steps` steps: half-life ema_half_life
        images, or ema_rampup x the images seen before the step, if fewer (0 at the first step:
        G_ema becomes G)."""
        s, batch = self.cfg.stylegan, self.cfg.train.batch_size
        half_life = ops.convert_to_tensor(s.ema_half_life, "float32")
        if s.ema_rampup:
            half_life = ops.minimum(half_life, ops.cast(steps, "float32") * batch * s.ema_rampup)
        return ops.power(0.5, batch / ops.maximum(half_life, 1e-8))

    def after_step(self, values: Mapping[str, Tensor], draws: Draws) -> dict[str, Tensor]:
        """G's weight average, and w's (of G's pass's first z, by the updated mapping)."""
        beta = self.ema_beta(self.g_optim.iterations - 1)  # G has just been stepped
        for average, weight in zip(self.generator_ema.trainable_variables,
                                   self.generator.trainable_variables, strict=True):
            average.assign(weight + (average - weight) * beta)
        mean = ops.mean(self.generator.mapping(draws.per_sample["g_z"]), axis=0)
        self.w_avg.assign(mean + (self.w_avg - mean) * self.cfg.stylegan.w_avg_beta)
        return self.augmenter.after_step(values)

    @property
    def after_outputs(self) -> tuple[str, ...]:
        return self.augmenter.after_outputs

    def checkpoint_objects(self) -> dict[str, Any]:
        return {**super().checkpoint_objects(), "w_avg": self.w_avg,
                **self.augmenter.checkpoint_objects()}

    # --- sampling and export ---
    def latents(self, rng: Any, n: int) -> Tensor:
        return rng.normal((n, self.cfg.model.latent_dim))

    def truncated(self, w: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
        """ws with w_avg + psi (w - w_avg) in the layers before `cutoff` (None: all)."""
        ws = self.generator_ema.broadcast(w)
        pulled = ws + (1.0 - psi) * (self.w_avg - ws)  # exactly ws at psi 1
        if cutoff is None or cutoff >= self.num_ws:
            return pulled
        return ops.where(ops.arange(self.num_ws)[None, :, None] < cutoff, pulled, ws)

    def sampler(self, psi: float = 1.0, cutoff: int | None = None, noise: str = "const"
                ) -> keras.Model:
        """z -> image by G_ema, truncated by psi in the layers before cutoff, its noise fixed
        (`const`) or drawn anew (`random`)."""
        g = self.generator_ema
        z = keras.Input((self.cfg.model.latent_dim,), name="z")
        ws = layers.Lambda(lambda w: self.truncated(w, psi, cutoff))(g.mapping(z))
        if noise == "random":
            seed = keras.random.SeedGenerator(0)
            shapes = g.synthesis.noise_shapes()
            image = layers.Lambda(lambda v: g.synthesis(v, [keras.random.normal(
                (ops.shape(v)[0], *s), seed=seed) for s in shapes]))(ws)
        else:
            image = g.synthesis(ws)
        return keras.Model(z, image, name="sampler")

    def mix(self, destination: Tensor, source: Tensor, first: int, last: int,
            psi: float = 1.0, cutoff: int | None = None) -> Tensor:
        """Images of the destination z's with the source z's styles in w's [first, last), each
        truncated by psi before cutoff."""
        g = self.generator_ema
        ws = self.truncated(g.mapping(destination), psi, cutoff)
        source_ws = self.truncated(g.mapping(source), psi, cutoff)
        layer = ops.arange(self.num_ws)[None, :, None]
        return g.synthesis(ops.where((layer >= first) & (layer < last), source_ws, ws))

    def sampler_objects(self) -> dict[str, Any]:
        return {"generator_ema": self.generator_ema, "w_avg": self.w_avg}

    def export(self, path: Path) -> None:
        """A SavedModel whose `generate(z, psi)` gives images in [-1, 1] from G_ema with w_avg
        and the fixed noise: it loads with TensorFlow alone (tf.saved_model.load)."""
        import tensorflow as tf

        archive = keras.export.ExportArchive()
        archive.track(self.generator_ema)
        archive.w_avg = self.w_avg  # an attribute of the archive is saved with it
        archive.add_endpoint(
            "generate", lambda z, psi: self.generator_ema.synthesis(self.truncated(
                self.generator_ema.mapping(z), psi)),
            input_signature=[tf.TensorSpec((None, self.cfg.model.latent_dim), tf.float32),
                             tf.TensorSpec((), tf.float32)])
        archive.write_out(str(path), verbose=False)
