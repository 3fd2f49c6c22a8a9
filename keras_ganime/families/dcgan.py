"""The DCGAN family: forcecore's Keras-GAN-Animeface-Character, as the paper ran it.

The networks are the reference's layer for layer at 64x64; smaller images (32, 16) drop
up-sampling blocks from the generator and down-sampling blocks from the discriminator, so that
tests run fast on the same code. One step does what the reference's Keras 2.0 loop did, in its
order: D on reals (`d_loss1`), D on fakes (`d_loss0`) as a separate update, then G through D
with the real targets (`g_loss`), G being left alone during the first `warmup_steps`.
Settings (`dcgan_settings.py`) make the other sources' DCGANs from the same code: a Dense
stem, a conv head, 5x5 kernels, ReLU in G, PyTorch's BCELoss or BCE on logits, D stepped once
on the sum of its losses, G on a fresh z or on D's very fakes, G stepped twice, D's update
skipped while G's loss is far above D's (a held phase: its losses still computed), L2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

from keras_ganime.families import augment, base, dcgan_settings, failure
from keras_ganime.families.base import Draws, Phase, StepContext, Tensor
from keras_ganime.families.condition import FAKE_LABELS, LABELS, Condition
from keras_ganime.families.dcgan_settings import DCGANModel
from keras_ganime.families.optimizers import build_optimizer

# The generator's stem always produces 4x4 and its last layer doubles the size, so the number of
# middle up-sampling blocks is log2(size / 8); the discriminator halves down to 4x4.
STEM_SIZE = 4
# Keras 2.0's binary cross-entropy clipped probabilities to [1e-7, 1 - 1e-7], which caps a loss at
# about 16.1: the reference author's "loss above 15" failure signal is this saturation.
EPSILON = 1e-7
TORCH_BCE_EPSILON = 1e-12  # PyTorch's floor of p (1 - p) in BCELoss's gradient
# The size of a label's embedding joined to G's latent, per attribute: half the reference's
# latent. On the built-in faces at 16 px (hair conditioned, seed 0) the encoder read the hair
# asked for in 71% of faces after 600 steps with 50, and in 16% with 10 (73% after 1,000).
LABEL_EMBEDDING = 50


# --- the networks ------------------------------------------------------------------------------


def _blocks(image_size: int) -> int:
    n = math.log2(image_size / (2 * STEM_SIZE))
    if image_size < 2 * STEM_SIZE or n != int(n):
        raise ValueError(f"model.image_size must be a power of two >= 8, got {image_size}")
    return int(n)


def initializer(name: str) -> keras.initializers.Initializer | str:
    """A kernel initializer by its setting's name (dcgan_settings.INITIALIZERS); a new one for
    each layer, since an unseeded Keras initializer draws the same values at every call."""
    if name == "normal_0.02":
        return keras.initializers.RandomNormal(0.0, 0.02)
    if name == "truncated_normal_0.02":
        return keras.initializers.TruncatedNormal(0.0, 0.02)
    if name == "torch_default":
        # kaiming_uniform(a=sqrt 5): bound sqrt(6 / ((1 + 5) fan_in)) = sqrt(3 * (1/3) / fan_in).
        # PyTorch takes a transposed conv's fan_in from its weight's dimension 1, its output
        # channels, and Keras's from the kernel's axis -2, also the output channels: they agree.
        return keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")
    return name


def _gamma(name: str) -> keras.initializers.Initializer | str:
    return keras.initializers.RandomNormal(1.0, 0.02) if name == "normal_1_0.02" else name


def _bn(cfg: DCGANModel, dtype: str, sync: bool, fused: bool) -> layers.BatchNormalization:
    if fused:  # TensorFlow's kernel, imported only when asked for: JAX never loads it
        from keras_ganime.families.batchnorm import FusedBatchNormalization

        kind = FusedBatchNormalization
    else:
        kind = layers.BatchNormalization
    return kind(momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon,
                gamma_initializer=_gamma(cfg.gamma_initializer), dtype=dtype, synchronized=sync)


def _lrelu(x: keras.KerasTensor, cfg: DCGANModel, dtype: str) -> keras.KerasTensor:
    return layers.LeakyReLU(negative_slope=cfg.leaky_slope, dtype=dtype)(x)


def _bn_act(x: keras.KerasTensor, cfg: DCGANModel, dtype: str, sync: bool, fused: bool
            ) -> keras.KerasTensor:
    x = _bn(cfg, dtype, sync, fused)(x)
    if cfg.g_activation == "relu":
        return layers.ReLU(dtype=dtype)(x)
    return _lrelu(x, cfg, dtype)


def build_generator(cfg: DCGANModel, dtype: str = "float32", sync_bn: bool = False,
                    fused_bn: bool = False, condition: Condition | None = None) -> keras.Model:
    """(1, 1, latent) noise -> (size, size, 3) image in [-1, 1]; with a `condition`, (noise,
    labels): each label's embedding joined to the noise's channels.

    `dtype` is a Keras dtype policy ("mixed_bfloat16", ...); the output layer stays float32.
    `sync_bn`: BatchNorm statistics over all replicas of a tf.distribute strategy.
    `fused_bn`: BatchNorm by TensorFlow's fused kernel in training (`batchnorm.py`), the same
    maths; the default is Keras's layer, the reference's.
    """
    n_up = _blocks(cfg.image_size)
    k = cfg.kernel_size
    def conv(dtype: str = dtype) -> dict[str, Any]:
        return {"kernel_initializer": initializer(cfg.initializer), "use_bias": cfg.use_bias,
                "dtype": dtype}

    stem = cfg.filters * 8
    z = keras.Input((1, 1, cfg.latent_dim), name="z")
    x = z
    if condition is not None:
        labels = condition.input()
        joined = condition.embed(labels, LABEL_EMBEDDING, "embedding")
        joined = joined[0] if len(joined) == 1 else layers.Concatenate(dtype=dtype)(joined)
        x = layers.Concatenate(dtype=dtype)(
            [x, layers.Reshape((1, 1, len(condition) * LABEL_EMBEDDING))(joined)])
    if cfg.g_stem == "dense":
        x = layers.Flatten(dtype=dtype)(x)
        x = layers.Dense(STEM_SIZE * STEM_SIZE * stem, dtype=dtype,
                         kernel_initializer=initializer(cfg.initializer))(x)
        x = layers.Reshape((STEM_SIZE, STEM_SIZE, stem), dtype=dtype)(x)
    else:
        x = layers.Conv2DTranspose(stem, STEM_SIZE, padding="valid", **conv())(x)
    x = _bn_act(x, cfg, dtype, sync_bn, fused_bn)
    for i in range(n_up):
        filters = max(cfg.filters, stem // 2 ** (i + 1))
        if cfg.upsampling == "transpose":
            x = layers.Conv2DTranspose(filters, k, strides=2, padding="same", **conv())(x)
        else:
            x = layers.UpSampling2D(2, dtype=dtype)(x)
            x = layers.Conv2D(filters, k, padding="same", **conv())(x)
        x = _bn_act(x, cfg, dtype, sync_bn, fused_bn)
    if cfg.extra_conv:
        x = layers.Conv2D(cfg.filters, 3, padding="same", **conv())(x)
        x = _bn_act(x, cfg, dtype, sync_bn, fused_bn)
    x = layers.Conv2DTranspose(3, k, strides=2, padding="same", activation="tanh",
                               **conv("float32"))(x)
    return keras.Model(z if condition is None else [z, labels], x, name="generator")


def build_discriminator(cfg: DCGANModel, dtype: str = "float32", sync_bn: bool = False,
                        fused_bn: bool = False, logits: bool = False,
                        condition: Condition | None = None) -> keras.Model:
    """(size, size, 3) image in [-1, 1] -> probability that it is real (its logit with
    `logits`), shape (batch, 1). With a `condition`, (image, labels): the projection term of
    the labels on D's last features (the head's input, flattened) added to the logit.

    `dtype` is a Keras dtype policy; the output layer stays float32, so that the probabilities,
    and the cross-entropy clipped at 1e-7 that is computed from them, keep their precision.
    `sync_bn` and `fused_bn` as for the generator.
    """
    n_down = _blocks(cfg.image_size) + 1
    conv_init = cfg.d_conv_initializer or cfg.initializer
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = image
    for i in range(n_down):
        x = layers.Conv2D(cfg.filters * 2**i, cfg.kernel_size, strides=2, padding="same",
                          kernel_initializer=initializer(conv_init), use_bias=cfg.use_bias,
                          dtype=dtype)(x)
        if i > 0 or cfg.d_first_bn:
            x = _bn(cfg, dtype, sync_bn, fused_bn)(x)
        x = _lrelu(x, cfg, dtype)
    conditional = condition is not None
    out = {"activation": None if logits or conditional else "sigmoid", "dtype": "float32"}
    features = layers.Flatten(dtype="float32")(x) if conditional else None
    if cfg.d_head == "conv":
        x = layers.Conv2D(1, STEM_SIZE, padding="valid", kernel_initializer=initializer(conv_init),
                          use_bias=cfg.use_bias, **out)(x)
        x = layers.Flatten(dtype="float32")(x)
    else:
        x = layers.Flatten(dtype=dtype)(x)
        x = layers.Dense(1, kernel_initializer=initializer(cfg.initializer), **out)(x)
    if condition is None:
        return keras.Model(image, x, name="discriminator")
    labels = condition.input()
    x = layers.Add(dtype="float32")([x, condition.projection(features, labels)])
    if not logits:
        x = layers.Activation("sigmoid", dtype="float32")(x)
    return keras.Model([image, labels], x, name="discriminator")


def sample_noise(rng: Any, n: int, latent_dim: int, kind: str) -> Tensor:
    """Latent batch of shape (n, 1, 1, latent_dim), the generator's input.

    `binary` is the reference's: each value -1 or +1 at random, plus uniform jitter in
    [-0.1, 0.1]. `gaussian` is standard normal, `uniform` U(-1, 1) (carpedm20's).
    """
    shape = (n, 1, 1, latent_dim)
    if kind == "gaussian":
        return rng.normal(shape)
    if kind == "uniform":
        return rng.uniform(shape, -1.0, 1.0)
    signs = ops.cast(rng.uniform(shape, 0, 2, dtype="int32"), "float32") * 2.0 - 1.0
    return signs + rng.uniform(shape, -0.1, 0.1)


# --- the loss ----------------------------------------------------------------------------------


def bce(target: Tensor, p: Tensor) -> Tensor:
    """Mean binary cross-entropy of probabilities p (batch, 1) against targets (batch,), p
    clipped to [1e-7, 1 - 1e-7] as Keras 2 did."""
    p = ops.clip(ops.cast(ops.reshape(p, [-1]), "float32"), EPSILON, 1.0 - EPSILON)
    return ops.mean(-(target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p)))


def torch_bce(target: Tensor, p: Tensor) -> Tensor:
    """PyTorch's BCELoss: each log clamped at -100, so that a p of exactly 0 or 1 costs 100, and
    its gradient, (p - y) / max(p (1 - p), 1e-12), finite where the clamped log's is not (its
    chain rule would multiply 0 by the infinite slope of log at 0: NaN)."""
    p = ops.cast(ops.reshape(p, [-1]), "float32")

    @ops.custom_gradient
    def elementwise(p: Tensor) -> tuple[Tensor, Any]:
        log_p = ops.maximum(ops.log(p), -100.0)
        log_q = ops.maximum(ops.log(1.0 - p), -100.0)

        def grad(*args: Tensor, upstream: Tensor | None = None) -> Tensor:
            upstream = args[0] if upstream is None else upstream
            return upstream * (p - target) / ops.maximum(p * (1.0 - p), TORCH_BCE_EPSILON)

        return -(target * log_p + (1.0 - target) * log_q), grad

    return ops.mean(elementwise(p))


def bce_logits(target: Tensor, logit: Tensor) -> Tensor:
    """BCE on logits, TensorFlow's sigmoid_cross_entropy_with_logits in its stable form."""
    x = ops.cast(ops.reshape(logit, [-1]), "float32")
    return ops.mean(ops.relu(x) - x * target + ops.log1p(ops.exp(-ops.abs(x))))


LOSS_FORMS = {"clipped_bce": bce, "torch_bce": torch_bce, "logits": bce_logits}


# --- the family --------------------------------------------------------------------------------


class Family(base.Family):
    spec = dcgan_settings.SPEC

    @classmethod
    def forward_networks(cls, cfg: Any) -> tuple[keras.Model, keras.Model]:
        return build_generator(cfg.model), build_discriminator(cfg.model)

    @classmethod
    def step_flops(cls, cfg: Any, g_forward: int, d_forward: int) -> int:
        """FLOPs of one image through one training step (make bench), from the networks' forward
        FLOPs, a backward pass costing twice its forward pass:
            fakes for D (G forward)                                 G
            D on reals, D on fakes (forward + backward)             2 * 3D
            each of G's `train.g_steps` updates through D
                (G, D forward; D input-grad, G backward)            G + D + D + 2G
        = 4 G + 8 D for the reference; for its 64x64 networks, 2.80 GFLOP per image. D stepped once
        on the sum or twice costs the same; G on D's very fakes runs G again all the same (a
        stateless pass); a skipped D update is counted as made.
        """
        return g_forward + 6 * d_forward + cfg.train.g_steps * (3 * g_forward + 2 * d_forward)

    def __init__(self, cfg: Any, build: base.Build) -> None:
        super().__init__(cfg, build)
        args = (cfg.model, build.policy, build.sync_bn, build.fused_bn)
        self.loss = LOSS_FORMS[cfg.train.loss]
        self.logits = cfg.train.loss == "logits"
        self.condition = Condition(cfg.model) if cfg.model.conditions() else None
        self._packed: keras.Model | None = None  # the conditional sampler, once made
        self.generator = build_generator(*args, condition=self.condition)
        self.discriminator = build_discriminator(*args, logits=self.logits,
                                                 condition=self.condition)
        self.g_optim = build_optimizer(cfg.g_optim, build.loss_scale)
        self.d_optim = build_optimizer(cfg.d_optim, build.loss_scale)
        self.augmenter = augment.Augmenter(cfg.augment, cfg.train.batch_size)
        self.g_optim.build(self.generator.trainable_variables)
        self.d_optim.build(self.discriminator.trainable_variables)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {"g_optim": self.g_optim, "d_optim": self.d_optim}
        if cfg.train.d_skip_ratio:
            # D's updates skipped and steps taken since the last logged step, for the share
            # of skips that is logged.
            self.skips = keras.Variable([0.0, 0.0], trainable=False, name="d_skips",
                                        aggregation="only_first_replica")

    @property
    def phases(self) -> tuple[Phase, ...]:
        train = self.cfg.train
        g = Phase("g", ("g_loss",), start=train.warmup_steps)
        sign = self.augmenter.outputs  # the adaptive augmentation's, where D sees the reals
        if train.d_update == "separate":
            return (Phase("d_real", ("d_loss1", "real_score", *sign)),
                    Phase("d_fake", ("d_loss0", "fake_score")), g)
        d = ("d_loss1", "d_loss0", "real_score", "fake_score", *sign)
        if not train.d_skip_ratio:
            return Phase("d", d), g
        ratio = train.d_skip_ratio

        def d_due(seen: dict[str, Tensor]) -> Tensor:
            # D runs until the first losses are known. NaN said explicitly: TensorFlow's graph
            # optimiser rewrites not(a > b) as a <= b, which is false for NaN.
            g, d = seen["g_loss"], seen["d_loss0"] + seen["d_loss1"]
            return ops.logical_or(ops.isnan(g) | ops.isnan(d), ops.logical_not(g > ratio * d))

        return Phase("d", (*d, "d_skip"), gate=d_due, hold=True), g

    def draw(self, rng: Any, n: int) -> Draws:
        """Soft targets, D's for the real batch, D's for the fake batch, and G's, then the noise
        (and G's own with `train.g_input = fresh_z`).

        Real is the high class (1 - soft * U) and fake the low one (soft * U), unless `flip`.
        G's target is always the real class's. An occasional flip swaps one sample's D target
        with the other class's.
        """
        lab = self.cfg.labels
        high = 1.0 - lab.soft * rng.uniform([n])
        low = lab.soft * rng.uniform([n])
        real, fake = (low, high) if lab.flip else (high, low)
        swap_real = rng.uniform([n]) < lab.flip_prob
        swap_fake = rng.uniform([n]) < lab.flip_prob
        z = self.noise(rng, n)
        draws = {"d_real_target": ops.where(swap_real, fake, real),
                 "d_fake_target": ops.where(swap_fake, real, fake), "g_target": real, "z": z}
        if self.cfg.train.g_input == "fresh_z":
            draws["g_z"] = self.noise(rng, n)
        draws.update(self.augmenter.draw(rng, n, ("d_real", "d_fake", "g")))
        if self.condition is not None:  # G's labels; the reals' come with the real batch
            draws[FAKE_LABELS] = self.condition.draw(rng, n)
        return Draws(draws)

    def run_phase(self, name: str, reals: Tensor, draws: Draws, ctx: StepContext
                  ) -> dict[str, Tensor]:
        d = draws.per_sample
        # What D sees, augmented where [augment] says (each role with draws of its own), with
        # its labels in a conditional run.
        if name in ("d_real", "d"):
            reals = self.given(self.augmenter(reals, d, "d_real"), d, LABELS)
        if name in ("d_fake", "d"):
            fakes = self.fakes(self.given(d["z"], d, FAKE_LABELS))
            fakes = self.given(self.augmenter(fakes, d, "d_fake"), d, FAKE_LABELS)
        if name == "d_real":
            loss, p = self.d_update([(reals, d["d_real_target"])], ctx)
            return {"d_loss1": loss[0], "real_score": self.score(p[0]), **self.sign(p[0])}
        if name == "d_fake":
            loss, p = self.d_update([(fakes, d["d_fake_target"])], ctx)
            return {"d_loss0": loss[0], "fake_score": self.score(p[0])}
        if name == "d":  # one update on the sum, D called on each batch apart (every source)
            batches = [(reals, d["d_real_target"]), (fakes, d["d_fake_target"])]
            loss, p = self.d_update(batches, ctx)
            out = {"d_loss1": loss[0], "d_loss0": loss[1], "real_score": self.score(p[0]),
                   "fake_score": self.score(p[1]), **self.sign(p[0])}
            if self.cfg.train.d_skip_ratio:
                out["d_skip"] = ops.convert_to_tensor(1.0 if ctx.frozen else 0.0)
            return out
        if name == "g":
            z = d["g_z"] if self.cfg.train.g_input == "fresh_z" else d["z"]
            for _ in range(self.cfg.train.g_steps):  # carpedm20: twice, on the same z
                loss = self.g_update(z, d["g_target"], ctx, d)
            return {"g_loss": loss}
        raise ValueError(f"the dcgan family has no phase {name!r}")

    def given(self, x: Tensor, draws: Mapping[str, Tensor], labels: str) -> Tensor | list:
        """A network's input: x, and in a conditional run the labels `draws[labels]` beside."""
        return x if self.condition is None else [x, draws[labels]]

    def fakes(self, z: Tensor) -> Tensor:
        """D's fakes. The reference makes them with predict(): G's BatchNorm in inference mode;
        PyTorch and TF 1 code in training mode, which moves G's moving statistics."""
        return self.generator(z, training=self.cfg.train.fake_bn == "training")

    def score(self, out: Tensor) -> Tensor:
        """D's mean probability that a batch is real."""
        return ops.mean(ops.sigmoid(out) if self.logits else out)

    def sign(self, out: Tensor) -> dict[str, Tensor]:
        """The adaptive augmentation's reading of D on the reals: its logit's sign, which a D
        ending in a sigmoid gives as the sign of its output less 1/2."""
        return self.augmenter.sign(out if self.logits else out - 0.5)

    def penalty(self, model: keras.Model) -> Tensor:
        """The L2 penalty on a network's kernels (the paper's section 3.4, `train.l2`)."""
        kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
        return self.cfg.train.l2 * ops.sum([ops.sum(ops.square(ops.cast(w, "float32")))
                                            for w in kernels])

    def d_update(self, batches: list[tuple[Tensor, Tensor]], ctx: StepContext
                 ) -> tuple[list[Tensor], list[Tensor]]:
        """One optimizer step of D alone on the sum of its losses on the (images, targets)
        batches; returns each loss and D's outputs, from before the step."""
        def loss() -> tuple[Tensor, tuple[list[Tensor], list[Tensor]]]:
            outs = [self.discriminator(images, training=True) for images, _ in batches]
            losses = [self.loss(t, out) for (_, t), out in zip(batches, outs)]
            total = losses[0] if len(losses) == 1 else losses[0] + losses[1]
            if self.cfg.train.l2:
                total = total + self.penalty(self.discriminator)
            return total, (losses, outs)

        return ctx.update(self.d_optim, self.discriminator.trainable_variables, loss)[1]

    def g_update(self, z: Tensor, target: Tensor, ctx: StepContext,
                 draws: Mapping[str, Tensor] | None = None) -> Tensor:
        """One optimizer step of G through D; D's weights stay, and so do its moving statistics
        unless `train.g_step_d_stats = updated` (PyTorch's D in training mode)."""
        g, d = self.generator, self.discriminator
        train = self.cfg.train

        def loss() -> tuple[Tensor, None]:
            given = draws or {}
            z_in = self.given(z, given, FAKE_LABELS)
            if train.g_input == "same_fakes":
                # The batch D saw, G's statistics not moved a second time (one PyTorch forward).
                fakes, _ = g.stateless_call(g.trainable_variables, g.non_trainable_variables,
                                            z_in, training=True)
            else:
                fakes = g(z_in, training=True)
            fakes = self.augmenter(fakes, given, "g")  # G learns through the augmentation
            fakes = self.given(fakes, given, FAKE_LABELS)
            if train.g_step_d_stats == "updated":
                p = d(fakes, training=True)
            else:
                # D on batch statistics, as Keras 2.0 ran the frozen D inside the stacked model;
                # the stateless call drops the moving-statistics update that training mode makes.
                p, _ = d.stateless_call(d.trainable_variables, d.non_trainable_variables, fakes,
                                        training=True)
            value = self.loss(target, p)
            if train.l2:
                value = value + self.penalty(g)
            return value, None

        return ctx.update(self.g_optim, g.trainable_variables, loss)[0]

    @property
    def after_outputs(self) -> tuple[str, ...]:
        skipped = (dcgan_settings.SKIPPED,) if self.cfg.train.d_skip_ratio else ()
        return (*skipped, *self.augmenter.after_outputs)

    def after_step(self, values: Mapping[str, Tensor], draws: Draws) -> dict[str, Tensor]:
        out = self.augmenter.after_step(values)
        if not self.cfg.train.d_skip_ratio:
            return out
        skips = self.skips + ops.stack([values["d_skip"], 1.0])
        # The count starts again after every log_every steps, the steps the loop logs: each
        # logged share is of the steps since the last logged one.
        self.skips.assign(ops.where(skips[1] >= self.cfg.output.log_every,
                                    ops.zeros_like(skips), skips))
        return {**out, dcgan_settings.SKIPPED: skips[0] / skips[1]}

    def checkpoint_objects(self) -> dict[str, Any]:
        extra = {"d_skips": self.skips} if self.cfg.train.d_skip_ratio else {}
        return {**super().checkpoint_objects(), **extra, **self.augmenter.checkpoint_objects()}

    def rules(self) -> list[failure.LossRule]:
        fail = self.cfg.failure
        patience = {"d_loss0": fail.d_patience, "d_loss1": fail.d_patience,
                    "g_loss": fail.g_patience}
        return [failure.above(name, fail.loss_limit, patience[name])
                for name in dcgan_settings.LOSSES]

    # --- sampling and export ---
    def noise(self, rng: Any, n: int) -> Tensor:
        return sample_noise(rng, n, self.cfg.model.latent_dim, self.cfg.model.noise)

    def latents(self, rng: Any, n: int) -> Tensor:
        """The noise, and in a conditional run labels (Condition.draw) packed beside it."""
        z = self.noise(rng, n)
        return z if self.condition is None else self.condition.pack(z, self.condition.draw(rng, n))

    def sampler(self) -> keras.Model:
        if self.condition is None:
            return self.generator
        if self._packed is None:  # made once: on JAX each new model compiles again
            self._packed = self.condition.sampler(self.generator, self.cfg.model.latent_dim)
        return self._packed

    def sampler_objects(self) -> dict[str, Any]:
        return {"generator": self.generator}

    def export(self, path: Path) -> None:
        """G as a .keras file made of Keras's own layers (no fused BatchNorm), so that it loads
        with `keras.models.load_model` alone."""
        plain = build_generator(self.cfg.model, self.build.policy, condition=self.condition)
        plain.set_weights(self.generator.get_weights())
        plain.save(path)
