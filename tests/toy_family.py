"""A test-only model family that uses every part of the family contract, to prove the engine
general before real families rely on it: a data-dependent gate (D is skipped while G's last loss
is over `toy.gate_ratio` times D's), a phase every 2 steps, a per-batch draw (one scale for the
whole batch's latents), a state updated after the step (`balance`, an average of d_loss / g_loss),
a logged name that depends on a setting (`reg_l1` or `reg_l2`), and a failure rule that is not "a
loss above a limit" (the balance staying below `toy.balance_floor`).

    python -m tests.toy_family [train options]   # keras_ganime.train with this family registered
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from keras_ganime import families, settings
from keras_ganime.config import Config
from keras_ganime.families.base import FamilySpec
from keras_ganime.settings import ModelConfig


@dataclass
class ToyModel(ModelConfig):
    image_size: int = 8
    latent_dim: int = 4
    penalty: str = "l2"  # l1 | l2: the norm of G's output that the `reg` phase shrinks


@dataclass
class ToySettings:
    gate_ratio: float = 10.0  # D is skipped while the last g_loss > gate_ratio x d_loss
    reg_every: int = 2
    momentum: float = 0.9  # of the balance's moving average
    balance_floor: float = 0.0  # the failure rule: balance below this ...
    patience: int = 3  # ... for more than this many steps in a row


def _validate(cfg: Config) -> None:
    settings.check_choices(cfg, {"model.penalty": ("l1", "l2")})
    settings.check_positive(cfg, ["toy.reg_every", "toy.patience"])


def _logged(cfg: Config) -> tuple[str, ...]:
    return ("d_loss", "g_loss", f"reg_{cfg.model.penalty}", "balance")


SPEC = FamilySpec(
    name="toy",
    module="tests.toy_family_nets",
    description="a test family that uses every part of the contract",
    sections={"model": ToyModel, "toy": ToySettings},
    validate=_validate,
    logged=_logged,
    plots=lambda cfg: (("loss", ("d_loss", "g_loss")),
                       ("balance", ("balance", f"reg_{cfg.model.penalty}"))),
    progress=lambda cfg: {"dl": "d_loss", "bal": "balance"},
    note="A family for tests: its faces are noise.",
    scores=lambda row: {"d_loss": row["d_loss"], "g_loss": row["g_loss"],
                        "balance": row["balance"]},
    # make bench times every phase: D never skipped.
    bench_settings={"toy.gate_ratio": 1e30},
)
families.register(SPEC)


def main(argv: list[str]) -> int:
    """keras_ganime.train with this family known, deterministic ops on, one thread."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    from keras_ganime import train

    return train.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
