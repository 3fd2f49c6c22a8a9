"""The toy family's networks and step (its settings: tests/toy_family.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

from keras_ganime.families import base, failure
from keras_ganime.families.base import Draws, Phase, StepContext, Tensor
from keras_ganime.families.optimizers import build_optimizer
from tests.toy_family import SPEC


def softplus_loss(logits: Tensor, real: bool) -> Tensor:
    return ops.mean(ops.softplus(-logits if real else logits))


def build_generator(model: Any) -> keras.Model:
    size = model.image_size
    z = keras.Input((model.latent_dim,))
    image = layers.Reshape((size, size, 3))(layers.Dense(size * size * 3, activation="tanh")(z))
    return keras.Model(z, image, name="generator")


def build_discriminator(model: Any) -> keras.Model:
    x = keras.Input((model.image_size, model.image_size, 3))
    return keras.Model(x, layers.Dense(1)(layers.Flatten()(x)), name="discriminator")


class Family(base.Family):
    spec = SPEC

    def __init__(self, cfg: Any, build: base.Build) -> None:
        super().__init__(cfg, build)
        self.generator = build_generator(cfg.model)
        self.discriminator = build_discriminator(cfg.model)
        self.g_optim = build_optimizer(cfg.g_optim)
        self.d_optim = build_optimizer(cfg.d_optim)
        self.g_optim.build(self.generator.trainable_variables)
        self.d_optim.build(self.discriminator.trainable_variables)
        self.balance = keras.Variable(1.0, trainable=False, name="balance")
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {"g_optim": self.g_optim, "d_optim": self.d_optim}

    @property
    def phases(self) -> tuple[Phase, ...]:
        toy = self.cfg.toy
        return (Phase("d", ("d_loss",),
                      gate=lambda v: ops.logical_not(v["g_loss"] > toy.gate_ratio * v["d_loss"])),
                Phase("g", ("g_loss",)),
                Phase("reg", (f"reg_{self.cfg.model.penalty}",), every=toy.reg_every))

    def draw(self, rng: Any, n: int) -> Draws:
        return Draws({"z": self.latents(rng, n)}, {"scale": rng.uniform([], 0.5, 1.5)})

    def fakes(self, draws: Draws) -> Tensor:
        return self.generator(draws.per_sample["z"] * draws.per_batch["scale"], training=True)

    def run_phase(self, name: str, reals: Tensor, draws: Draws, ctx: StepContext
                  ) -> dict[str, Tensor]:
        d, g = self.discriminator, self.generator
        if name == "d":
            def d_loss() -> tuple[Tensor, None]:
                return (softplus_loss(d(reals), True)
                        + softplus_loss(d(self.fakes(draws)), False)), None
            return {"d_loss": ctx.update(self.d_optim, d.trainable_variables, d_loss)[0]}
        if name == "g":
            def g_loss() -> tuple[Tensor, None]:
                return softplus_loss(d(self.fakes(draws)), True), None
            return {"g_loss": ctx.update(self.g_optim, g.trainable_variables, g_loss)[0]}
        penalty = self.cfg.model.penalty

        def reg() -> tuple[Tensor, None]:
            x = self.fakes(draws)
            return ops.mean(ops.abs(x) if penalty == "l1" else ops.square(x)), None
        return {f"reg_{penalty}": ctx.update(self.g_optim, g.trainable_variables, reg)[0]}

    after_outputs = ("balance",)

    def after_step(self, values: Mapping[str, Tensor], draws: Draws) -> dict[str, Tensor]:
        ratio = values["d_loss"] / values["g_loss"]
        m = self.cfg.toy.momentum
        # A skipped D (NaN) leaves the balance as it was.
        self.balance.assign(ops.where(ops.isnan(ratio), self.balance,
                                      m * self.balance + (1.0 - m) * ratio))
        return {"balance": ops.convert_to_tensor(self.balance)}

    def rules(self) -> list[failure.LossRule]:
        toy = self.cfg.toy
        return [failure.LossRule(f"balance below {toy.balance_floor:g}",
                                 lambda v: v["balance"] < toy.balance_floor, toy.patience)]

    def checkpoint_objects(self) -> dict[str, Any]:
        return {**super().checkpoint_objects(), "balance": self.balance}

    def latents(self, rng: Any, n: int) -> Tensor:
        return rng.normal((n, self.cfg.model.latent_dim))

    def sampler(self) -> keras.Model:
        return self.generator

    def sampler_objects(self) -> dict[str, Any]:
        return {"generator": self.generator}

    def export(self, path: Path) -> None:
        self.generator.save(path)

    # --- make bench ---
    @classmethod
    def forward_networks(cls, cfg: Any) -> tuple[keras.Model, keras.Model]:
        return build_generator(cfg.model), build_discriminator(cfg.model)

    @classmethod
    def step_flops(cls, cfg: Any, g_forward: int, d_forward: int) -> int:
        """d: G forward, D forward and backward on reals and fakes       G + 6D
        g: G and D forward, backward through D to its input and G       3G + 3D
        reg, every toy.reg_every steps: G forward and backward          3G / reg_every
        """
        return 4 * g_forward + 9 * d_forward + 3 * g_forward // cfg.toy.reg_every
